// /metrics through a real nuproxy and a real test upstream: each request moves exactly the figures it should
// (requests by kind and status, latency histograms, cache outcomes, bytes served against the bytes the client
// got, upstream requests, errors and bytes fetched, single-flight joins, downloads in flight, breaker state).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { moved, parseMetrics, valueOf, type Scrape } from '../support/metrics-text.js';
import { redisServerPath, startRedis } from '../support/redis.js';
import { needTool } from '../support/need.js';

const noRedis = needTool('redis-server', redisServerPath() !== undefined, 'metrics (nuproxy_redis_up against a real Redis)');

async function get(url: string): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

describe('GET /metrics', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const lib = makeNupkg({ id: 'Metrics.Lib', version: '1.0.0', padBytes: 20_000 });
  const herd = makeNupkg({ id: 'Metrics.Herd', version: '1.0.0' });

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [lib, herd, makeNupkg({ id: 'Metrics.Other', version: '2.0.0' }), makeNupkg({ id: 'Metrics.Broken', version: '1.0.0' })] });
    proxy = await startTestProxy({
      upstreams: [
        {
          name: 'main',
          serviceIndex: upstream.serviceIndexUrl,
          retries: 1,
          timeouts: { connect: '2s', headers: '5s', body: '5s' },
          circuitBreaker: { failures: 2, cooldown: '1h' },
        },
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const scrape = async (): Promise<Scrape> => {
    const r = await get(`${proxy.url}metrics`);
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(r.body.toString('utf8'));
  };
  /** Scrapes until `done` holds (a download is stored a moment after its client got the last byte). */
  const scrapeUntil = async (done: (s: Scrape) => boolean): Promise<Scrape> => {
    for (let i = 0; ; i++) {
      const s = await scrape();
      if (done(s) || i >= 100) return s;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stored = (): Promise<Scrape> => scrapeUntil((s) => valueOf(s, 'nuproxy_downloads_in_flight') === 0);
  const pkgUrl = (lowerId: string, v: string): string => `${proxy.url}v3/flat/${lowerId}/${v}/${lowerId}.${v}.nupkg`;

  it('names every family by the Prometheus conventions, and no label holds a URL', async () => {
    await get(proxy.index); // something to count
    const s = await scrape();
    expect(s.types.size).toBeGreaterThan(10);
    for (const [name, type] of s.types) {
      expect(name).toMatch(/^nuproxy_[a-z_]+(_total|_seconds|_bytes)?$/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (type === 'histogram') expect(name).toMatch(/_seconds$/);
    }
    expect(s.text).not.toContain(upstream.origin);
    expect(s.text).not.toContain('127.0.0.1');
    expect(valueOf(s, 'nuproxy_upstream_circuit_state', { upstream: 'main', state: 'closed' })).toBe(1);
    expect(valueOf(s, 'nuproxy_upstream_circuit_state', { upstream: 'main', state: 'open' })).toBe(0);
    expect(valueOf(s, 'nuproxy_downloads_in_flight')).toBe(0);
    // memory metadata store: no Redis gauge at all
    expect(s.types.has('nuproxy_redis_up')).toBe(false);
  });

  it('a package miss then a hit: requests, outcomes, latency, bytes served as the client got them, bytes fetched', async () => {
    const before = await scrape();
    const miss = await get(pkgUrl('metrics.lib', '1.0.0'));
    expect(miss.status).toBe(200);
    expect(miss.headers['x-nuproxy-cache']).toBe('miss');
    const mid = await stored();
    const hit = await get(pkgUrl('metrics.lib', '1.0.0'));
    expect(hit.headers['x-nuproxy-cache']).toBe('hit');
    const after = await scrape();

    expect(moved(before, after, 'nuproxy_http_requests_total', { kind: 'package', status: '200' })).toBe(2);
    expect(moved(before, after, 'nuproxy_cache_answers_total', { kind: 'package', outcome: 'miss' })).toBe(1);
    expect(moved(before, after, 'nuproxy_cache_answers_total', { kind: 'package', outcome: 'hit' })).toBe(1);
    expect(moved(before, after, 'nuproxy_http_response_bytes_total', { kind: 'package' })).toBe(miss.body.length + hit.body.length);
    expect(miss.body.length).toBe(lib.length);
    // the histogram: two more observations, in the +Inf bucket and in the count, and some time in the sum
    expect(moved(before, after, 'nuproxy_http_request_duration_seconds_count', { kind: 'package' })).toBe(2);
    expect(moved(before, after, 'nuproxy_http_request_duration_seconds_bucket', { kind: 'package', le: '+Inf' })).toBe(2);
    expect(moved(before, after, 'nuproxy_http_request_duration_seconds_sum', { kind: 'package' })).toBeGreaterThan(0);
    // the miss fetched the package once from the package pool; the hit fetched nothing
    expect(moved(before, mid, 'nuproxy_upstream_requests_total', { upstream: 'main', pool: 'package', status: '2xx' })).toBe(1);
    expect(moved(before, mid, 'nuproxy_upstream_request_duration_seconds_count', { upstream: 'main', pool: 'package' })).toBe(1);
    expect(moved(before, mid, 'nuproxy_upstream_fetched_bytes_total', { upstream: 'main' })).toBeGreaterThanOrEqual(lib.length);
    expect(moved(mid, after, 'nuproxy_upstream_fetched_bytes_total', { upstream: 'main' })).toBe(0);
    expect(moved(mid, after, 'nuproxy_upstream_requests_total', { upstream: 'main', pool: 'package', status: '2xx' })).toBe(0);
  });

  it('a version list miss then a hit, and a 404 fetched then remembered (negative)', async () => {
    const before = await scrape();
    const a = await get(`${proxy.url}v3/flat/metrics.other/index.json`);
    const b = await get(`${proxy.url}v3/flat/metrics.other/index.json`);
    expect([a.headers['x-nuproxy-cache'], b.headers['x-nuproxy-cache']]).toEqual(['miss', 'hit']);
    const mid = await scrape();
    expect(moved(before, mid, 'nuproxy_http_requests_total', { kind: 'versions', status: '200' })).toBe(2);
    expect(moved(before, mid, 'nuproxy_cache_answers_total', { kind: 'versions', outcome: 'miss' })).toBe(1);
    expect(moved(before, mid, 'nuproxy_cache_answers_total', { kind: 'versions', outcome: 'hit' })).toBe(1);
    expect(moved(before, mid, 'nuproxy_cache_documents_total', { kind: 'versions', outcome: 'miss' })).toBe(1);
    expect(moved(before, mid, 'nuproxy_http_response_bytes_total', { kind: 'versions' })).toBe(a.body.length + b.body.length);

    const gone1 = await get(`${proxy.url}v3/flat/no.such.package/index.json`);
    const gone2 = await get(`${proxy.url}v3/flat/no.such.package/index.json`);
    expect([gone1.status, gone2.status]).toEqual([404, 404]);
    const after = await scrape();
    expect(moved(mid, after, 'nuproxy_http_requests_total', { kind: 'versions', status: '404' })).toBe(2);
    expect(moved(mid, after, 'nuproxy_cache_documents_total', { kind: 'versions', outcome: 'miss' })).toBe(1);
    expect(moved(mid, after, 'nuproxy_cache_documents_total', { kind: 'versions', outcome: 'negative' })).toBe(1);
    expect(moved(mid, after, 'nuproxy_upstream_requests_total', { upstream: 'main', pool: 'metadata', status: '4xx' })).toBe(1);
  });

  it('concurrent misses of one package: one download, the others join it; the download shows while in flight', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const reached = new Promise<void>((r) => (arrived = r));
    upstream.setFault(/metrics\.herd\.1\.0\.0\.nupkg$/, { kind: 'hold', until: held, arrived }, 1);
    const before = await scrape();
    const first = get(pkgUrl('metrics.herd', '1.0.0'));
    await reached;
    const rest = [1, 2, 3, 4].map(() => get(pkgUrl('metrics.herd', '1.0.0')));
    // the four have joined while the one download is held
    const during = await scrapeUntil((s) => moved(before, s, 'nuproxy_single_flight_joins_total', { kind: 'package' }) >= 4);
    expect(moved(before, during, 'nuproxy_single_flight_joins_total', { kind: 'package' })).toBe(4);
    expect(valueOf(during, 'nuproxy_downloads_in_flight')).toBe(1);
    release();
    const all = await Promise.all([first, ...rest]);
    for (const r of all) expect(r.body.equals(Buffer.from(herd))).toBe(true);
    const after = await stored();
    expect(moved(before, after, 'nuproxy_single_flight_joins_total', { kind: 'package' })).toBe(4);
    expect(moved(before, after, 'nuproxy_cache_answers_total', { kind: 'package', outcome: 'shared' })).toBe(4);
    expect(moved(before, after, 'nuproxy_upstream_requests_total', { upstream: 'main', pool: 'package', status: '2xx' })).toBe(1);
    expect(valueOf(after, 'nuproxy_downloads_in_flight')).toBe(0);
  });

  it('an upstream failing: 502s counted, upstream errors by reason, the breaker opens and then refuses', async () => {
    upstream.setFault(/metrics\.broken\/index\.json$/, { kind: 'status', status: 503 });
    const before = await scrape();
    const r1 = await get(`${proxy.url}v3/flat/metrics.broken/index.json`);
    const r2 = await get(`${proxy.url}v3/flat/metrics.broken/index.json`);
    expect([r1.status, r2.status]).toEqual([502, 502]);
    const mid = await scrape();
    expect(moved(before, mid, 'nuproxy_http_requests_total', { kind: 'versions', status: '502' })).toBe(2);
    expect(moved(before, mid, 'nuproxy_upstream_errors_total', { upstream: 'main', pool: 'metadata', reason: 'status_5xx' })).toBe(2);
    expect(moved(before, mid, 'nuproxy_upstream_requests_total', { upstream: 'main', pool: 'metadata', status: '5xx' })).toBe(2);
    // failures: 2 opened it
    expect(valueOf(mid, 'nuproxy_upstream_circuit_state', { upstream: 'main', state: 'open' })).toBe(1);
    expect(valueOf(mid, 'nuproxy_upstream_circuit_state', { upstream: 'main', state: 'closed' })).toBe(0);
    const r3 = await get(`${proxy.url}v3/flat/metrics.broken/index.json`);
    expect(r3.status).toBe(502);
    const after = await scrape();
    expect(moved(mid, after, 'nuproxy_upstream_errors_total', { upstream: 'main', pool: 'metadata', reason: 'circuit_open' })).toBe(1);
    expect(moved(mid, after, 'nuproxy_upstream_requests_total', { upstream: 'main', pool: 'metadata', status: '5xx' })).toBe(0);
  });

  it('counts the routes outside the feed too (health, a malformed path), and its own scrapes', async () => {
    const before = await scrape();
    expect((await get(`${proxy.url}health/live`)).status).toBe(200);
    expect((await get(`${proxy.url}v3/flat/a%2Fb/index.json`)).status).toBe(400);
    const after = await scrape();
    expect(moved(before, after, 'nuproxy_http_requests_total', { kind: 'health', status: '200' })).toBe(1);
    expect(moved(before, after, 'nuproxy_http_requests_total', { kind: 'versions', status: '400' })).toBe(1);
    // the scrape before this one was counted once it was over
    expect(moved(before, after, 'nuproxy_http_requests_total', { kind: 'metrics', status: '200' })).toBe(1);
  });
});

describe('metrics.enabled: false', () => {
  it('has no /metrics route', async () => {
    const upstream = await startTestUpstream({ packages: [] });
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { metrics: { enabled: false } } });
    try {
      const r = await get(`${proxy.url}metrics`);
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body.toString('utf8'))).toMatchObject({ error: 'not_found' });
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});

describe.skipIf(noRedis !== undefined)('nuproxy_redis_up', () => {
  it('is 1 while Redis answers and 0 once it is gone', async () => {
    const redis = await startRedis();
    const upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Redis.Gauge', version: '1.0.0' })] });
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { metadata: redis.url, redisTimeout: '200ms' } } });
    const scrape = async (): Promise<Scrape> => parseMetrics((await get(`${proxy.url}metrics`)).body.toString('utf8'));
    try {
      expect((await get(`${proxy.url}v3/flat/redis.gauge/index.json`)).status).toBe(200);
      expect(valueOf(await scrape(), 'nuproxy_redis_up')).toBe(1);
      await redis.kill();
      // a request finds it gone (the link marks it down at once, or at the next command)
      expect((await get(`${proxy.url}v3/flat/redis.gauge/index.json`)).status).toBe(200);
      let s = await scrape();
      for (let i = 0; i < 50 && s.samples.get('nuproxy_redis_up') !== 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        s = await scrape();
      }
      expect(s.samples.get('nuproxy_redis_up')).toBe(0);
    } finally {
      await proxy.stop();
      await upstream.close();
      await redis.stop().catch(() => undefined);
    }
  });
});
