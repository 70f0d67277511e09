import { isValidPackageId, lowerId as toLowerId } from './id.js';
import { compareVersions, lowerNormalizedVersion, parseVersion, type NuGetVersion } from './version.js';
import { hiveBase, registrationIndexUrl, registrationLeafUrl } from './urls.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const SEMVER2_LEVEL = parseVersion('2.0.0') as NuGetVersion;

/**
 * A search answer rewritten to the proxy (§4.1): data[].@id, data[].registration, data[].versions[].@id and
 * @context.@base point into the proxy's registration hive `hive`. Other fields (iconUrl, projectUrl,
 * licenseUrl) are left alone. A hit whose id the proxy cannot serve, and a version entry whose version does not
 * parse, are dropped: their URLs could only point upstream, and the client cannot use them either.
 */
export function rewriteSearch(doc: Json, hive: string): Json {
  const out: Json = { ...doc };
  if (isObj(doc['@context']) && '@base' in doc['@context']) out['@context'] = { ...doc['@context'], '@base': hiveBase(hive) };
  if (Array.isArray(doc.data)) {
    const data: Json[] = [];
    for (const hit of doc.data as unknown[]) {
      if (!isObj(hit) || typeof hit.id !== 'string' || !isValidPackageId(hit.id)) continue;
      const lid = toLowerId(hit.id);
      const h: Json = { ...hit };
      if ('@id' in hit) h['@id'] = registrationIndexUrl(hive, lid);
      if ('registration' in hit) h.registration = registrationIndexUrl(hive, lid);
      if (Array.isArray(hit.versions)) {
        const versions: Json[] = [];
        for (const v of hit.versions as unknown[]) {
          if (!isObj(v) || typeof v.version !== 'string') continue;
          const lver = lowerNormalizedVersion(v.version);
          if (!lver) continue;
          versions.push('@id' in v ? { ...v, '@id': registrationLeafUrl(hive, lid, lver) } : v);
        }
        h.versions = versions;
      }
      data.push(h);
    }
    out.data = data;
  }
  return out;
}

/** Which hive search results should point into: SemVer 2 answers need a SemVer 2 hive (§4.1 @base rule). */
export function searchHive(query: URLSearchParams, hives: readonly string[]): string | undefined {
  // nuget.org's rule (ParameterUtilities.ParseIncludeSemVer2): the value parses as a NuGet version >= 2.0.0.
  // So "2", "2.0.0" and "3.0" count, "2.0.0-beta", "01.0" and "x" do not.
  const level = query.get('semVerLevel');
  const parsed = level === null ? undefined : parseVersion(level);
  const wantsSemVer2 = parsed !== undefined && compareVersions(parsed, SEMVER2_LEVEL) >= 0;
  const order = wantsSemVer2 ? ['semver2', 'gz-semver1', 'semver1'] : ['semver1', 'gz-semver1', 'semver2'];
  return order.find((h) => hives.includes(h)) ?? hives[0];
}
