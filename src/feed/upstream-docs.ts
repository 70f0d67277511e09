import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { NuproxyError } from '../errors.js';
import { pageKey, rewriteRegistrationIndex } from '../protocol/registration.js';
import { rewriteSearch } from '../protocol/search.js';
import type { HiveName } from '../protocol/service-types.js';
import { sortVersionSteps } from '../protocol/sort.js';
import { runSliced } from './merge-versions.js';
import { isSemVer2, lowerNormalizedVersion, parseVersion } from '../protocol/version.js';
import { rewriteVulnerabilityIndex, vulnerabilityPageUrl } from '../protocol/vulnerability.js';
import { checkEntryCount } from '../upstream/json-body.js';
import type { JsonResult, Validators } from '../upstream/nuget-upstream.js';
import { keysOfId, QUERY_GENERATION_KEY, storeKey } from './cache-keys.js';
import type { Contribution } from './fan-out.js';
import type { DocSource, MetadataCache } from './metadata-cache.js';
import { LARGE_LEAVES, rewriteLargeRegistrationIndex, rewriteRegistrationPageItems, stringifyLarge } from './sliced-json.js';
import type { UpstreamSource } from './upstream-source.js';

type Json = Record<string, unknown>;

export interface LeafSet {
  leaves: Json[];
  extras: Json; // index-level fields other than @id, count, items
}

export interface VulnEntry {
  name: string;
  tag: string;
  url: string;
  entry: Json;
}

/** An upstream's vulnerability index: its entries, each with the URL the proxy serves its page under. */
export interface VulnIndex {
  entries: (VulnEntry & { proxyUrl: (name: string) => string })[];
}

/** Which upstream hive answers for a proxy hive, best first (a SemVer 2 hive can stand in, filtered). */
const HIVE_FALLBACK: Record<HiveName, HiveName[]> = {
  semver2: ['semver2', 'gz-semver1', 'semver1'],
  'gz-semver1': ['gz-semver1', 'semver1', 'semver2'],
  semver1: ['semver1', 'gz-semver1', 'semver2'],
};

const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * One upstream's documents, each cached under a key that names the upstream, so every upstream keeps its own
 * freshness and a merged answer can be rebuilt from whatever is fresh. Answers are rewritten to the proxy's
 * placeholder base before they are stored.
 */
export class UpstreamDocs {
  /** Parsed documents by key and fetch time: a hot answer is not parsed again (values are never mutated). */
  private readonly parsed: LRUCache<string, { value: unknown }>;
  private readonly parsedByEntry = new WeakMap<object, { value: unknown }>();

  constructor(
    private readonly cache: MetadataCache,
    /** `maxParsedDocs`: how many parsed documents are kept for stores that hand out copies (Redis). */
    bounds: { maxParsedDocs?: number } = {},
  ) {
    this.parsed = new LRUCache({ max: bounds.maxParsedDocs ?? 2000 });
  }

  /**
   * Part of every search/autocomplete key, kept in the (shared) metadata store: a publish anywhere replaces it,
   * so every instance's cached queries are dropped together.
   */
  private async queryGeneration(): Promise<string> {
    return (await this.cache.readValue(QUERY_GENERATION_KEY)) ?? '0';
  }

  private async get<T>(src: UpstreamSource, key: string, maxAgeMs: number, source: Omit<DocSource, 'upstream'>, parse: (body: string) => T): Promise<Contribution<T>> {
    const doc = await this.cache.get(`${key}`, maxAgeMs, { upstream: src.name, ...source });
    if (doc.entry.absent) return { upstream: src.name, kind: 'absent', outcome: doc.outcome, freshUntil: doc.freshUntil };
    // stores that keep entries as objects hand out the same entry until it changes: its parsed form is kept
    // beside it; others (Redis) are looked up by key and fetch time
    let hit = this.parsedByEntry.get(doc.entry);
    if (!hit) {
      const pk = `${key}\n${doc.entry.fetchedAt}`;
      hit = this.parsed.get(pk);
      if (!hit) {
        // a body just fetched comes with its parsed form (a large one took long to parse the first time)
        hit = { value: doc.value !== undefined ? doc.value : parse(doc.entry.body) };
        this.parsed.set(pk, hit);
      }
      this.parsedByEntry.set(doc.entry, hit);
    }
    return { upstream: src.name, kind: 'ok', value: hit.value as T, outcome: doc.outcome, version: String(doc.entry.fetchedAt), freshUntil: doc.freshUntil };
  }

  versions(src: UpstreamSource, lowerId: string, revalidate: boolean): Promise<Contribution<string[]>> {
    return this.get(
      src,
      storeKey.versions(src.name, lowerId),
      revalidate ? 0 : src.fresh.versions,
      {
        fetch: async (v) => {
          const { resources } = await src.resources();
          if (!resources.flat) return { kind: 'not-found' };
          return src.client.fetchJson(`${resources.flat}${lowerId}/index.json`, v);
        },
        transform: async (json) => {
          const raw = isObj(json) ? json.versions : undefined;
          if (!Array.isArray(raw)) throw badShape(src.name, 'a version list without "versions"');
          checkEntryCount(raw.length, 'a version list', { upstream: src.name, limits: src.client.limits });
          const strings = raw.filter((x): x is string => typeof x === 'string');
          // a long list is parsed in slices that give other requests a turn (a short one in one go, as before)
          const sorted = await runSliced(sortVersionSteps(strings), strings.length);
          return { body: JSON.stringify(sorted), value: sorted };
        },
      },
      (body) => JSON.parse(body) as string[],
    );
  }

  /** Every registration leaf the upstream has for an id in the hive that stands for `hive`, external pages included. */
  leaves(src: UpstreamSource, hive: HiveName, lowerId: string): Promise<Contribution<LeafSet>> {
    return this.get(
      src,
      storeKey.registration(src.name, hive, lowerId),
      src.fresh.registration,
      {
        fetch: async (v) => {
          const { resources } = await src.resources();
          const upstreamHive = HIVE_FALLBACK[hive].map((n) => resources.hives.find((h) => h.name === n)).find((h) => h !== undefined);
          if (!upstreamHive) return { kind: 'not-found' };
          const filterSemVer2 = hive !== 'semver2' && upstreamHive.name === 'semver2';
          return this.fetchLeaves(src, `${upstreamHive.url}${lowerId}/index.json`, hive, lowerId, filterSemVer2, v);
        },
        transform: (json) => {
          // kept parsed beside its text; a large set is stringified in slices that let the event loop run
          const set = json as LeafSet;
          if (set.leaves.length <= LARGE_LEAVES) return { body: JSON.stringify(set), value: set };
          return stringifyLarge(set as unknown as Json, 'leaves').then((body) => ({ body, value: set }));
        },
      },
      (body) => JSON.parse(body) as LeafSet,
    );
  }

  private async fetchLeaves(src: UpstreamSource, url: string, hive: string, lowerId: string, filterSemVer2: boolean, v: Validators): Promise<JsonResult> {
    const r = await src.client.fetchJson(url, v);
    if (r.kind !== 'ok') return r;
    if (!isObj(r.json)) throw badShape(src.name, 'a registration index that is not an object');
    const count = { upstream: src.name, url, limits: src.client.limits };
    const pages = Array.isArray(r.json.items) ? (r.json.items as unknown[]) : [];
    checkEntryCount(pages.length, 'a registration index with pages', count);
    const inlined = pages.reduce<number>((n, p) => n + (isObj(p) && Array.isArray(p.items) ? p.items.length : 0), 0);
    checkEntryCount(inlined, 'a registration index with leaves', count);
    const { doc, links } = inlined > LARGE_LEAVES ? await rewriteLargeRegistrationIndex(r.json, lowerId, hive) : rewriteRegistrationIndex(r.json, lowerId, hive);
    const leaves: Json[] = [];
    const external: Promise<Json[]>[] = [];
    for (const page of Array.isArray(doc.items) ? (doc.items as Json[]) : []) {
      if (Array.isArray(page.items)) {
        leaves.push(...(page.items as Json[]));
        continue;
      }
      const lower = lowerNormalizedVersion(String(page.lower));
      const upper = lowerNormalizedVersion(String(page.upper));
      const pageUrl = lower && upper ? links[pageKey(lower, upper)] : undefined;
      if (!pageUrl) continue;
      external.push(
        src.client.fetchJson(pageUrl).then((p) => {
          if (p.kind !== 'ok' || !isObj(p.json)) throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${src.name} lists a registration page it does not serve`, { upstream: src.name });
          // a page's own leaves are counted before any work on them (the total is counted again below)
          checkEntryCount(Array.isArray(p.json.items) ? p.json.items.length : 0, 'a registration page with leaves', count);
          return rewriteRegistrationPageItems(p.json, lowerId, hive, lower!, upper!);
        }),
      );
    }
    for (const items of await Promise.all(external)) {
      checkEntryCount(leaves.length + items.length, 'a registration (index and pages) with leaves', count);
      leaves.push(...items);
    }
    const kept = filterSemVer2 ? leaves.filter((l) => !isSemVer2(parseVersion(String((l.catalogEntry as Json).version))!)) : leaves;
    const { items: _items, count: _count, '@id': _id, ...extras } = doc;
    return { kind: 'ok', json: { leaves: kept, extras }, gzip: r.gzip, ...(r.etag ? { etag: r.etag } : {}), ...(r.lastModified ? { lastModified: r.lastModified } : {}) };
  }

  async search(src: UpstreamSource, rawQuery: string, hive: string): Promise<Contribution<Json>> {
    return this.queryDoc(src, storeKey.search(await this.queryGeneration(), src.name, hive, rawQuery), src.fresh.search, (r) => r.search, rawQuery, (json) => rewriteSearch(json, hive));
  }

  async autocomplete(src: UpstreamSource, rawQuery: string): Promise<Contribution<Json>> {
    return this.queryDoc(src, storeKey.autocomplete(await this.queryGeneration(), src.name, rawQuery), src.fresh.autocomplete, (r) => r.autocomplete, rawQuery, (json) => json);
  }

  private queryDoc(
    src: UpstreamSource,
    key: string,
    maxAgeMs: number,
    endpoints: (r: Awaited<ReturnType<UpstreamSource['resources']>>['resources']) => string[],
    rawQuery: string,
    rewrite: (json: Json) => Json,
  ): Promise<Contribution<Json>> {
    return this.get(
      src,
      key,
      maxAgeMs,
      {
        fetch: async (v) => {
          const urls = endpoints((await src.resources()).resources);
          if (urls.length === 0) return { kind: 'not-found' };
          return failover(urls, (url) => src.client.fetchJson(withQuery(url, rawQuery), v));
        },
        transform: (json) => {
          if (!isObj(json)) throw badShape(src.name, 'a search answer that is not an object');
          return { body: JSON.stringify(rewrite(json)) };
        },
      },
      (body) => JSON.parse(body) as Json,
    );
  }

  vulnerabilityIndex(src: UpstreamSource): Promise<Contribution<VulnIndex>> {
    return this.get(
      src,
      storeKey.vulnerabilityIndex(src.name),
      src.fresh.vulnerabilities,
      {
        fetch: async (v) => {
          const url = (await src.resources()).resources.vulnerability;
          return url ? src.client.fetchJson(url, v) : { kind: 'not-found' };
        },
        transform: (json) => {
          const { doc, links } = rewriteVulnerabilityIndex(json);
          const entries: VulnEntry[] = doc.map((entry) => {
            const name = String(entry['@name']);
            const key = Object.keys(links).find((k) => k.startsWith(`${name}/`))!;
            return { name, tag: key.slice(name.length + 1), url: links[key]!, entry };
          });
          return { body: JSON.stringify(entries) };
        },
      },
      (body) => ({
        entries: (JSON.parse(body) as VulnEntry[]).map((e) => ({ ...e, proxyUrl: (name: string) => vulnerabilityPageUrl(name, e.tag) })),
      }),
    );
  }

  /** Vulnerability pages change URL when their content changes, so a stored page is kept for a day of freshness. */
  vulnerabilityPage(src: UpstreamSource, url: string, name: string, tag: string): Promise<Contribution<Json>> {
    return this.get(
      src,
      storeKey.vulnerabilityPage(src.name, name, tag),
      Math.max(src.fresh.vulnerabilities, 86_400_000),
      {
        fetch: (v) => src.client.fetchJson(url, v),
        transform: (json) => {
          if (!isObj(json)) throw badShape(src.name, 'a vulnerability page that is not an object');
          return { body: JSON.stringify(json) };
        },
      },
      (body) => JSON.parse(body) as Json,
    );
  }
}

/**
 * Drops every cached document about one id at every upstream (after a push, delete or relist), and every cached
 * query (a new query generation: other instances sharing the store drop theirs too).
 */
export async function invalidateId(cache: MetadataCache, upstreams: readonly string[], lowerId: string): Promise<void> {
  await cache.writeValue(QUERY_GENERATION_KEY, randomBytes(6).toString('hex'), 30 * 86_400_000);
  await Promise.all(upstreams.flatMap((u) => keysOfId(u, lowerId)).map((k) => cache.invalidate(k)));
}

function badShape(upstream: string, what: string): NuproxyError {
  return new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${upstream} sent ${what}`, { upstream });
}

/** The client replaces the @id's query with its own (§4.1): do the same, forwarding the raw query string. */
function withQuery(url: string, rawQuery: string): string {
  const bare = url.split('?')[0]!;
  return rawQuery ? `${bare}?${rawQuery}` : bare;
}

/** Tries each endpoint in order (like the client does for several search endpoints); the last error wins. */
async function failover<T>(urls: readonly string[], fn: (url: string) => Promise<T>): Promise<T> {
  let lastErr: unknown;
  for (const url of urls) {
    try {
      return await fn(url);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}
