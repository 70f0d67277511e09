import { createHash } from 'node:crypto';
import type { BlobStore } from '../cache/blob-store.js';
import { isValidPackageId } from '../protocol/id.js';
import type { IdScope } from '../protocol/id-scope.js';
import { parseNuspecDependencies } from '../protocol/nuspec.js';
import { formatRange, parseRange } from '../protocol/range.js';
import { packageContentUrl, registrationIndexUrl, registrationLeafUrl } from '../protocol/urls.js';
import { compareVersions, isSemVer2, parseVersion } from '../protocol/version.js';
import { searchHive } from '../protocol/search.js';
import { REGISTRATION_HIVES, type HiveName } from '../protocol/service-types.js';
import { buildRegistration, type BuiltRegistration } from './merge-registration.js';
import type { PackageFiles } from './packages.js';
import { vulnerabilityKey } from './cache-keys.js';

type Json = Record<string, unknown>;
type Allowed = (lowerId: string, upstream: string | undefined) => boolean;

const NAME = /^[A-Za-z0-9_-]{1,32}$/;
const HIVE_NAMES = REGISTRATION_HIVES.map((h) => h.name);
/** Cached ids whose versions are listed at once while searching the cache. */
const SCAN_BATCH = 32;
const TAG = /^[0-9a-f]{16}$/;
/** Store keys of the vulnerability documents (the same layout on disk as before the store kept them). */
const VULN_INDEX = vulnerabilityKey('index.json');
const vulnPageKey = (name: string, tag: string): string => vulnerabilityKey({ name, tag });

/**
 * Answers built from what is on this instance's disk alone: the cached packages (and their nuspecs) and the
 * stored vulnerability documents. Used in offline mode, and online when no upstream can answer and no stored
 * metadata is left (e.g. after a restart with the memory store): every package served once stays restorable.
 */
export class LocalFeed {
  constructor(
    private readonly packages: PackageFiles,
    /** Where the vulnerability documents are kept (`vulnerabilities/...`, the layout bundles carry). */
    private readonly blobs: BlobStore,
  ) {}

  /** Cached versions of an id, limited to copies whose supplier `allowed` accepts (see Feed.allowedLocally). */
  versions(lowerId: string, allowed: Allowed = () => true): Promise<string[]> {
    return this.packages.localVersions(lowerId, (upstream) => allowed(lowerId, upstream));
  }

  /** The nuspec of a cached package (undefined when the package is not cached). */
  nuspec(lowerId: string, lowerVersion: string): Promise<string | undefined> {
    return this.packages.localNuspec(lowerId, lowerVersion);
  }

  /** A registration built from the cached packages' nuspecs: listed, with their dependency groups. */
  async registration(hive: HiveName, lowerId: string, allowed: Allowed = () => true): Promise<BuiltRegistration | undefined> {
    const versions = (await this.versions(lowerId, allowed)).filter((v) => hive === 'semver2' || !isSemVer2(parseVersion(v)!));
    if (versions.length === 0) return undefined;
    const leaves: Json[] = [];
    for (const v of versions) {
      const xml = await this.packages.localNuspec(lowerId, v);
      leaves.push(leafFromNuspec(hive, lowerId, v, xml));
    }
    return buildRegistration(hive, lowerId, leaves);
  }

  /**
   * Cached ids whose id contains the query's `q` (case-insensitive), sorted by id, newest cached version each;
   * the versions a SemVer 1 query (no `semVerLevel=2.0.0`) may see, with URLs into the hive search.ts picks.
   * The order is stable, so a page of any window is a prefix of a larger one (merged search relies on it).
   * `scope`: only the ids a token may see (issue #15), paged and counted over those alone.
   */
  async search(params: URLSearchParams, allowed: Allowed = () => true, scope?: IdScope): Promise<Json> {
    const q = (params.get('q') ?? '').trim().toLowerCase();
    const prerelease = params.get('prerelease') === 'true';
    const hive = searchHive(params, HIVE_NAMES)!;
    const { skip, take } = pageOf(params);
    const matched = await this.matching(q, allowed, prerelease, hive === 'semver2', scope);
    const hits: Json[] = [];
    // only the page's nuspecs are read; every match's versions count for totalHits
    for (const { lowerId, versions } of matched.slice(skip, skip + take)) {
      const latest = versions.at(-1)!;
      const xml = await this.packages.localNuspec(lowerId, latest);
      const meta = xml ? safeParse(xml) : undefined;
      hits.push({
        '@id': registrationIndexUrl(hive, lowerId),
        '@type': 'Package',
        registration: registrationIndexUrl(hive, lowerId),
        id: meta?.id ?? lowerId,
        version: latest,
        description: meta?.description ?? '',
        totalDownloads: 0,
        versions: versions.map((v) => ({ version: v, downloads: 0, '@id': registrationLeafUrl(hive, lowerId, v) })),
      });
    }
    return { totalHits: matched.length, data: hits };
  }

  /**
   * Autocomplete over the cache: the versions of `id=`, or the cached ids containing `q` (spelled as their nuspec).
   * `scope` as for search; the versions of an id outside it are those of an id the cache does not hold (none).
   */
  async autocomplete(params: URLSearchParams, allowed: Allowed = () => true, scope?: IdScope): Promise<Json> {
    const id = params.get('id');
    const prerelease = params.get('prerelease') === 'true';
    const semVer2 = searchHive(params, HIVE_NAMES) === 'semver2';
    if (id && !params.get('q')) {
      const lowerId = id.toLowerCase();
      const versions = scope && !scope.allows(lowerId) ? [] : await this.visibleVersions(lowerId, allowed, prerelease, semVer2);
      return { totalHits: versions.length, data: versions };
    }
    const { skip, take } = pageOf(params);
    const matched = await this.matching((params.get('q') ?? '').trim().toLowerCase(), allowed, prerelease, semVer2, scope);
    const data: string[] = [];
    for (const { lowerId, versions } of matched.slice(skip, skip + take)) {
      const xml = await this.packages.localNuspec(lowerId, versions.at(-1)!);
      data.push((xml ? safeParse(xml)?.id : undefined) ?? lowerId);
    }
    return { totalHits: matched.length, data };
  }

  /**
   * Cached ids containing `q` (and inside `scope`, checked before any version is listed: no I/O for an id the
   * token may not see), sorted, each with the versions the query may see (ids with none left out).
   */
  private async matching(q: string, allowed: Allowed, prerelease: boolean, semVer2: boolean, scope?: IdScope): Promise<{ lowerId: string; versions: string[] }[]> {
    const ids = (await this.packages.localIds()).filter((id) => isValidPackageId(id) && id.includes(q) && (scope === undefined || scope.allows(id))).sort();
    const out: { lowerId: string; versions: string[] }[] = [];
    for (let i = 0; i < ids.length; i += SCAN_BATCH) {
      const batch = await Promise.all(ids.slice(i, i + SCAN_BATCH).map(async (lowerId) => ({ lowerId, versions: await this.visibleVersions(lowerId, allowed, prerelease, semVer2) })));
      for (const m of batch) if (m.versions.length > 0) out.push(m);
    }
    return out;
  }

  /** Cached versions a query may see: stable ones unless `prerelease`, SemVer 1 ones unless `semVer2`. */
  private async visibleVersions(lowerId: string, allowed: Allowed, prerelease: boolean, semVer2: boolean): Promise<string[]> {
    return (await this.versions(lowerId, allowed)).filter((v) => {
      const parsed = parseVersion(v)!;
      return (prerelease || parsed.release.length === 0) && (semVer2 || !isSemVer2(parsed));
    });
  }

  /** The stored vulnerability index (as served: placeholder base URLs), if any. */
  async vulnerabilityIndex(): Promise<string | undefined> {
    return this.readOptional(VULN_INDEX);
  }

  async vulnerabilityPage(name: string, tag: string): Promise<string | undefined> {
    if (!NAME.test(name) || !TAG.test(tag)) return undefined;
    return this.readOptional(vulnPageKey(name, tag));
  }

  /** Keeps vulnerability documents in the store, so audits keep working offline and bundles can carry them. */
  async storeVulnerability(relative: 'index.json' | { name: string; tag: string }, body: string): Promise<void> {
    if (relative !== 'index.json' && (!NAME.test(relative.name) || !TAG.test(relative.tag))) return;
    const key = relative === 'index.json' ? VULN_INDEX : vulnPageKey(relative.name, relative.tag);
    const existing = await this.readOptional(key);
    if (existing === body) return;
    await this.blobs.put(key, Buffer.from(body, 'utf8'));
  }

  private async readOptional(key: string): Promise<string | undefined> {
    try {
      return (await this.blobs.read(key))?.toString('utf8');
    } catch {
      return undefined;
    }
  }
}

/** skip and take of a query (take 20 by default, at most 1000). */
function pageOf(params: URLSearchParams): { skip: number; take: number } {
  return {
    skip: Math.max(0, Number(params.get('skip') ?? 0) || 0),
    take: Math.min(1000, Math.max(0, Number(params.get('take') ?? 20) || 20)),
  };
}

function safeParse(xml: string): { id: string; description?: string } | undefined {
  try {
    const parsed = parseNuspecDependencies(xml);
    const description = /<description>([\s\S]*?)<\/description>/.exec(xml)?.[1]?.trim();
    return { id: parsed.id, ...(description ? { description } : {}) };
  } catch {
    return undefined;
  }
}

function leafFromNuspec(hive: string, lowerId: string, lowerVersion: string, xml: string | undefined): Json {
  const parsed = xml ? (() => {
    try {
      return parseNuspecDependencies(xml);
    } catch {
      return undefined;
    }
  })() : undefined;
  const leafUrl = registrationLeafUrl(hive, lowerId, lowerVersion);
  const content = packageContentUrl(lowerId, lowerVersion);
  const groups = (parsed?.groups ?? []).map((g) => ({
    ...(g.targetFramework ? { targetFramework: g.targetFramework } : {}),
    dependencies: g.dependencies
      .filter((d) => isValidPackageId(d.id))
      .map((d) => {
        const range = parseRange(d.range);
        return { id: d.id, range: range ? formatRange(range) : d.range, registration: registrationIndexUrl(hive, d.id.toLowerCase()) };
      }),
  }));
  return {
    '@id': leafUrl,
    '@type': 'Package',
    catalogEntry: {
      '@id': leafUrl,
      '@type': 'PackageDetails',
      id: parsed?.id ?? lowerId,
      version: parsed && parseVersion(parsed.version) && compareVersions(parseVersion(parsed.version)!, parseVersion(lowerVersion)!) === 0 ? parsed.version : lowerVersion,
      listed: true,
      packageContent: content,
      description: (xml && /<description>([\s\S]*?)<\/description>/.exec(xml)?.[1]?.trim()) || '',
      ...(groups.length ? { dependencyGroups: groups } : {}),
    },
    packageContent: content,
    registration: registrationIndexUrl(hive, lowerId),
  };
}

/** A version token for answers built from disk (changes when the content does). */
export function contentVersion(body: string): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, 16);
}
