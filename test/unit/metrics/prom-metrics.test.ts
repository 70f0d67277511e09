import { describe, expect, it } from 'vitest';
import promClient from 'prom-client';
import { HistogramCell } from '../../../src/metrics/families.js';
import { PromMetrics } from '../../../src/metrics/prom-metrics.js';
import { noMetrics } from '../../../src/metrics/metrics.js';
import { docKindOfKey, storeKey } from '../../../src/feed/cache-keys.js';
import { parseMetrics, valueOf } from '../../support/metrics-text.js';

const text = async (m: PromMetrics) => parseMetrics((await m.scrape()).body);

describe('HistogramCell', () => {
  it('puts a value in the first bucket whose bound it does not exceed (le: less than or equal), the rest in +Inf', () => {
    const h = new HistogramCell([0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 1, 5]) h.observe(v);
    expect([...h.counts]).toEqual([2, 2, 1]);
    expect(h.count).toBe(5);
    expect(h.sum).toBeCloseTo(6.65);
  });
});

describe('PromMetrics', () => {
  it('exports requests, latency as cumulative buckets with _sum and _count, and bytes served', async () => {
    const m = new PromMetrics();
    m.request('package', 200, 0.0004, 100);
    m.request('package', 200, 0.2, 50);
    m.request('package', 404, 0.001, 0);
    const s = await text(m);
    expect(s.types.get('nuproxy_http_requests_total')).toBe('counter');
    expect(s.types.get('nuproxy_http_request_duration_seconds')).toBe('histogram');
    expect(valueOf(s, 'nuproxy_http_requests_total', { kind: 'package', status: '200' })).toBe(2);
    expect(valueOf(s, 'nuproxy_http_requests_total', { kind: 'package', status: '404' })).toBe(1);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_bucket', { kind: 'package', le: '0.0005' })).toBe(1);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_bucket', { kind: 'package', le: '0.001' })).toBe(2);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_bucket', { kind: 'package', le: '0.25' })).toBe(3);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_bucket', { kind: 'package', le: '+Inf' })).toBe(3);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_count', { kind: 'package' })).toBe(3);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_sum', { kind: 'package' })).toBeCloseTo(0.2014);
    expect(valueOf(s, 'nuproxy_http_response_bytes_total', { kind: 'package' })).toBe(150);
  });

  it('counts answers by outcome (an unknown one as other), documents, joins and evictions', async () => {
    const m = new PromMetrics();
    m.answer('versions', 'hit');
    m.answer('versions', 'hit');
    m.answer('versions', 'something-new');
    m.document('versions', 'negative');
    m.singleFlightJoin('package');
    m.eviction('size', 1000);
    m.eviction('size', 24);
    const s = await text(m);
    expect(valueOf(s, 'nuproxy_cache_answers_total', { kind: 'versions', outcome: 'hit' })).toBe(2);
    expect(valueOf(s, 'nuproxy_cache_answers_total', { kind: 'versions', outcome: 'other' })).toBe(1);
    expect(s.text).not.toContain('something-new');
    expect(valueOf(s, 'nuproxy_cache_documents_total', { kind: 'versions', outcome: 'negative' })).toBe(1);
    // every fixed label set is exported from the start at 0 (a rate over a series that appears later misses its first step)
    expect(s.samples.get('nuproxy_cache_documents_total{kind="registration",outcome="stale"}')).toBe(0);
    expect(valueOf(s, 'nuproxy_single_flight_joins_total', { kind: 'package' })).toBe(1);
    expect(valueOf(s, 'nuproxy_evictions_total', { reason: 'size' })).toBe(2);
    expect(valueOf(s, 'nuproxy_evicted_bytes_total', { reason: 'size' })).toBe(1024);
  });

  it("keeps one meter per upstream: requests by status class, failures by reason, bytes fetched", async () => {
    const m = new PromMetrics();
    const up = m.upstream('corp');
    expect(m.upstream('corp')).toBe(up);
    up.request('metadata', 200, 0.01);
    up.request('metadata', 304, 0.01);
    up.request('package', 503, 0.5);
    up.failure('package', 'status_5xx');
    up.failure('metadata', 'timeout');
    up.fetched(4096);
    const s = await text(m);
    expect(valueOf(s, 'nuproxy_upstream_requests_total', { upstream: 'corp', pool: 'metadata', status: '2xx' })).toBe(1);
    expect(valueOf(s, 'nuproxy_upstream_requests_total', { upstream: 'corp', pool: 'metadata', status: '3xx' })).toBe(1);
    expect(valueOf(s, 'nuproxy_upstream_requests_total', { upstream: 'corp', pool: 'package', status: '5xx' })).toBe(1);
    expect(valueOf(s, 'nuproxy_upstream_errors_total', { upstream: 'corp', pool: 'package', reason: 'status_5xx' })).toBe(1);
    expect(valueOf(s, 'nuproxy_upstream_errors_total', { upstream: 'corp', pool: 'metadata', reason: 'timeout' })).toBe(1);
    expect(valueOf(s, 'nuproxy_upstream_request_duration_seconds_count', { upstream: 'corp', pool: 'metadata' })).toBe(2);
    expect(valueOf(s, 'nuproxy_upstream_fetched_bytes_total', { upstream: 'corp' })).toBe(4096);
  });

  it('reads the gauges when scraped: breaker as a state set, downloads, Redis and the store only once watched', async () => {
    const m = new PromMetrics();
    let state: 'closed' | 'open' | 'half-open' = 'closed';
    let inFlight = 3;
    m.watchBreaker('corp', () => state);
    m.watchDownloads(() => inFlight);
    let s = await text(m);
    expect(valueOf(s, 'nuproxy_upstream_circuit_state', { upstream: 'corp', state: 'closed' })).toBe(1);
    expect(valueOf(s, 'nuproxy_downloads_in_flight')).toBe(3);
    expect(s.types.has('nuproxy_redis_up')).toBe(false);
    expect(s.types.has('nuproxy_store_bytes')).toBe(false);
    state = 'half-open';
    inFlight = 0;
    let up = false;
    m.watchRedis(() => up);
    m.watchStore(async () => ({ bytes: 5000, packages: 7 }));
    s = await text(m);
    expect(valueOf(s, 'nuproxy_upstream_circuit_state', { upstream: 'corp', state: 'closed' })).toBe(0);
    expect(valueOf(s, 'nuproxy_upstream_circuit_state', { upstream: 'corp', state: 'half-open' })).toBe(1);
    expect(valueOf(s, 'nuproxy_downloads_in_flight')).toBe(0);
    expect(s.samples.get('nuproxy_redis_up')).toBe(0);
    expect(valueOf(s, 'nuproxy_store_bytes')).toBe(5000);
    expect(valueOf(s, 'nuproxy_store_packages')).toBe(7);
    up = true;
    // a store that cannot say is left out, and the scrape still succeeds
    m.watchStore(() => Promise.reject(new Error('listing failed')));
    s = await text(m);
    expect(valueOf(s, 'nuproxy_redis_up')).toBe(1);
    expect(s.samples.has('nuproxy_store_bytes')).toBe(false);
  });

  it("aggregates like the primary does with workers: counters and histograms summed, each gauge by its aggregator", async () => {
    const a = new PromMetrics();
    const b = new PromMetrics();
    a.request('versions', 200, 0.002, 10);
    b.request('versions', 200, 0.002, 30);
    a.watchDownloads(() => 1);
    b.watchDownloads(() => 2);
    a.watchStore(() => ({ bytes: 100, packages: 1 }));
    b.watchStore(() => ({ bytes: 100, packages: 1 }));
    a.watchRedis(() => true);
    b.watchRedis(() => false);
    const merged = promClient.AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
    const s = parseMetrics(await merged.metrics());
    expect(valueOf(s, 'nuproxy_http_requests_total', { kind: 'versions', status: '200' })).toBe(2);
    expect(valueOf(s, 'nuproxy_http_request_duration_seconds_bucket', { kind: 'versions', le: '0.0025' })).toBe(2);
    expect(valueOf(s, 'nuproxy_http_response_bytes_total', { kind: 'versions' })).toBe(40);
    expect(valueOf(s, 'nuproxy_downloads_in_flight')).toBe(3);
    expect(valueOf(s, 'nuproxy_store_bytes')).toBe(100);
    expect(s.samples.get('nuproxy_redis_up')).toBe(0);
  });

  it('the no-op records nothing and costs nothing to call', () => {
    expect(() => {
      noMetrics.request('package', 200, 1, 1);
      noMetrics.upstream('x').request('metadata', 200, 1);
    }).not.toThrow();
  });
});

describe('docKindOfKey', () => {
  it('names the kind of every metadata store key', () => {
    expect(docKindOfKey(storeKey.serviceIndex('u'))).toBe('service_index');
    expect(docKindOfKey(storeKey.versions('u', 'a'))).toBe('versions');
    expect(docKindOfKey(storeKey.registration('u', 'semver2', 'a'))).toBe('registration');
    expect(docKindOfKey(storeKey.search('1', 'u', 'h', 'q=x'))).toBe('search');
    expect(docKindOfKey(storeKey.autocomplete('1', 'u', 'q=x'))).toBe('autocomplete');
    expect(docKindOfKey(storeKey.vulnerabilityIndex('u'))).toBe('vulnerabilities');
    expect(docKindOfKey(storeKey.vulnerabilityPage('u', 'n', 't'))).toBe('vulnerabilities');
    expect(docKindOfKey('gen:queries')).toBe('other');
  });
});
