// /metrics with `workers: 2`, through the built nuproxy: requests answered by either worker all show up in one
// scrape, whichever worker receives it (it asks the primary, which aggregates every worker's figures). Each
// request goes over its own connection: node:cluster hands connections to the workers in turn.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { moved, parseMetrics, valueOf, type Scrape } from '../support/metrics-text.js';
import { getOutcome } from '../support/http.js';

/** A GET on a new connection: the cluster hands each connection to the next worker. */
const fresh = (url: string) => getOutcome(url, { connection: 'close' });

describe('workers: 2, one /metrics for all of them', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: NuproxyProcess;
  const pkg = makeNupkg({ id: 'Workers.Metrics', version: '1.0.0', padBytes: 5000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-metrics-workers-'));
    upstream = await startTestUpstream({ packages: [pkg] });
    proxy = await startNuproxy(dir, 'metrics-workers', {
      workers: 2,
      log: { level: 'info' },
      cache: { dir: join(dir, 'cache') },
      upstreams: [{ name: 'main', serviceIndex: upstream.serviceIndexUrl, retries: 0 }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const scrape = async (): Promise<Scrape> => {
    const r = await fresh(`${proxy.url}metrics`);
    expect(r.status).toBe(200);
    return parseMetrics(r.body.toString('utf8'));
  };
  /** The workers that logged a request for `path`. */
  const workersOf = (path: string): Set<unknown> => new Set(proxy.lines.filter((l) => l.msg === 'request' && l.path === path).map((l) => l.worker));

  it('counts the requests of both workers in every scrape, and sums the gauges', async () => {
    const before = await scrape();
    const list = `${proxy.url}v3/flat/workers.metrics/index.json`;
    const file = `${proxy.url}v3/flat/workers.metrics/1.0.0/workers.metrics.1.0.0.nupkg`;
    let served = 0;
    for (let i = 0; i < 10; i++) expect((await fresh(list)).status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const r = await fresh(file);
      expect(r.status).toBe(200);
      served += r.body.length;
    }
    expect(served).toBe(6 * pkg.length);

    // the figures are recorded once a response is over: wait until both workers' have every request
    let after = await scrape();
    for (let i = 0; i < 50 && moved(before, after, 'nuproxy_http_requests_total', { kind: 'package', status: '200' }) < 6; i++) after = await scrape();
    // both workers answered (the cluster's round robin), so one worker's figures alone would fall short (their
    // log lines are flushed every 250 ms)
    const listPath = '/v3/flat/workers.metrics/index.json';
    const filePath = '/v3/flat/workers.metrics/1.0.0/workers.metrics.1.0.0.nupkg';
    for (let i = 0; i < 100 && proxy.lines.filter((l) => l.msg === 'request' && (l.path === listPath || l.path === filePath)).length < 16; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(workersOf(listPath).size).toBe(2);
    expect(workersOf(filePath).size).toBe(2);
    expect(moved(before, after, 'nuproxy_http_requests_total', { kind: 'versions', status: '200' })).toBe(10);
    expect(moved(before, after, 'nuproxy_http_requests_total', { kind: 'package', status: '200' })).toBe(6);
    expect(moved(before, after, 'nuproxy_http_request_duration_seconds_count', { kind: 'versions' })).toBe(10);
    expect(moved(before, after, 'nuproxy_http_response_bytes_total', { kind: 'package' })).toBe(served);
    // each worker keeps its own breaker: the state gauge says how many workers see each state
    expect(valueOf(after, 'nuproxy_upstream_circuit_state', { upstream: 'main', state: 'closed' })).toBe(2);
    // a download's gauge drops when its store commit is done, which may be just after the client has every byte
    for (let i = 0; i < 50 && valueOf(after, 'nuproxy_downloads_in_flight') !== 0; i++) after = await scrape();
    expect(valueOf(after, 'nuproxy_downloads_in_flight')).toBe(0);
    // every series once (aggregated, not one copy per worker)
    const lines = after.text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(new Set(lines.map((l) => l.slice(0, l.lastIndexOf(' ')))).size).toBe(lines.length);

    // a scrape landing on the other worker gives the same figures (its own scrape aside)
    const again = await scrape();
    expect(moved(after, again, 'nuproxy_http_requests_total', { kind: 'versions', status: '200' })).toBe(0);
    expect(moved(after, again, 'nuproxy_http_requests_total', { kind: 'metrics', status: '200' })).toBe(1);
  });
});
