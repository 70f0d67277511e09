import { NuproxyError, isUpstreamFailure } from '../errors.js';
import type { Logger } from '../log.js';
import type { MetadataEntry, MetadataStore } from '../cache/metadata-store.js';
import { SingleFlight } from '../cache/single-flight.js';
import type { JsonResult, Validators } from '../upstream/nuget-upstream.js';
import { freshness, type Clock } from './freshness.js';
import { noMetrics, type DocOutcome, type Metrics } from '../metrics/metrics.js';
import { docKindOfKey } from './cache-keys.js';

export type CacheOutcome = 'hit' | 'miss' | 'revalidated' | 'stale';

export interface CachedDoc {
  entry: MetadataEntry;
  outcome: CacheOutcome;
  /** Until when (clock ms) the entry answers without asking the upstream; 0 for a stale copy. */
  freshUntil: number;
  /** The parsed form of a body just fetched (from the transform): the reader need not parse it again. */
  value?: unknown;
}

/** What a transform makes of an upstream document: the stored body, links, and optionally its parsed form. */
export interface Transformed {
  body: string;
  links?: Record<string, string>;
  /** The document `body` is the JSON text of, when the transform has it (large ones are costly to parse again). */
  value?: unknown;
}

export interface DocSource {
  upstream: string;
  fetch: (validators: Validators) => Promise<JsonResult>;
  /**
   * Turns the upstream JSON into the stored body (rewritten to the proxy's placeholder base) and links. A
   * promise only for large documents, whose stringify is sliced so it does not hold the event loop.
   */
  transform: (json: unknown) => Transformed | Promise<Transformed>;
}

/**
 * Read-through cache for metadata documents. Fresh: served from the store. Past its freshness: revalidated with
 * the upstream's validators (a 304 only refreshes the timestamp). Upstream failing: the stored copy is served,
 * marked stale, up to `maxStaleMs` past freshness; failures are never stored as answers. Concurrent requests for
 * one key make one upstream request.
 */
export class MetadataCache {
  private readonly flights: SingleFlight<CachedDoc>;
  private readonly changeListeners: ((key: string) => void)[] = [];

  constructor(
    private readonly store: MetadataStore,
    private readonly maxStaleMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** How long an upstream's 404 is remembered (never longer than the document's own freshness). */
    private readonly notFoundMs = 0,
    private readonly metrics: Metrics = noMetrics,
  ) {
    this.flights = new SingleFlight<CachedDoc>(() => metrics.singleFlightJoin('metadata'));
    store.onRemoteChange?.((key) => this.changed(key));
  }

  /** The cache's clock (answers built from its documents are judged by the same time). */
  now(): number {
    return this.clock();
  }

  /** Calls `listener` with every key whose stored document changes or goes, here or (announced) elsewhere. */
  onChange(listener: (key: string) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(key: string): void {
    for (const l of this.changeListeners) l(key);
  }

  private maxAgeOf(entry: MetadataEntry, maxAgeMs: number): number {
    return entry.absent ? Math.min(maxAgeMs, this.notFoundMs) : maxAgeMs;
  }

  /** The document, or one with `entry.absent` when the upstream answered 404 (remembered for notFoundMs). */
  async get(key: string, maxAgeMs: number, source: DocSource): Promise<CachedDoc> {
    const stored = await this.store.get(key);
    if (stored) {
      const maxAge = this.maxAgeOf(stored, maxAgeMs);
      if (freshness(stored.fetchedAt, this.clock(), maxAge, this.maxStaleMs) === 'fresh') {
        this.metrics.document(docKindOfKey(key), stored.absent ? 'negative' : 'hit');
        return { entry: stored, outcome: 'hit', freshUntil: stored.fetchedAt + maxAge };
      }
    }
    return this.flights.run(key, () => this.refresh(key, maxAgeMs, source, stored));
  }

  /** Drops one key (used when a push changes what an id looks like); other instances drop their copies too. */
  async invalidate(key: string): Promise<void> {
    await this.store.delete(key);
    this.changed(key);
  }

  /** A small shared value (not an upstream document), e.g. the generation of cached queries. */
  async readValue(key: string): Promise<string | undefined> {
    return (await this.store.get(key))?.body;
  }

  async writeValue(key: string, value: string, ttlMs: number): Promise<void> {
    const entry = { body: value, fetchedAt: this.clock() };
    await this.store.set(key, entry, ttlMs);
    this.changed(key);
    await this.store.changed?.(key, { entry, ttlMs });
  }

  private async refresh(key: string, maxAgeMs: number, source: DocSource, stored: MetadataEntry | undefined): Promise<CachedDoc> {
    const doc = await this.fetchAndStore(key, maxAgeMs, source, stored);
    // once per upstream request, not per caller that joined it
    this.metrics.document(docKindOfKey(key), doc.outcome as DocOutcome);
    if (doc.outcome !== 'stale') this.changed(key);
    return doc;
  }

  private async fetchAndStore(key: string, maxAgeMs: number, source: DocSource, stored: MetadataEntry | undefined): Promise<CachedDoc> {
    const ttl = maxAgeMs + this.maxStaleMs;
    let result: JsonResult;
    try {
      result = await source.fetch(stored && !stored.absent ? validatorsOf(stored) : {});
    } catch (err) {
      const usable = stored && freshness(stored.fetchedAt, this.clock(), maxAgeMs, this.maxStaleMs) !== 'expired';
      if (usable && isUpstreamFailure(err)) {
        this.log.warn({ key, upstream: source.upstream, err: (err as Error).message }, 'upstream failed; serving stale metadata');
        return { entry: stored, outcome: 'stale', freshUntil: 0 };
      }
      throw err;
    }
    const now = this.clock();
    if (result.kind === 'not-found') {
      // remembered briefly, so an id one upstream lacks does not cost a request to it every time
      const entry: MetadataEntry = { body: '', fetchedAt: now, absent: true, upstream: source.upstream };
      if (this.notFoundMs > 0) await this.store.set(key, entry, this.notFoundMs + this.maxStaleMs);
      else if (stored) await this.store.delete(key);
      return { entry, outcome: stored ? 'revalidated' : 'miss', freshUntil: now + this.maxAgeOf(entry, maxAgeMs) };
    }
    if (result.kind === 'not-modified' && stored) {
      const entry: MetadataEntry = { ...stored, fetchedAt: now, ...pickValidators(result) };
      await this.store.set(key, entry, ttl);
      return { entry, outcome: 'revalidated', freshUntil: now + maxAgeMs };
    }
    if (result.kind === 'not-modified') {
      throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${source.upstream} answered 304 to an unconditional request`, { upstream: source.upstream });
    }
    const t = source.transform(result.json);
    const { body, links, value } = t instanceof Promise ? await t : t;
    const entry: MetadataEntry = {
      body,
      fetchedAt: now,
      upstream: source.upstream,
      ...(result.gzip ? { gzip: true } : {}),
      ...(links ? { links } : {}),
      ...pickValidators(result),
    };
    await this.store.set(key, entry, ttl);
    return { entry, outcome: stored ? 'revalidated' : 'miss', freshUntil: now + maxAgeMs, ...(value !== undefined ? { value } : {}) };
  }
}

function validatorsOf(e: MetadataEntry): Validators {
  return { ...(e.etag ? { etag: e.etag } : {}), ...(e.lastModified ? { lastModified: e.lastModified } : {}) };
}

function pickValidators(r: { etag?: string; lastModified?: string }): Pick<MetadataEntry, 'etag' | 'lastModified'> {
  return { ...(r.etag ? { etag: r.etag } : {}), ...(r.lastModified ? { lastModified: r.lastModified } : {}) };
}
