import {
  AUTOCOMPLETE_PACKAGE_TYPE,
  AUTOCOMPLETE_TYPES,
  AUTOCOMPLETE_TYPES_UPSTREAM,
  PACKAGE_BASE_ADDRESS_TYPES,
  REGISTRATION_HIVES,
  SEARCH_PACKAGE_TYPE,
  SEARCH_TYPES,
  SEARCH_TYPES_UPSTREAM,
  VULNERABILITY_INFO_TYPE,
  PACKAGE_PUBLISH_TYPE,
  PACKAGE_PUBLISH_TYPES,
  SYMBOL_PUBLISH_TYPE,
  SYMBOL_PUBLISH_TYPES,
  type HiveName,
} from './service-types.js';
import { BASE, flatBase, hiveBase } from './urls.js';
import { parseVersion } from './version.js';

export interface ServiceResource {
  '@id': string;
  '@type': string;
  clientVersion?: string;
  comment?: string;
}

export interface UpstreamHive {
  name: HiveName;
  url: string; // upstream base, ending with "/"
  types: { type: string; clientVersion?: string }[];
}

/** What one upstream offers, read from its service index. Arrays keep the index's order (fail-over order). */
export interface UpstreamResources {
  flat: string | undefined;
  hives: UpstreamHive[];
  search: string[];
  searchPackageType: boolean;
  autocomplete: string[];
  autocompletePackageType: boolean;
  vulnerability: string | undefined;
  publish: string | undefined;
  symbolPublish: string | undefined;
  /** Every absolute URL the index names: the hosts the proxy may fetch from for this upstream. */
  urls: string[];
}

export class ServiceIndexError extends Error {}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : url + '/';
}

function isHttpUrl(v: unknown): v is string {
  return typeof v === 'string' && /^https?:\/\/[^\s]+$/i.test(v);
}

/** Reads an upstream service index the way the client does (§1.1): string-or-array @type, absolute @id only. */
export function parseServiceIndex(doc: unknown): UpstreamResources {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ServiceIndexError('service index is not a JSON object');
  const { version, resources } = doc as { version?: unknown; resources?: unknown };
  if (typeof version !== 'string') throw new ServiceIndexError("service index has no 'version'");
  if (parseVersion(version)?.major !== 3) throw new ServiceIndexError(`service index version ${version} is not 3.x`);
  if (!Array.isArray(resources)) throw new ServiceIndexError("service index has no 'resources' array");

  const entries: { id: string; type: string; clientVersion?: string }[] = [];
  for (const r of resources as unknown[]) {
    if (!r || typeof r !== 'object') continue;
    const { '@id': id, '@type': type, clientVersion } = r as Record<string, unknown>;
    if (!isHttpUrl(id)) continue;
    const types = typeof type === 'string' ? [type] : Array.isArray(type) ? type.filter((t) => typeof t === 'string') : [];
    const cv = typeof clientVersion === 'string' ? clientVersion : Array.isArray(clientVersion) ? clientVersion.find((c) => typeof c === 'string') : undefined;
    for (const t of types) entries.push({ id, type: t, ...(cv ? { clientVersion: cv } : {}) });
  }
  const firstOf = (types: readonly string[]): string | undefined => {
    for (const t of types) {
      const e = entries.find((x) => x.type === t);
      if (e) return e.id;
    }
    return undefined;
  };
  const allOf = (types: readonly string[]): string[] => {
    const out: string[] = [];
    for (const t of types) for (const e of entries) if (e.type === t && !out.includes(e.id)) out.push(e.id);
    return out;
  };

  const hives: UpstreamHive[] = [];
  for (const h of REGISTRATION_HIVES) {
    const matches = entries.filter((e) => (h.types as readonly string[]).includes(e.type));
    const first = matches[0];
    if (!first) continue;
    // one upstream base per hive: the first listed; other entries of the same hive with that base keep their types
    const types: UpstreamHive['types'] = [];
    for (const m of matches) {
      if (withSlash(m.id) !== withSlash(first.id) || types.some((t) => t.type === m.type && t.clientVersion === m.clientVersion)) continue;
      types.push({ type: m.type, ...(m.clientVersion ? { clientVersion: m.clientVersion } : {}) });
    }
    hives.push({ name: h.name, url: withSlash(first.id), types });
  }

  const flat = firstOf(PACKAGE_BASE_ADDRESS_TYPES);
  return {
    flat: flat ? withSlash(flat) : undefined,
    hives,
    search: allOf(SEARCH_TYPES_UPSTREAM),
    searchPackageType: entries.some((e) => e.type === SEARCH_PACKAGE_TYPE),
    autocomplete: allOf(AUTOCOMPLETE_TYPES_UPSTREAM),
    autocompletePackageType: entries.some((e) => e.type === AUTOCOMPLETE_PACKAGE_TYPE),
    vulnerability: firstOf([VULNERABILITY_INFO_TYPE]),
    publish: firstOf(PACKAGE_PUBLISH_TYPES),
    symbolPublish: firstOf(SYMBOL_PUBLISH_TYPES),
    urls: [...new Set(entries.map((e) => e.id))],
  };
}

/** What the proxy can offer, as decided by the feed from its upstreams. */
export interface ProxyCapabilities {
  hives: { name: string; types: { type: string; clientVersion?: string }[] }[];
  search: boolean;
  searchPackageType: boolean;
  autocomplete: boolean;
  autocompletePackageType: boolean;
  vulnerability: boolean;
  /** A writable upstream is configured (PackagePublish), and it takes symbol packages (SymbolPackagePublish). */
  publish?: boolean;
  symbolPublish?: boolean;
}

/**
 * The proxy's own service index (§1.4): only resources the proxy serves, at its own URLs, with the exact @type
 * strings the official client looks for. Nothing else from the upstream (no LegacyGallery, Catalog,
 * RepositorySignatures or gallery templates) is passed on. URLs use the placeholder BASE (see urls.ts).
 */
export function buildServiceIndex(caps: ProxyCapabilities): { version: string; resources: ServiceResource[] } {
  const resources: ServiceResource[] = [];
  const add = (id: string, type: string, extra: { clientVersion?: string; comment?: string } = {}): void => {
    resources.push({ '@id': id, '@type': type, ...extra });
  };
  add(flatBase(), 'PackageBaseAddress/3.0.0', { comment: 'Flat container: version lists, .nupkg and .nuspec files' });
  for (const hive of caps.hives) {
    for (const t of hive.types) add(hiveBase(hive.name), t.type, t.clientVersion ? { clientVersion: t.clientVersion } : {});
  }
  if (caps.search) {
    for (const t of SEARCH_TYPES) add(`${BASE}v3/query`, t);
    if (caps.searchPackageType) add(`${BASE}v3/query`, SEARCH_PACKAGE_TYPE);
  }
  if (caps.autocomplete) {
    for (const t of AUTOCOMPLETE_TYPES) add(`${BASE}v3/autocomplete`, t);
    if (caps.autocompletePackageType) add(`${BASE}v3/autocomplete`, AUTOCOMPLETE_PACKAGE_TYPE);
  }
  if (caps.vulnerability) add(`${BASE}v3/vulnerabilities/index.json`, VULNERABILITY_INFO_TYPE);
  if (caps.publish) add(`${BASE}v3/package`, PACKAGE_PUBLISH_TYPE, { comment: 'Push, delete and relist, passed to the writable upstream' });
  if (caps.publish && caps.symbolPublish) add(`${BASE}v3/symbolpackage`, SYMBOL_PUBLISH_TYPE);
  return { version: '3.0.0', resources };
}

/** What the proxy can offer on behalf of one upstream. */
export function capabilitiesOf(r: UpstreamResources): ProxyCapabilities {
  return {
    hives: r.hives.map((h) => ({ name: h.name, types: h.types })),
    search: r.search.length > 0,
    searchPackageType: r.searchPackageType,
    autocomplete: r.autocomplete.length > 0,
    autocompletePackageType: r.autocompletePackageType,
    vulnerability: r.vulnerability !== undefined,
  };
}
