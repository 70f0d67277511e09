import promClient from 'prom-client';

/**
 * /metrics with `workers: N`. The primary serves no HTTP: the worker that receives the scrape asks the primary
 * over the cluster channel, the primary asks every worker for its registry (prom-client's AggregatorRegistry,
 * whose worker side answers on its own) and hands back the aggregate: counters and histograms summed, each
 * gauge by its own aggregator (in-flight downloads summed; the store's size, seen alike by all, the maximum).
 */

const { AggregatorRegistry } = promClient;

/** The worker's channel to the primary (node:cluster's IPC; main.ts gives it, as it gives the box channel). */
export interface ScrapeChannel {
  send(msg: unknown): void;
  onMessage(handler: (msg: unknown) => void): void;
}

export interface Scraped {
  contentType: string;
  body: string;
}

type ScrapeMessage = { nuproxyMetrics: 1; op: 'scrape'; rid: number } | { nuproxyMetrics: 1; op: 'scraped'; rid: number; contentType?: string; body?: string; error?: string };

function isScrapeMessage(msg: unknown): msg is ScrapeMessage {
  return typeof msg === 'object' && msg !== null && (msg as { nuproxyMetrics?: unknown }).nuproxyMetrics === 1;
}

/** Longer than prom-client's own 5 s wait for the workers, so its error arrives first. */
const SCRAPE_TIMEOUT_MS = 8000;

/**
 * A worker's scrape: this worker's registry is offered to the primary's aggregation, and a scrape asks the
 * primary for every worker's figures at once.
 */
export function workerScrape(registry: promClient.Registry, channel: ScrapeChannel): () => Promise<Scraped> {
  AggregatorRegistry.setRegistries(registry);
  new AggregatorRegistry(); // installs prom-client's answer to the primary's requests (once per process)
  let nextId = 1;
  const pending = new Map<number, (m: Extract<ScrapeMessage, { op: 'scraped' }>) => void>();
  channel.onMessage((msg) => {
    if (!isScrapeMessage(msg) || msg.op !== 'scraped') return;
    const done = pending.get(msg.rid);
    pending.delete(msg.rid);
    done?.(msg);
  });
  return () =>
    new Promise<Scraped>((resolve, reject) => {
      const rid = nextId++;
      const timer = setTimeout(() => {
        pending.delete(rid);
        reject(new Error('the primary process did not answer the scrape'));
      }, SCRAPE_TIMEOUT_MS);
      timer.unref();
      pending.set(rid, (m) => {
        clearTimeout(timer);
        if (m.error !== undefined || m.body === undefined) reject(new Error(`aggregating the workers' metrics failed: ${m.error ?? 'no answer'}`));
        else resolve({ contentType: m.contentType ?? AggregatorRegistry.PROMETHEUS_CONTENT_TYPE, body: m.body });
      });
      channel.send({ nuproxyMetrics: 1, op: 'scrape', rid } satisfies ScrapeMessage);
    });
}

/** The primary's side: answers a worker's scrape request with every worker's figures aggregated. */
export class PrimaryScrapes {
  private readonly aggregator = new AggregatorRegistry();

  /** True when `msg` was a scrape request (answered through `reply`), false for any other message. */
  handle(msg: unknown, reply: (msg: unknown) => void): boolean {
    if (!isScrapeMessage(msg) || msg.op !== 'scrape') return false;
    const { rid } = msg;
    this.aggregator.clusterMetrics().then(
      (body) => reply({ nuproxyMetrics: 1, op: 'scraped', rid, contentType: this.aggregator.contentType, body } satisfies ScrapeMessage),
      (err: unknown) => reply({ nuproxyMetrics: 1, op: 'scraped', rid, error: err instanceof Error ? err.message : String(err) } satisfies ScrapeMessage),
    );
    return true;
  }
}
