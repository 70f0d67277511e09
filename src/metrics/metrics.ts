/**
 * What nuproxy counts, as named and typed recording calls: the one interface every layer records through (like
 * the Logger of log.ts), so that no layer knows how figures are kept or exported. `PromMetrics`
 * (prom-metrics.ts) keeps them for /metrics; `noMetrics` is for code that runs without a server (warm, export,
 * import) and for tests that do not look. Recording is synchronous and never throws: a figure must never fail
 * or slow a request.
 */

/** What a request asked for (the label `kind`): the read routes' resources, then the rest of the routes. */
export type RequestKind =
  | 'service_index'
  | 'versions'
  | 'package'
  | 'nuspec'
  | 'registration'
  | 'search'
  | 'autocomplete'
  | 'vulnerabilities'
  | 'publish'
  | 'health'
  | 'explain'
  | 'metrics'
  | 'other';

export const REQUEST_KINDS: readonly RequestKind[] = [
  'service_index',
  'versions',
  'package',
  'nuspec',
  'registration',
  'search',
  'autocomplete',
  'vulnerabilities',
  'publish',
  'health',
  'explain',
  'metrics',
  'other',
];

/** How a request was answered, as its X-Nuproxy-Cache header says (`bypass`: a HEAD asked of the upstream). */
export const ANSWER_OUTCOMES = ['hit', 'miss', 'shared', 'revalidated', 'stale', 'bypass'] as const;
export type AnswerOutcome = (typeof ANSWER_OUTCOMES)[number];

/**
 * How the metadata cache answered for one upstream's document: fresh from the store (`hit`), fetched (`miss`),
 * refreshed by a 304 or a new body (`revalidated`), the stored copy while the upstream fails (`stale`), or a
 * remembered upstream 404 (`negative`, cache.freshness.notFound).
 */
export const DOC_OUTCOMES = ['hit', 'miss', 'revalidated', 'stale', 'negative'] as const;
export type DocOutcome = (typeof DOC_OUTCOMES)[number];

/** The metadata document kinds (a subset of RequestKind). */
export type DocKind = 'service_index' | 'versions' | 'registration' | 'search' | 'autocomplete' | 'vulnerabilities' | 'other';
export const DOC_KINDS: readonly DocKind[] = ['service_index', 'versions', 'registration', 'search', 'autocomplete', 'vulnerabilities', 'other'];

/** Which of an upstream's two pools a request went through (upstream/http-client.ts). */
export type UpstreamPool = 'metadata' | 'package';

/** Why an upstream request counts as failed: a stable code, never upstream text or a URL. */
export type UpstreamFailure = 'timeout' | 'unreachable' | 'bad_response' | 'not_allowed' | 'status_5xx' | 'circuit_open' | 'other';

/** What the single-flight joins are of: one metadata fetch, one package download. */
export type JoinKind = 'metadata' | 'package';

/** An upstream's circuit breaker state (upstream/circuit-breaker.ts). */
export type BreakerState = 'closed' | 'half-open' | 'open';

/** The blob store's size (part of the bounded cache): read at scrape time only. */
export interface StoreSummary {
  bytes: number;
  packages: number;
}

/** The figures of one upstream, bound once to its name (no label lookup per request). */
export interface UpstreamMeter {
  /** One request answered (`status`) or failed (`failure`), timed to its response headers. */
  request(pool: UpstreamPool, status: number, seconds: number): void;
  failure(pool: UpstreamPool, why: UpstreamFailure): void;
  /** Body bytes received from the upstream (metadata as sent on the wire, package bytes). */
  fetched(bytes: number): void;
}

export interface Metrics {
  /** One finished request: its kind, status, time to the end of the response, body bytes handed to the client. */
  request(kind: RequestKind, status: number, seconds: number, bytesSent: number): void;
  /** How a request was answered (its X-Nuproxy-Cache); unknown values are counted as `other`. */
  answer(kind: RequestKind, outcome: string): void;
  /** One metadata document looked up by the metadata cache (feed/metadata-cache.ts). */
  document(kind: DocKind, outcome: DocOutcome): void;
  /** A caller that found the work already under way and joined it instead of starting its own. */
  singleFlightJoin(kind: JoinKind): void;
  /** Packages removed from the store by the bounded cache, and why (the rule: size, unused, versions...). */
  eviction(reason: string, bytes: number): void;
  /** One version the supply-chain policy kept out of an answer or refused to download, by rule (issue #16). */
  policyBlock(rule: string): void;
  upstream(name: string): UpstreamMeter;
  /**
   * Gauges read when scraped, from whoever knows them (given by the composition root): a breaker's state, the
   * downloads under way, Redis up or down, the store's size. Setting one again replaces it.
   */
  watchBreaker(upstream: string, state: () => BreakerState): void;
  watchDownloads(inFlight: () => number): void;
  watchRedis(up: () => boolean): void;
  watchStore(summary: () => StoreSummary | undefined | Promise<StoreSummary | undefined>): void;
}

const noUpstream: UpstreamMeter = { request() {}, failure() {}, fetched() {} };

/** Records nothing (commands that serve no /metrics, tests). */
export const noMetrics: Metrics = {
  request() {},
  answer() {},
  document() {},
  singleFlightJoin() {},
  eviction() {},
  policyBlock() {},
  upstream: () => noUpstream,
  watchBreaker() {},
  watchDownloads() {},
  watchRedis() {},
  watchStore() {},
};

