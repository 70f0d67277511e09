// Search and autocomplete merged over the upstreams that offer them, and over the cache for those that do not (a
// static or flat-only feed has no search: what nuproxy cached from it is searched instead, so `dotnet package
// search` and `dotnet new install` work behind it). The merge rules themselves are in protocol/search-merge.ts.
import type { IdRouter } from '../protocol/id-rules.js';
import {
  isAutocompleteVersionsQuery,
  MAX_TAKE,
  mergeAutocompleteIdsWindow,
  mergeAutocompleteVersions,
  mergeSearchWindow,
  SEARCH_WINDOWS,
  searchWindowFor,
  upstreamAutocompleteQuery,
  upstreamSearchQuery,
} from '../protocol/search-merge.js';
import { searchHive } from '../protocol/search.js';
import type { ProxyCapabilities } from '../protocol/service-index.js';
import { REGISTRATION_HIVES } from '../protocol/service-types.js';
import { checkFailures, fanOut, versionOf, type Gathered } from './fan-out.js';
import type { DocAnswer } from './feed.js';
import { contentVersion, type LocalFeed } from './local-feed.js';
import type { UpstreamDocs } from './upstream-docs.js';
import type { UpstreamSource } from './upstream-source.js';

/** What the merged search needs from the feed. */
export interface MergedSearchDeps {
  /** Every upstream's name, in priority order. */
  upstreams: readonly string[];
  router: IdRouter;
  docs: UpstreamDocs;
  local: LocalFeed;
  source(name: string): UpstreamSource;
  /** The upstreams whose service index offers what `pick` looks for (an unknown one counts: it is asked). */
  withCapability(pick: (c: ProxyCapabilities) => boolean): Promise<string[]>;
  /** A merged answer from the upstreams' contributions (partial when some failed). */
  answer(key: string, body: string, version: string, gzip: boolean, g: Gathered<unknown>): DocAnswer;
}

const HIVE_NAMES = REGISTRATION_HIVES.map((h) => h.name);

/** Search and autocomplete answers for Feed (which falls back to the cache alone when every upstream fails). */
export class MergedSearch {
  constructor(private readonly deps: MergedSearchDeps) {}

  /**
   * Search merged over the upstreams that have it and, for those that have none, the cache (as one more source,
   * last in priority; see plan). Every source is asked for the same window, so paging stays exact.
   */
  async search(rawQuery: string): Promise<DocAnswer> {
    const { skip, take } = upstreamSearchQuery(rawQuery);
    const hive = searchHive(new URLSearchParams(rawQuery), HIVE_NAMES)!;
    const { names, cached } = await this.plan((c) => c.search);
    const allowed = (lid: string, up: string): boolean => up === CACHE_SOURCE || this.deps.router.route(lid).allowed.includes(up);
    for (let window = searchWindowFor(skip, take); ; window = nextWindow(window)) {
      const upstreamQuery = upstreamSearchQuery(rawQuery, window).rawQuery;
      const [g, fromCache] = await Promise.all([
        fanOut(names, (name) => this.deps.docs.search(this.deps.source(name), upstreamQuery, hive)),
        cached && this.deps.local.search(windowParams(rawQuery, window), cached),
      ]);
      checkFailures(g);
      const answers = [...g.ok.map((c) => ({ upstream: c.upstream, doc: c.value })), ...cacheAnswer(fromCache)];
      const r = mergeSearchWindow(answers, { skip, take, allowed, window });
      if (r.complete || window >= MAX_TAKE) return this.deps.answer(`search:${rawQuery}`, JSON.stringify(r.doc), versionOf(g) + cacheVersion(fromCache), false, g);
    }
  }

  /** Autocomplete (ids, or the versions of one id) merged like search, the cache included the same way. */
  async autocomplete(rawQuery: string): Promise<DocAnswer> {
    const { names, cached } = await this.plan((c) => c.autocomplete);
    const id = new URLSearchParams(rawQuery).get('id');
    if (id !== null && isAutocompleteVersionsQuery(rawQuery)) {
      // versions of one id: only the upstreams allowed to serve it (and the cache, for those without autocomplete)
      const routing = this.deps.router.route(id.toLowerCase());
      const g = await fanOut(names.filter((n) => routing.allowed.includes(n)), (name) => this.deps.docs.autocomplete(this.deps.source(name), rawQuery));
      checkFailures(g, routing);
      const fromCache = cached && (await this.deps.local.autocomplete(new URLSearchParams(rawQuery), cached));
      const doc = mergeAutocompleteVersions([...g.ok.map((c) => ({ upstream: c.upstream, doc: c.value })), ...cacheAnswer(fromCache)]);
      return this.deps.answer(`ac:${rawQuery}`, JSON.stringify(doc), versionOf(g) + cacheVersion(fromCache), false, g);
    }
    const { skip, take } = upstreamAutocompleteQuery(rawQuery);
    const allowed = (lid: string, up: string): boolean => up === CACHE_SOURCE || this.deps.router.route(lid).allowed.includes(up);
    for (let window = searchWindowFor(skip, take); ; window = nextWindow(window)) {
      const upstreamQuery = upstreamAutocompleteQuery(rawQuery, window).rawQuery;
      const [g, fromCache] = await Promise.all([
        fanOut(names, (name) => this.deps.docs.autocomplete(this.deps.source(name), upstreamQuery)),
        cached && this.deps.local.autocomplete(windowParams(rawQuery, window), cached),
      ]);
      checkFailures(g);
      const answers = [...g.ok.map((c) => ({ upstream: c.upstream, doc: c.value })), ...cacheAnswer(fromCache)];
      const r = mergeAutocompleteIdsWindow(answers, { skip, take, allowed, window });
      if (r.complete || window >= MAX_TAKE) return this.deps.answer(`ac:${rawQuery}`, JSON.stringify(r.doc), versionOf(g) + cacheVersion(fromCache), false, g);
    }
  }

  /**
   * Who answers a search (or autocomplete): the upstreams that offer it, and, when some upstream does not, the
   * cache for it (`cached`: which cached copies count). A copy counts when an upstream without search supplied it
   * and the id rules allow that upstream for the id; an imported copy (or one of unknown supplier) when no
   * upstream allowed for the id has search. So an id a searching upstream can find comes from its search (which
   * knows its listing), and what only a search-less upstream has comes from the cache: cached packages only.
   * When every upstream has search, the cache is not read at all (no work added to a search hit).
   */
  private async plan(pick: (c: ProxyCapabilities) => boolean): Promise<{ names: string[]; cached?: (lowerId: string, upstream: string | undefined) => boolean }> {
    const names = await this.deps.withCapability(pick);
    const without = this.deps.upstreams.filter((n) => !names.includes(n));
    if (without.length === 0) return { names };
    return {
      names,
      cached: (lowerId, upstream) => {
        const allowed = this.deps.router.route(lowerId).allowed;
        if (upstream === undefined || upstream === 'import') return !allowed.some((n) => names.includes(n));
        return without.includes(upstream) && allowed.includes(upstream);
      },
    };
  }
}

/** The name the cache goes by among the sources of a merged search (not a valid upstream name: no clash). */
const CACHE_SOURCE = '(cache)';

/** The cache's answer as a merge source (none when the cache takes no part). */
function cacheAnswer(doc: Record<string, unknown> | undefined | false): { upstream: string; doc: Record<string, unknown> }[] {
  return doc ? [{ upstream: CACHE_SOURCE, doc }] : [];
}

/** The part of an answer's version the cache contributes (it changes whenever the cache's answer does). */
function cacheVersion(doc: Record<string, unknown> | undefined | false): string {
  return doc ? `+cache@${contentVersion(JSON.stringify(doc))}` : '';
}

/** The query's parameters with skip=0 and take=`take`: what the cache is asked for to take part in a merge. */
function windowParams(rawQuery: string, take: number): URLSearchParams {
  const params = new URLSearchParams(rawQuery);
  params.set('skip', '0');
  params.set('take', String(take));
  return params;
}

function nextWindow(w: number): number {
  return SEARCH_WINDOWS.find((x) => x > w) ?? MAX_TAKE;
}
