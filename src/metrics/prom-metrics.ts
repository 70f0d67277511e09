import promClient from 'prom-client';
import {
  ANSWER_OUTCOMES,
  DOC_KINDS,
  DOC_OUTCOMES,
  REQUEST_KINDS,
  type BreakerState,
  type DocKind,
  type DocOutcome,
  type JoinKind,
  type Metrics,
  type RequestKind,
  type StoreSummary,
  type UpstreamFailure,
  type UpstreamMeter,
  type UpstreamPool,
} from './metrics.js';
import { CounterFamily, HistogramFamily, type Cell, type HistogramCell, type Sample } from './families.js';

const { Registry } = promClient;

/** Request latency buckets (seconds): warm hits take well under a millisecond, cold misses up to seconds. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Upstream latency to the response headers (seconds). */
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'half-open', 'open'];

/** The cells of one request kind, resolved once: a request finds them by one property read. */
interface KindCells {
  byStatus: (Cell | undefined)[];
  seconds: HistogramCell;
  bytes: Cell;
  answers: Record<string, Cell>;
}

/**
 * The Metrics of a serving process, kept for prom-client's registry (one per process; with workers the primary
 * aggregates every worker's, cluster.ts). Recording is a field increment on a cell found once per label set:
 * prom-client's own Counter and Histogram hash the label set on every call (measured here: about 0.9 µs for one
 * histogram observation and one counter increment, against 10 ns), which a warm hit at 40k req/s would feel.
 * The cells are handed to the registry as collectors (objects with `get()`, as prom-client's own aggregation
 * registers them), read only when scraped.
 */
export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly requests = new CounterFamily('nuproxy_http_requests_total', 'Requests answered, by resource kind and HTTP status.', ['kind', 'status']);
  private readonly durations = new HistogramFamily('nuproxy_http_request_duration_seconds', 'Time from the request to the end of its response, by resource kind.', ['kind'], REQUEST_BUCKETS);
  private readonly served = new CounterFamily('nuproxy_http_response_bytes_total', 'Body bytes handed to clients, by resource kind (bytes served).', ['kind']);
  private readonly answers = new CounterFamily('nuproxy_cache_answers_total', 'Requests by how they were answered (X-Nuproxy-Cache: hit, miss, shared, revalidated, stale, bypass), by resource kind.', ['kind', 'outcome']);
  private readonly documents = new CounterFamily('nuproxy_cache_documents_total', "Upstream metadata documents looked up by the metadata cache: hit, miss, revalidated, stale or negative (a remembered 404), by kind.", ['kind', 'outcome']);
  private readonly joins = new CounterFamily('nuproxy_single_flight_joins_total', 'Requests that joined a metadata fetch or package download already under way instead of starting one.', ['kind']);
  private readonly evictions = new CounterFamily('nuproxy_evictions_total', 'Packages evicted from the store, by rule.', ['reason']);
  private readonly evictedBytes = new CounterFamily('nuproxy_evicted_bytes_total', 'Bytes evicted from the store, by rule.', ['reason']);
  private readonly policyBlocks = new CounterFamily('nuproxy_policy_blocks_total', 'Versions the supply-chain policy kept out of an answer or refused to download, by rule.', ['rule']);
  private readonly upRequests = new CounterFamily('nuproxy_upstream_requests_total', 'Requests to upstreams that got an answer, by upstream, pool and status class.', ['upstream', 'pool', 'status']);
  private readonly upDurations = new HistogramFamily('nuproxy_upstream_request_duration_seconds', "Time to an upstream's response headers (retries included), by upstream and pool.", ['upstream', 'pool'], UPSTREAM_BUCKETS);
  private readonly upErrors = new CounterFamily('nuproxy_upstream_errors_total', 'Failed upstream requests (no answer, a 5xx, a refused redirect, the circuit open), by upstream, pool and reason.', ['upstream', 'pool', 'reason']);
  private readonly fetchedBytes = new CounterFamily('nuproxy_upstream_fetched_bytes_total', 'Body bytes received from upstreams (bytes fetched), by upstream.', ['upstream']);
  private readonly kinds: Record<RequestKind, KindCells>;
  private readonly docCells: Record<DocKind, Record<DocOutcome, Cell>>;
  private readonly joinCells: Record<JoinKind, Cell>;
  private readonly meters = new Map<string, UpstreamMeter>();
  private readonly breakers = new Map<string, () => BreakerState>();
  private inFlight: (() => number) | undefined;
  private redisUp: (() => boolean) | undefined;
  private store: (() => StoreSummary | undefined | Promise<StoreSummary | undefined>) | undefined;

  constructor() {
    const kinds = {} as Record<RequestKind, KindCells>;
    for (const kind of REQUEST_KINDS) {
      const answers: Record<string, Cell> = {};
      for (const o of [...ANSWER_OUTCOMES, 'other']) answers[o] = this.answers.cell(kind, o);
      kinds[kind] = { byStatus: [], seconds: this.durations.cell(kind), bytes: this.served.cell(kind), answers };
    }
    this.kinds = kinds;
    const docs = {} as Record<DocKind, Record<DocOutcome, Cell>>;
    for (const kind of DOC_KINDS) {
      docs[kind] = {} as Record<DocOutcome, Cell>;
      for (const o of DOC_OUTCOMES) docs[kind][o] = this.documents.cell(kind, o);
    }
    this.docCells = docs;
    this.joinCells = { metadata: this.joins.cell('metadata'), package: this.joins.cell('package') };
    for (const f of [this.requests, this.durations, this.served, this.answers, this.documents, this.joins, this.evictions, this.evictedBytes, this.policyBlocks, this.upRequests, this.upDurations, this.upErrors, this.fetchedBytes]) {
      this.registry.registerMetric(f.collector());
    }
    this.gauge('nuproxy_upstream_circuit_state', "Each upstream's circuit breaker: 1 for its current state (closed, half-open, open), 0 for the others; with workers, how many workers see it so.", 'sum', () => {
      const out: Sample[] = [];
      for (const [upstream, state] of this.breakers) {
        const now = state();
        for (const s of BREAKER_STATES) out.push({ labels: { upstream, state: s }, value: s === now ? 1 : 0 });
      }
      return out;
    });
    this.gauge('nuproxy_downloads_in_flight', 'Package downloads from upstreams under way (with workers: all of them).', 'sum', () => [{ labels: {}, value: this.inFlight?.() ?? 0 }]);
  }

  request(kind: RequestKind, status: number, seconds: number, bytesSent: number): void {
    const k = this.kinds[kind];
    (k.byStatus[status] ??= this.requests.cell(kind, String(status))).value++;
    k.seconds.observe(seconds);
    if (bytesSent > 0) k.bytes.value += bytesSent;
  }

  answer(kind: RequestKind, outcome: string): void {
    const a = this.kinds[kind].answers;
    (a[outcome] ?? a.other!).value++;
  }

  document(kind: DocKind, outcome: DocOutcome): void {
    this.docCells[kind][outcome].value++;
  }

  singleFlightJoin(kind: JoinKind): void {
    this.joinCells[kind].value++;
  }

  eviction(reason: string, bytes: number): void {
    this.evictions.cell(reason).value++;
    this.evictedBytes.cell(reason).value += bytes;
  }

  policyBlock(rule: string): void {
    this.policyBlocks.cell(rule).value++;
  }

  /** The meter of one upstream (named by config: never a URL), its cells resolved here once per pool. */
  upstream(name: string): UpstreamMeter {
    let m = this.meters.get(name);
    if (m) return m;
    const pools = { metadata: this.poolCells(name, 'metadata'), package: this.poolCells(name, 'package') };
    const fetched = this.fetchedBytes.cell(name);
    m = {
      request: (pool, status, seconds) => {
        const p = pools[pool];
        const cls = status >= 100 && status < 600 ? Math.floor(status / 100) : 0;
        (p.byClass[cls] ??= this.upRequests.cell(name, pool, cls === 0 ? 'other' : `${cls}xx`)).value++;
        p.seconds.observe(seconds);
      },
      failure: (pool, why) => {
        const p = pools[pool];
        (p.failures[why] ??= this.upErrors.cell(name, pool, why)).value++;
      },
      fetched: (bytes) => {
        fetched.value += bytes;
      },
    };
    this.meters.set(name, m);
    return m;
  }

  private poolCells(name: string, pool: UpstreamPool): { byClass: (Cell | undefined)[]; seconds: HistogramCell; failures: Partial<Record<UpstreamFailure, Cell>> } {
    return { byClass: [], seconds: this.upDurations.cell(name, pool), failures: {} };
  }

  watchBreaker(upstream: string, state: () => BreakerState): void {
    this.breakers.set(upstream, state);
  }

  watchDownloads(inFlight: () => number): void {
    this.inFlight = inFlight;
  }

  // every worker sees the same Redis and the same store: not summed. Registered once known, so that a proxy
  // without Redis has no nuproxy_redis_up at all (an always-0 gauge would read as "Redis down").
  watchRedis(up: () => boolean): void {
    if (!this.redisUp) {
      this.gauge('nuproxy_redis_up', '1 while the Redis metadata store answers, 0 while it is down (with workers: 0 if any worker sees it down).', 'min', () =>
        this.redisUp ? [{ labels: {}, value: this.redisUp() ? 1 : 0 }] : [],
      );
    }
    this.redisUp = up;
  }

  watchStore(summary: () => StoreSummary | undefined | Promise<StoreSummary | undefined>): void {
    if (!this.store) {
      const read = async (): Promise<StoreSummary | undefined> => {
        try {
          return await this.store?.();
        } catch {
          return undefined; // a store that cannot say now is left out of this scrape, never a failed scrape
        }
      };
      this.gauge('nuproxy_store_bytes', 'Bytes of packages in the blob store.', 'max', async () => {
        const s = await read();
        return s ? [{ labels: {}, value: s.bytes }] : [];
      });
      this.gauge('nuproxy_store_packages', 'Packages in the blob store.', 'max', async () => {
        const s = await read();
        return s ? [{ labels: {}, value: s.packages }] : [];
      });
    }
    this.store = summary;
  }

  /** This process's figures in the text format, with its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A gauge computed when scraped; `aggregator`: how the primary combines the workers' values. */
  private gauge(name: string, help: string, aggregator: 'sum' | 'min' | 'max', values: () => Sample[] | Promise<Sample[]>): void {
    this.registry.registerMetric({
      name,
      get: async () => ({ name, help, type: 'gauge', aggregator, values: await values() }),
    } as unknown as promClient.Metric);
  }
}
