import type { BlobStore } from '../cache/blob-store.js';
import { NuproxyError, isUpstreamFailure } from '../errors.js';
import type { Logger } from '../log.js';
import type { IdRouter, IdRouting } from '../protocol/id-rules.js';
import type { IdScope } from '../protocol/id-scope.js';
import { AnswerMemo } from './answer-memo.js';
import { randomBytes } from 'node:crypto';
import { idOfKey, keysOfId, QUERY_GENERATION_KEY, storeKey } from './cache-keys.js';
import type { DocAnswer } from './doc-answer.js';
import { explain } from './explain.js';
import type { Gathered } from './fan-out.js';
import { activePolicy, createFeedContext, type FeedContext } from './feed-context.js';
import { LocalFeed } from './local-feed.js';
import type { MergedVersions } from './merge-versions.js';
import type { MetadataCache } from './metadata-cache.js';
import type { Asker, PackageFiles, PackageFile, PackageHandle } from './packages.js';
import { Publisher, type PublishOptions } from './publish.js';
import { Registrations } from './registration.js';
import { Search } from './search.js';
import { serviceIndex } from './service-index.js';
import type { Upstream, UpstreamHealth } from './upstream.js';
import { invalidateId } from './upstream-docs.js';
import { Versions } from './versions.js';
import { PolicyGate } from './policy-gate.js';
import type { Decision, Policy } from '../policy/decision.js';
import type { Metrics } from '../metrics/metrics.js';
import { Vulnerabilities, type VulnerabilityIndex } from './vulnerabilities.js';

export type { DocAnswer } from './doc-answer.js';

/** The bounds of the feed's memo caches (entries); today's values are the defaults. */
export interface FeedMemoBounds {
  /** Merged version lists, keyed by the versions of their inputs. */
  mergedVersionLists?: number;
  /** Built (merged) registrations, keyed by the versions of their inputs. */
  builtRegistrations?: number;
  /** Ids whose merged answers the answer memo keeps. */
  answerIds?: number;
}

export interface FeedOptions {
  /** The blob store (the disk's own answers are built from what it holds). */
  blobs: BlobStore;
  /** How long a merged answer is kept at all (0: never; Redis mode: cache.localTtl). */
  answerMaxAgeMs?: number;
  memo?: FeedMemoBounds;
  /** The supply-chain policy (issue #16); inactive or absent: nothing is filtered (every path as before). */
  policy?: Policy;
  /** Where policy blocks are counted (none without). */
  metrics?: Metrics;
}

/**
 * What the HTTP layer and cli/ ask: a thin facade over one part per resource (versions.ts, registration.ts,
 * search.ts, vulnerabilities.ts, service-index.ts, explain.ts), which share the upstreams, the id rules, the
 * disk cache and the answer memo (feed-context.ts). Offline mode is no concern of it: app.ts hands it upstreams
 * that never connect (offline-upstream.ts).
 */
export class Feed {
  readonly publisher: Publisher;
  private readonly ctx: FeedContext;
  private readonly versionLists: Versions;
  private readonly registrations: Registrations;
  private readonly queries: Search;
  private readonly vulns: Vulnerabilities;

  constructor(
    private readonly upstreams: readonly Upstream[],
    private readonly cache: MetadataCache,
    readonly packages: PackageFiles,
    router: IdRouter,
    publish: PublishOptions,
    log: Logger,
    opts: FeedOptions,
  ) {
    if (upstreams.length === 0) throw new NuproxyError('CONFIG_INVALID', 'at least one upstream is required');
    const answers = new AnswerMemo(() => cache.now(), opts.answerMaxAgeMs ?? Infinity, { maxIds: opts.memo?.answerIds });
    cache.onChange((key) => answers.forget(idOfKey(key)));
    const ctx = createFeedContext(upstreams, router, new LocalFeed(packages, opts.blobs), answers, log);
    this.ctx = opts.policy ? { ...ctx, policy: new PolicyGate(ctx, opts.policy, log.child({ component: 'policy' }), opts.metrics) } : ctx;
    this.publisher = new Publisher(
      this.ctx.neverAsked ? undefined : upstreams.find((u) => u.writable), // offline: read-only
      publish,
      (lowerId) => this.invalidate(lowerId),
      log.child({ component: 'publish' }),
    );
    this.versionLists = new Versions(this.ctx, opts.memo?.mergedVersionLists);
    this.registrations = new Registrations(this.ctx, this.versionLists, opts.memo?.builtRegistrations);
    this.queries = new Search(this.ctx, (lowerId) => this.versionLists.mergedVersions(lowerId));
    this.vulns = new Vulnerabilities(this.ctx);
  }

  upstreamHealth(): { name: string; writable: boolean; circuit: UpstreamHealth }[] {
    return this.upstreams.map((u) => ({ name: u.name, writable: u.writable, circuit: u.health() }));
  }

  get writableName(): string | undefined {
    return this.upstreams.find((u) => u.writable)?.name;
  }

  /** Drops every cached answer about an id, from every upstream (after a push, delete or relist). */
  invalidate(lowerId: string): Promise<void> {
    return invalidateId(this.cache, this.ctx.names, lowerId);
  }

  /** invalidate, answering which store keys held a document (the admin API's purge says what it removed). */
  async purge(lowerId: string): Promise<string[]> {
    const keys = this.ctx.names.flatMap((u) => keysOfId(u, lowerId));
    const held = await Promise.all(keys.map(async (k) => ((await this.cache.readValue(k)) !== undefined ? k : undefined)));
    await this.invalidate(lowerId);
    return held.filter((k): k is string => k !== undefined);
  }

  /**
   * Drops what one upstream supplied (its documents are stored under keys naming it): its service index and
   * vulnerability index, the version lists and registrations of `lowerIds`, and every cached search (a new
   * query generation). Answers how many documents were held.
   */
  async invalidateUpstream(name: string, lowerIds: readonly string[]): Promise<number> {
    const keys = [storeKey.serviceIndex(name), storeKey.vulnerabilityIndex(name), ...lowerIds.flatMap((id) => keysOfId(name, id))];
    let held = 0;
    for (const k of keys) {
      if ((await this.cache.readValue(k)) === undefined) continue;
      held++;
      await this.cache.invalidate(k);
    }
    await this.cache.writeValue(QUERY_GENERATION_KEY, randomBytes(6).toString('hex'), 30 * 86_400_000);
    return held;
  }

  route(lowerId: string): IdRouting {
    return this.ctx.router.route(lowerId);
  }

  serviceIndex(): Promise<DocAnswer> {
    return serviceIndex(this.ctx, this.publisher);
  }

  /** The merged version list of an id, with the upstream that wins each version. */
  mergedVersions(lowerId: string, opts: { revalidate?: boolean } = {}): Promise<(MergedVersions & { gathered: Gathered<string[]> }) | undefined> {
    return this.versionLists.mergedVersions(lowerId, opts);
  }

  versions(lowerId: string): Promise<DocAnswer | undefined> {
    return this.versionLists.answer(lowerId);
  }

  /**
   * Package files come from the upstream that wins the version in the merged list (Versions.winner), asked only
   * on a miss: a cached package is served without asking anything.
   */
  async openPackage(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD', asker?: Asker): Promise<PackageHandle | undefined> {
    const policy = activePolicy(this.ctx);
    if (policy) return this.openAllowedPackage(policy, lowerId, lowerVersion, file, method, asker);
    // two steps: what this instance holds or is fetching (no upstream asked), then the winner, handed in
    const cached = await this.packages.cached(lowerId, lowerVersion, file, method, asker);
    if (cached) return cached;
    const w = await this.versionLists.winner(lowerId, lowerVersion);
    return w && this.packages.fetch(lowerId, lowerVersion, file, method, w.upstream, asker);
  }

  /**
   * openPackage under a policy: the version's decision first, by the upstream that wins it (so even a cached copy
   * of a blocked version is refused: BLOCKED_BY_POLICY, a 404 naming the rule). Upstreams that cannot say who wins
   * leave a cached copy servable (decided by the first upstream allowed for the id), as without a policy.
   */
  private async openAllowedPackage(policy: PolicyGate, lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD', asker?: Asker): Promise<PackageHandle | undefined> {
    if (policy.allowedRecently(lowerId, lowerVersion)) {
      // allowed a moment ago (a hot package): a cached copy is served without deciding again
      const cached = await this.packages.cached(lowerId, lowerVersion, file, method, asker);
      if (cached) return cached;
    }
    let w: Awaited<ReturnType<Versions['winner']>>;
    let failure: unknown;
    try {
      w = await this.versionLists.winner(lowerId, lowerVersion);
    } catch (err) {
      if (!isUpstreamFailure(err)) throw err;
      failure = err;
    }
    await policy.check(lowerId, lowerVersion, w?.upstream.name);
    const cached = await this.packages.cached(lowerId, lowerVersion, file, method, asker);
    if (cached) return cached;
    if (failure) throw failure;
    return w && this.packages.fetch(lowerId, lowerVersion, file, method, w.upstream, asker);
  }

  /**
   * The merged list without what the policy blocks, and what it blocked (warm and export resolve and fetch over
   * it, and say what they skipped). Without a policy: the merged list, nothing blocked.
   */
  allowedVersions(lowerId: string): ReturnType<Versions['allowedVersions']> {
    return this.versionLists.allowedVersions(lowerId);
  }

  /**
   * The policy's decision on one version, by the upstream that wins it (upstreams that cannot say: the first
   * allowed for the id); undefined when no policy is in force. Nothing is logged or counted: export asks it of
   * every cached package and reports what it leaves out itself.
   */
  async policyDecision(lowerId: string, lowerVersion: string): Promise<Decision | undefined> {
    const policy = activePolicy(this.ctx);
    if (!policy) return undefined;
    let winner: string | undefined;
    try {
      winner = (await this.versionLists.winner(lowerId, lowerVersion))?.upstream.name;
    } catch (err) {
      if (!isUpstreamFailure(err)) throw err;
    }
    return (await policy.decideOne(lowerId, lowerVersion, winner)).decision;
  }

  registrationIndex(hive: string, lowerId: string): Promise<DocAnswer | undefined> {
    return this.registrations.index(hive, lowerId);
  }

  registrationPage(hive: string, lowerId: string, lower: string, upper: string): Promise<DocAnswer | undefined> {
    return this.registrations.page(hive, lowerId, lower, upper);
  }

  registrationLeaf(hive: string, lowerId: string, lowerVersion: string): Promise<DocAnswer | undefined> {
    return this.registrations.leaf(hive, lowerId, lowerVersion);
  }

  /**
   * `scope` (a token's ids, issue #15): only the ids it allows, paged over those (skip/take and totalHits of the
   * filtered list); undefined: every id, the unscoped answer as before.
   */
  search(rawQuery: string, scope?: IdScope): Promise<DocAnswer | undefined> {
    return this.queries.search(rawQuery, scope);
  }

  /** `scope` as for search; the versions of an id outside it are answered as those of an id nobody lists. */
  autocomplete(rawQuery: string, scope?: IdScope): Promise<DocAnswer | undefined> {
    return this.queries.autocomplete(rawQuery, scope);
  }

  /** Every upstream's vulnerability index combined, with page names prefixed by upstream (§6.3). */
  vulnerabilityIndex(): Promise<VulnerabilityIndex | undefined> {
    return this.vulns.index();
  }

  /**
   * The combined vulnerability index; stored on disk too, and served from there offline or when upstreams fail.
   * It names pages, no ids, so it is one answer for every scope (`_scope`: the HTTP layer passes it like to the
   * other answers; the pages are what is filtered).
   */
  vulnerabilities(_scope?: IdScope): Promise<DocAnswer | undefined> {
    return this.vulns.stored();
  }

  /** One page (package ids to advisories); with a `scope`, only the ids it allows. */
  vulnerabilityPage(name: string, tag: string, scope?: IdScope): Promise<DocAnswer | undefined> {
    return this.vulns.page(name, tag, scope);
  }

  /** Why an id is answered as it is: rules, what each upstream lists, and which upstream wins each version. */
  explain(lowerId: string): Promise<Record<string, unknown>> {
    return explain(this.ctx, lowerId);
  }
}
