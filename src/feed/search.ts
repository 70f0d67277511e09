// Search and autocomplete merged over the upstreams that offer them, and over the cache for those that do not (a
// static or flat-only feed has no search: what nuproxy cached from it is searched instead, so `dotnet package
// search` and `dotnet new install` work behind it). The merge rules themselves are in protocol/search-merge.ts.
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
  type MergeOptions,
  type UpstreamSearch,
} from '../protocol/search-merge.js';
import type { IdScope } from '../protocol/id-scope.js';
import { searchHive } from '../protocol/search.js';
import type { ProxyCapabilities } from '../protocol/service-index.js';
import { REGISTRATION_HIVES } from '../protocol/service-types.js';
import { answerKey } from './cache-keys.js';
import { cacheAnswer, mergedAnswer, type DocAnswer } from './doc-answer.js';
import { checkFailures, fanOut, versionOf, type Contribution } from './fan-out.js';
import { activePolicy, routeToAsk, withCapability, type AllowedLocally, type FeedContext } from './feed-context.js';
import { contentVersion, type LocalFeed } from './local-feed.js';
import { orLocal } from './or-local.js';
import type { Upstream } from './upstream.js';
import type { PolicyGate, WinnerOf } from './policy-gate.js';
import { filterAutocompleteIds, filterAutocompleteVersions, filterSearchPage } from './policy-search.js';

type Json = Record<string, unknown>;

const HIVE_NAMES = REGISTRATION_HIVES.map((h) => h.name);

const offersSearch = (c: ProxyCapabilities): boolean => c.search;
const offersAutocomplete = (c: ProxyCapabilities): boolean => c.autocomplete;

/** The name the cache goes by among the sources of a merged search (not a valid upstream name: no clash). */
const CACHE_SOURCE = '(cache)';

/**
 * One paged query kind (search, or autocomplete of ids): how a window is asked for and merged. Made once per
 * kind, so a query costs no extra objects for being paged by the shared loop.
 */
interface Paging {
  /** The query's skip and take, and the query an upstream is asked for one window. */
  query(rawQuery: string, window?: number): { rawQuery: string; skip: number; take: number };
  key(rawQuery: string, scope?: IdScope): string;
  ask(upstream: Upstream, upstreamQuery: string, hive: string): Promise<Contribution<Json>>;
  askCache(local: LocalFeed, params: URLSearchParams, cached: AllowedLocally, scope?: IdScope): Promise<Json>;
  merge(answers: UpstreamSearch[], opts: MergeOptions & { window: number }): { doc: Json; complete: boolean };
}

const SEARCH: Paging = {
  query: upstreamSearchQuery,
  key: answerKey.search,
  ask: (upstream, q, hive) => upstream.search(q, hive),
  askCache: (local, params, cached, scope) => local.search(params, cached, scope),
  merge: mergeSearchWindow,
};

const AUTOCOMPLETE_IDS: Paging = {
  query: upstreamAutocompleteQuery,
  key: answerKey.autocomplete,
  ask: (upstream, q) => upstream.autocomplete(q),
  askCache: (local, params, cached, scope) => local.autocomplete(params, cached, scope),
  merge: mergeAutocompleteIdsWindow,
};

/** Who answers a query: the upstreams that offer it, and the cache for those that do not (`cached`: which copies count). */
interface Plan {
  names: string[];
  cached?: AllowedLocally;
}

/**
 * Search and autocomplete answers: merged over the upstreams (and the cache), or the cache alone when they all fail.
 * A `scope` (a token's ids, issue #15) filters every source before the merge pages it, so skip/take and totalHits
 * are those of the filtered list; its answers are named and versioned apart (answerKey, scopedVersion). Without
 * one, every path is the unscoped one as it was (no extra work).
 */
export class Search {
  constructor(
    private readonly ctx: FeedContext,
    /** The merged version list of an id (which upstream wins each version): the policy decides by it. */
    private readonly winners: WinnerOf = async () => undefined,
  ) {}

  async search(rawQuery: string, scope?: IdScope): Promise<DocAnswer | undefined> {
    const r = scope
      ? await orLocal(this.ctx.log, this.mergedSearch(rawQuery, scope), (q: string, whole: boolean) => this.fromDisk(SEARCH, q, whole, scope), rawQuery)
      : await orLocal(this.ctx.log, this.mergedSearch(rawQuery), this.searchDisk, rawQuery);
    if (!r || r.from === 'upstreams') return r?.value;
    const policy = activePolicy(this.ctx);
    const doc = policy ? (await filterSearchPage(policy, r.value, this.winners)).doc : r.value;
    return cacheAnswer(answerKey.search(rawQuery, scope), JSON.stringify(doc), false, r.outcome);
  }

  async autocomplete(rawQuery: string, scope?: IdScope): Promise<DocAnswer | undefined> {
    const r = scope
      ? await orLocal(this.ctx.log, this.mergedAutocomplete(rawQuery, scope), (q: string, whole: boolean) => this.fromDisk(AUTOCOMPLETE_IDS, q, whole, scope), rawQuery)
      : await orLocal(this.ctx.log, this.mergedAutocomplete(rawQuery), this.autocompleteDisk, rawQuery);
    if (!r || r.from === 'upstreams') return r?.value;
    const policy = activePolicy(this.ctx);
    const doc = policy ? await this.policyOnAutocomplete(policy, rawQuery, r.value) : r.value;
    return cacheAnswer(answerKey.autocomplete(rawQuery, scope), JSON.stringify(doc), false, r.outcome);
  }

  /** The cache's autocomplete answer under the policy: only a versions query lists versions to filter. */
  private async policyOnAutocomplete(policy: PolicyGate, rawQuery: string, doc: Json): Promise<Json> {
    const id = new URLSearchParams(rawQuery).get('id');
    if (id === null || !isAutocompleteVersionsQuery(rawQuery)) return (await filterAutocompleteIds(policy, doc, this.winners)).doc;
    return (await filterAutocompleteVersions(policy, id.toLowerCase(), doc, this.winners)).doc;
  }

  // the cache alone: an empty answer counts only when no upstream was asked at all (else it is the failure)
  private async fromDisk(p: Paging, rawQuery: string, whole: boolean, scope: IdScope | undefined): Promise<Json | undefined> {
    const local = await p.askCache(this.ctx.local, new URLSearchParams(rawQuery), this.ctx.allowedLocally, scope);
    return (local.data as unknown[]).length || whole ? local : undefined;
  }

  // bound once: the unscoped (hot) path makes no closure per call
  private readonly searchDisk = (rawQuery: string, whole: boolean): Promise<Json | undefined> => this.fromDisk(SEARCH, rawQuery, whole, undefined);
  private readonly autocompleteDisk = (rawQuery: string, whole: boolean): Promise<Json | undefined> => this.fromDisk(AUTOCOMPLETE_IDS, rawQuery, whole, undefined);

  /**
   * Search merged over the upstreams that have it and, for those that have none, the cache (as one more source,
   * last in priority; see plan). Every source is asked for the same window, so paging stays exact.
   */
  private mergedSearch(rawQuery: string, scope?: IdScope): Promise<DocAnswer> {
    const hive = searchHive(new URLSearchParams(rawQuery), HIVE_NAMES)!;
    return this.paged(SEARCH, rawQuery, hive, this.plan(offersSearch), scope);
  }

  /** Autocomplete (ids, or the versions of one id) merged like search, the cache included the same way. */
  private async mergedAutocomplete(rawQuery: string, scope?: IdScope): Promise<DocAnswer> {
    const id = new URLSearchParams(rawQuery).get('id');
    const versionsOf = id !== null && isAutocompleteVersionsQuery(rawQuery) ? id.toLowerCase() : undefined;
    // an id outside the scope: answered as an id nobody lists, without asking anyone (nor planning to), so the
    // answer is the same whether the id exists or not
    if (scope && versionsOf !== undefined && !scope.allows(versionsOf)) return outOfScope(answerKey.autocomplete(rawQuery, scope), scope);
    const plan = this.plan(offersAutocomplete);
    if (versionsOf !== undefined) return this.autocompleteVersions(rawQuery, versionsOf, plan, scope);
    return this.paged(AUTOCOMPLETE_IDS, rawQuery, '', plan, scope);
  }

  /** The versions of one id (inside the scope, if any): only the upstreams allowed to serve it (and the cache, for those without autocomplete). */
  private async autocompleteVersions(rawQuery: string, lowerId: string, planned: Promise<Plan>, scope: IdScope | undefined): Promise<DocAnswer> {
    const plan = await planned;
    const routing = routeToAsk(this.ctx, lowerId);
    const g = await fanOut(plan.names.filter((n) => routing.allowed.includes(n)), (name) => this.ctx.upstream(name).autocomplete(rawQuery));
    checkFailures(g, routing);
    const fromCache = plan.cached && (await this.ctx.local.autocomplete(new URLSearchParams(rawQuery), plan.cached));
    let doc: Json = mergeAutocompleteVersions([...g.ok.map((c) => ({ upstream: c.upstream, doc: c.value })), ...cacheSource(fromCache)]);
    let version = versionOf(g) + cacheVersion(fromCache);
    const policy = activePolicy(this.ctx);
    if (policy) {
      const f = await filterAutocompleteVersions(policy, lowerId, doc, this.winners);
      doc = f.doc;
      version += `~${f.fingerprint}`;
    }
    return mergedAnswer(this.ctx.log, answerKey.autocomplete(rawQuery, scope), JSON.stringify(doc), scope ? scopedVersion(version, scope) : version, false, g);
  }

  /**
   * The one paging loop: every source is asked for the same window, growing until the merge has enough for
   * skip+take (or the largest window is reached).
   */
  private async paged(p: Paging, rawQuery: string, hive: string, planned: Promise<Plan>, scope?: IdScope): Promise<DocAnswer> {
    const { names, cached } = await planned;
    const { skip, take } = p.query(rawQuery);
    const routed = (lid: string, up: string): boolean => up === CACHE_SOURCE || this.ctx.router.route(lid).allowed.includes(up);
    // the scope is one more filter of the merge: a hit outside it is dropped like one the id rules refuse, so the
    // window grows until skip+take in-scope ids are merged, and totalHits counts the drops out
    const allowed = scope ? (lid: string, up: string): boolean => scope.allows(lid) && routed(lid, up) : routed;
    for (let window = searchWindowFor(skip, take); ; window = nextWindow(window)) {
      const upstreamQuery = p.query(rawQuery, window).rawQuery;
      const [g, fromCache] = await Promise.all([
        fanOut(names, (name) => p.ask(this.ctx.upstream(name), upstreamQuery, hive)),
        cached && p.askCache(this.ctx.local, windowParams(rawQuery, window), cached, scope),
      ]);
      checkFailures(g);
      const answers = [...g.ok.map((c) => ({ upstream: c.upstream, doc: c.value })), ...cacheSource(fromCache)];
      const r = p.merge(answers, { skip, take, allowed, window });
      if (r.complete || window >= MAX_TAKE) {
        let version = versionOf(g) + cacheVersion(fromCache);
        let doc = r.doc;
        // the policy filters the page: a search hit's versions, an autocomplete id with nothing allowed
        const policy = activePolicy(this.ctx);
        if (policy) {
          const f = p === SEARCH ? await filterSearchPage(policy, doc, this.winners) : await filterAutocompleteIds(policy, doc, this.winners);
          doc = f.doc;
          version += `~${f.fingerprint}`;
        }
        return mergedAnswer(this.ctx.log, p.key(rawQuery, scope), JSON.stringify(doc), scope ? scopedVersion(version, scope) : version, false, g);
      }
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
  private async plan(pick: (c: ProxyCapabilities) => boolean): Promise<Plan> {
    const names = await withCapability(this.ctx, pick);
    const without = this.ctx.names.filter((n) => !names.includes(n));
    if (without.length === 0) return { names };
    return {
      names,
      cached: (lowerId, upstream) => {
        const allowed = this.ctx.router.route(lowerId).allowed;
        if (upstream === undefined || upstream === 'import') return !allowed.some((n) => names.includes(n));
        return without.includes(upstream) && allowed.includes(upstream);
      },
    };
  }
}

/** A scoped answer's version: never equal to the unscoped answer's built from the same inputs. */
function scopedVersion(version: string, scope: IdScope): string {
  return `${version}@${scope.key}`;
}

/** The autocomplete versions of an id outside the scope: the body of an id no source lists. */
function outOfScope(key: string, scope: IdScope): DocAnswer {
  const body = JSON.stringify(mergeAutocompleteVersions([]));
  return { key, body, version: scopedVersion('none', scope), gzip: false, outcome: 'hit', upstreams: [], partial: [] };
}

/** The cache's answer as a merge source (none when the cache takes no part). */
function cacheSource(doc: Json | undefined | false): UpstreamSearch[] {
  return doc ? [{ upstream: CACHE_SOURCE, doc }] : [];
}

/** The part of an answer's version the cache contributes (it changes whenever the cache's answer does). */
function cacheVersion(doc: Json | undefined | false): string {
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
