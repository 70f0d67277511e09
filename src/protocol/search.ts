import { isValidPackageId, lowerId as toLowerId } from './id.js';
import { lowerNormalizedVersion } from './version.js';
import { hiveBase, registrationIndexUrl, registrationLeafUrl } from './urls.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A search answer rewritten to the proxy (§4.1): data[].@id, data[].registration, data[].versions[].@id and
 * @context.@base point into the proxy's registration hive `hive`. Other fields (iconUrl, projectUrl,
 * licenseUrl) are left alone.
 */
export function rewriteSearch(doc: Json, hive: string): Json {
  const out: Json = { ...doc };
  if (isObj(doc['@context']) && '@base' in doc['@context']) out['@context'] = { ...doc['@context'], '@base': hiveBase(hive) };
  if (Array.isArray(doc.data)) {
    out.data = doc.data.map((hit: unknown) => {
      if (!isObj(hit) || typeof hit.id !== 'string' || !isValidPackageId(hit.id)) return hit;
      const lid = toLowerId(hit.id);
      const h: Json = { ...hit };
      if ('@id' in hit) h['@id'] = registrationIndexUrl(hive, lid);
      if ('registration' in hit) h.registration = registrationIndexUrl(hive, lid);
      if (Array.isArray(hit.versions)) {
        h.versions = hit.versions.map((v: unknown) => {
          if (!isObj(v) || typeof v.version !== 'string' || !('@id' in v)) return v;
          const lver = lowerNormalizedVersion(v.version);
          return lver ? { ...v, '@id': registrationLeafUrl(hive, lid, lver) } : v;
        });
      }
      return h;
    });
  }
  return out;
}

/** Which hive search results should point into: SemVer 2 answers need a SemVer 2 hive (§4.1 @base rule). */
export function searchHive(query: URLSearchParams, hives: readonly string[]): string | undefined {
  const level = query.get('semVerLevel');
  const wantsSemVer2 = level !== null && /^\s*([2-9]|\d{2,})/.test(level);
  const order = wantsSemVer2 ? ['semver2', 'gz-semver1', 'semver1'] : ['semver1', 'gz-semver1', 'semver2'];
  return order.find((h) => hives.includes(h)) ?? hives[0];
}
