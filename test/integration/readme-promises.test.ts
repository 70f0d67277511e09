// What README.md promises and no other test held it to, each over real sockets against a real test upstream:
// the circuit breaker ("Offline and air-gapped"), pushes in offline mode, the end of maxStale, and a package
// whose bytes differ from the SHA-512 its upstream announced ("How it caches"). The hung Redis is in
// readme-redis-hang.test.ts.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCache, waitForEmptyTmp } from '../support/cache-audit.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { get, getOutcome } from '../support/http.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { pushMultipart, send } from '../support/push.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { waitFor } from '../support/wait.js';

const timeouts = { connect: '2s', headers: '5s', body: '5s' };
const LISTS = /^\/v3-flatcontainer\/[^/]+\/index\.json$/;

interface Circuit {
  state: string;
  consecutiveFailures: number;
  lastError?: string;
}

describe('circuit breaker: failures, cooldown, one probe, state on /health/ready', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const ids = ['Cb.A', 'Cb.B', 'Cb.C', 'Cb.D', 'Cb.E', 'Cb.F', 'Cb.G'];
  const listHits = (): number => upstream.requests.filter((r) => LISTS.test(r.path)).length;
  const circuit = async (): Promise<Circuit> => (await get(`${proxy.url}health/ready`)).json().upstreams[0].circuit as Circuit;
  const list = (id: string) => get(`${proxy.url}v3/flat/${id.toLowerCase()}/index.json`);
  const circuitLogs = (): string[] => proxy.logs.lines.filter((l) => typeof l.circuit === 'string').map((l) => String(l.circuit));

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: ids.map((id) => makeNupkg({ id, version: '1.0.0' })) });
    proxy = await startTestProxy({
      upstreams: [{ name: 'flaky', serviceIndex: upstream.serviceIndexUrl, retries: 0, timeouts, circuitBreaker: { failures: 3, cooldown: '1500ms' } }],
    });
    expect((await get(proxy.index)).status).toBe(200); // the service index is fetched (and fresh) before the faults
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('opens after `failures` consecutive failures: the upstream is no longer asked, the answer is 502 at once', async () => {
    expect(await circuit()).toEqual({ state: 'closed', consecutiveFailures: 0 });
    upstream.setFault(LISTS, { kind: 'status', status: 503 });
    for (const id of ids.slice(0, 3)) {
      const r = await list(id);
      expect(r.status, id).toBe(502);
      expect(r.json(), id).toMatchObject({ error: 'upstream_status', upstream: 'flaky' });
    }
    expect(listHits()).toBe(3);
    expect(await circuit()).toEqual({ state: 'open', consecutiveFailures: 3, lastError: 'status 503' });
    // open: refused without asking the upstream
    const refused = await list('Cb.D');
    expect(refused.status).toBe(502);
    expect(refused.json()).toMatchObject({ error: 'upstream_unreachable', upstream: 'flaky', message: expect.stringMatching(/circuit open/) });
    expect(listHits()).toBe(3);
    expect(circuitLogs()).toEqual(['open']); // logged once per change, not per request
  });

  it('after the cooldown lets exactly one probe through; a failed probe opens it again', async () => {
    await waitFor('the cooldown to pass', async () => (await circuit()).state === 'half-open');
    const before = listHits();
    // three at once: one is the probe, the others are refused while it is out
    const answers = await Promise.all(['Cb.D', 'Cb.E', 'Cb.F'].map(list));
    expect(answers.map((r) => r.status)).toEqual([502, 502, 502]);
    expect(listHits()).toBe(before + 1);
    expect((await circuit()).state).toBe('open');
    expect(circuitLogs()).toEqual(['open', 'half-open', 'open']);
  });

  it('a probe that succeeds closes it: the upstream is asked again for everything', async () => {
    await waitFor('the cooldown to pass', async () => (await circuit()).state === 'half-open');
    upstream.setFault(LISTS, undefined);
    const before = listHits();
    const probe = await list('Cb.G');
    expect(probe.status).toBe(200);
    expect(probe.json()).toEqual({ versions: ['1.0.0'] });
    expect(await circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    for (const id of ['Cb.A', 'Cb.B']) expect((await list(id)).status, id).toBe(200);
    expect(listHits()).toBe(before + 3);
    expect(circuitLogs()).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });
});

describe('offline mode refuses pushes with 405', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: 'push-key' } });
    proxy = await startTestProxy({ upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true, timeouts }], config: { offline: true } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('answers push, delete and relist with 405 read_only and never opens a connection to the upstream', async () => {
    const idx = (await get(proxy.index)).json<{ resources: { '@type': string }[] }>();
    expect(idx.resources.map((r) => r['@type']).filter((t) => /Publish/.test(t))).toEqual([]);
    const push = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Team.Lib', version: '1.0.0' }), { 'x-nuget-apikey': 'push-key' });
    const symbols = await pushMultipart(`${proxy.url}v3/symbolpackage/`, makeNupkg({ id: 'Team.Lib', version: '1.0.0' }), { 'x-nuget-apikey': 'push-key' });
    const del = await send(`${proxy.url}v3/package/team.lib/1.0.0`, 'DELETE', { 'x-nuget-apikey': 'push-key' });
    const relist = await send(`${proxy.url}v3/package/team.lib/1.0.0`, 'POST', { 'x-nuget-apikey': 'push-key' });
    for (const [what, r] of [['push', push], ['symbols', symbols], ['delete', del], ['relist', relist]] as const) {
      expect(r.status, what).toBe(405);
      expect(JSON.parse(r.text), what).toMatchObject({ error: 'read_only' });
    }
    expect(upstream.requests).toEqual([]);
    expect(upstream.publishAttempts).toEqual([]);
  });
});

describe('cache.maxStale: stored metadata is served stale while the upstream fails, then no longer', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let now = Date.UTC(2030, 0, 1);
  const MINUTE = 60_000;

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Old.Lib', version: '1.0.0' })] });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, retries: 0, timeouts, circuitBreaker: { failures: 1000 } }],
      config: { cache: { freshness: { versions: '10m' }, maxStale: '1h' } },
      clock: () => now,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('stale up to maxStale past freshness, then 502 naming the upstream (nothing of the id on disk to fall back on)', async () => {
    const url = `${proxy.url}v3/flat/old.lib/index.json`;
    expect((await get(url)).json()).toEqual({ versions: ['1.0.0'] });
    upstream.setFault('/v3-flatcontainer/old.lib/index.json', { kind: 'status', status: 500 });

    now += 10 * MINUTE + 59 * MINUTE; // 59 minutes past freshness
    const stale = await get(url);
    expect(stale.status).toBe(200);
    expect(stale.headers['x-nuproxy-cache']).toBe('stale');
    expect(stale.json()).toEqual({ versions: ['1.0.0'] });

    now += 2 * MINUTE; // 61 minutes past freshness
    const hits = upstream.hits('/v3-flatcontainer/old.lib/index.json');
    const gone = await get(url);
    expect(gone.status).toBe(502);
    expect(gone.json()).toMatchObject({ error: 'upstream_status', upstream: 'company' });
    expect(upstream.hits('/v3-flatcontainer/old.lib/index.json')).toBe(hits + 1); // it did ask
  });
});

describe('a full-length package whose SHA-512 is not the one its upstream announced', () => {
  let hostile: HostileUpstream;
  let proxy: TestProxy;
  // over 2 MB, so it streams as it arrives and the held-back last byte is what protects the client (a package up
  // to 2 MB is answered only once verified: a 502, tested in hostile-packages.test.ts)
  const pkg = Buffer.from(makeNupkg({ id: 'Bad.Hash', version: '1.0.0', padBytes: 3 * 1024 * 1024 }));
  const announced = createHash('sha512').update(Buffer.from(makeNupkg({ id: 'Bad.Hash', version: '1.0.0', description: 'other bytes' }))).digest('base64');
  const NUPKG = '/v3-flatcontainer/bad.hash/1.0.0/bad.hash.1.0.0.nupkg';

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    hostile.on('/v3-flatcontainer/bad.hash/index.json', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ versions: ['1.0.0'] }));
    });
    hostile.on(NUPKG, (_req, res) => {
      // a valid zip, the length it says, the identity asked for: only the hash is wrong
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(pkg.length), 'x-ms-meta-sha512': announced });
      res.end(pkg);
    });
    proxy = await startTestProxy({ upstreams: [{ name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0, timeouts }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await hostile?.close();
  });

  it('reaches the client cut off before its last byte, is never stored, and is fetched again next time', async () => {
    for (let round = 1; round <= 2; round++) {
      const r = await getOutcome(`${proxy.url}v3/flat/bad.hash/1.0.0/bad.hash.1.0.0.nupkg`);
      expect({ status: r.status, complete: r.complete }, `round ${round}`).toEqual({ status: 200, complete: false });
      expect(r.body.length, `round ${round}`).toBeLessThan(pkg.length);
      expect(hostile.hits(NUPKG), `round ${round}`).toBe(round);
      expect(await waitForEmptyTmp(proxy.cacheDir)).toEqual([]);
      const audit = await auditCache(proxy.cacheDir);
      expect(audit.problems).toEqual([]);
      expect(audit.blobs.filter((b) => b.includes('bad.hash'))).toEqual([]);
    }
    const warned = await waitFor('a log line about the hash', () => proxy.logs.lines.find((l) => /sha-?512/i.test(JSON.stringify(l)) && l.level !== undefined && Number(l.level) >= 40));
    expect(JSON.stringify(warned)).toContain('bad.hash');
  });
});
