// Every key nuproxy stores or answers under, built in one place. Stored key strings are a format: the metadata
// store (Redis) and the disk hold them across versions, so each builder's output must stay byte-identical.
import type { HiveName } from '../protocol/service-types.js';
import { REGISTRATION_HIVES } from '../protocol/service-types.js';
import type { DocKind } from '../metrics/metrics.js';
import type { IdScope } from '../protocol/id-scope.js';

/** Metadata store keys: one upstream's documents, each under a key naming the upstream (own freshness each). */
export const storeKey = {
  serviceIndex: (upstream: string): string => `svc:${upstream}`,
  versions: (upstream: string, lowerId: string): string => `flat:${upstream}:${lowerId}`,
  registration: (upstream: string, hive: HiveName, lowerId: string): string => `reg:${upstream}:${hive}:${lowerId}`,
  /** `generation`: the query generation (QUERY_GENERATION_KEY), so one publish drops every cached query. */
  search: (generation: string, upstream: string, hive: string, rawQuery: string): string => `search:${generation}:${upstream}:${hive}:${rawQuery}`,
  autocomplete: (generation: string, upstream: string, rawQuery: string): string => `ac:${generation}:${upstream}:${rawQuery}`,
  vulnerabilityIndex: (upstream: string): string => `vuln:${upstream}:index`,
  vulnerabilityPage: (upstream: string, name: string, tag: string): string => `vuln:${upstream}:page:${name}:${tag}`,
};

/** The shared value that is part of every search and autocomplete key (replaced after a publish anywhere). */
export const QUERY_GENERATION_KEY = 'gen:queries';

/** Every stored document about one id at one upstream: what a push, delete or relist of the id drops. */
export function keysOfId(upstream: string, lowerId: string): string[] {
  return [storeKey.versions(upstream, lowerId), ...REGISTRATION_HIVES.map((h) => storeKey.registration(upstream, h.name, lowerId))];
}

/**
 * The id a store key is about: version lists and registrations end in their id (an id holds no ":"). Other keys
 * give their last segment, which names no id's answers; a caller treats it as "something changed" all the same.
 */
export function idOfKey(key: string): string {
  return key.slice(key.lastIndexOf(':') + 1);
}

/**
 * Answer keys: what a merged answer is called (render caches and logs), one per resource the feed serves. An
 * answer filtered by an id scope (issue #15) is named `<kind>@<scope key>:...`: never the unscoped name (which has
 * ":" where this has "@"), nor another scope's, so a render cache never hands one token's answer to another.
 * Without a scope the names are unchanged.
 */
export const answerKey = {
  serviceIndex: 'index',
  versions: (lowerId: string): string => `flat:${lowerId}`,
  registrationIndex: (hive: string, lowerId: string): string => `reg:${hive}:${lowerId}:index`,
  registrationPage: (hive: string, lowerId: string, lower: string, upper: string): string => `reg:${hive}:${lowerId}:page:${lower}/${upper}`,
  registrationLeaf: (hive: string, lowerId: string, lowerVersion: string): string => `reg:${hive}:${lowerId}:leaf:${lowerVersion}`,
  search: (rawQuery: string, scope?: IdScope): string => (scope ? `search@${scope.key}:${rawQuery}` : `search:${rawQuery}`),
  autocomplete: (rawQuery: string, scope?: IdScope): string => (scope ? `ac@${scope.key}:${rawQuery}` : `ac:${rawQuery}`),
  /** The index names pages, no ids: one answer for every scope. */
  vulnerabilityIndex: 'vuln:index',
  vulnerabilityPage: (name: string, tag: string, scope?: IdScope): string => (scope ? `vuln@${scope.key}:page:${name}:${tag}` : `vuln:page:${name}:${tag}`),
};

/** The kinds of merged answer kept per id in the answer memo: the version list, and one per registration hive. */
export const memoKind = {
  versions: 'flat',
  registration: (hive: HiveName): string => hive,
};

/**
 * Blob keys of packages (the layout of the cache dir and of bundles): `packages/{id}/{version}/{file}`. `list()`
 * of PACKAGES gives the ids, of packageFolder(id) its versions, of packageFolder(id, version) its files.
 */
export const PACKAGES = 'packages';
export function packageFolder(lowerId: string, lowerVersion?: string): string {
  return lowerVersion === undefined ? `${PACKAGES}/${lowerId}` : `${PACKAGES}/${lowerId}/${lowerVersion}`;
}

/** The blob key of a package file. */
export function packageKey(lowerId: string, lowerVersion: string, file: 'nupkg' | 'nuspec'): string {
  const name = file === 'nupkg' ? `${lowerId}.${lowerVersion}.nupkg` : `${lowerId}.nuspec`;
  return `${packageFolder(lowerId, lowerVersion)}/${name}`;
}

/** The blob key of a stored vulnerability document: the combined index, or one page (as the feed renders them). */
export function vulnerabilityKey(doc: 'index.json' | { name: string; tag: string }): string {
  return doc === 'index.json' ? 'vulnerabilities/index.json' : `vulnerabilities/${doc.name}/${doc.tag}.json`;
}

/** The kind of a metadata store key (the prefixes of storeKey), for the metrics' `kind` label; no slicing. */
export function docKindOfKey(key: string): DocKind {
  if (key.startsWith('flat:')) return 'versions';
  if (key.startsWith('reg:')) return 'registration';
  if (key.startsWith('search:')) return 'search';
  if (key.startsWith('ac:')) return 'autocomplete';
  if (key.startsWith('svc:')) return 'service_index';
  if (key.startsWith('vuln:')) return 'vulnerabilities';
  return 'other';
}
