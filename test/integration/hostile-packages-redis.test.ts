// Package files with the shared tier (a real redis-server): a package put into Redis under another package's key
// (by another instance, an older nuproxy, anyone with access) is checked like a download before it is served, and
// a download abandoned by its client releases the Redis fetch lock, so another instance waiting for it fetches
// at once instead of after the lock's 60 s.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { sharedRedisBackends, type SharedRedis } from '../support/redis-cluster.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { everyIdHas, flatPath, serveBytes, trickle, VERSION_LISTS, ZIP_START, type Watch } from '../support/hostile/packages.js';


async function until(probe: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// on one redis-server and on a Redis Cluster
for (const backend of sharedRedisBackends('the shared-tier hostile package tests'))
describe.skipIf(backend.skip !== undefined)(`package files and the shared tier (${backend.name})`, () => {
  let redis: SharedRedis;
  let hostile: HostileUpstream;
  let a: TestProxy;
  let b: TestProxy;

  beforeAll(async () => {
    redis = await backend.start();
    hostile = await startHostileUpstream();
    hostile.on(VERSION_LISTS, everyIdHas(['1.0.0']));
    const upstream = { name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0, circuitBreaker: { failures: 1000 }, limits: { abandonAfter: '1s' } };
    a = await startTestProxy({ upstreams: [upstream], config: { cache: { metadata: redis.url } } });
    b = await startTestProxy({ upstreams: [upstream], config: { cache: { metadata: redis.url } } });
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await hostile?.close();
    await redis?.stop();
  });

  it('a package in Redis whose nuspec names another package is not served: it is fetched from the upstream', async () => {
    const evil = Buffer.from(makeNupkg({ id: 'Evil.Other', version: '6.6.6' }));
    const good = Buffer.from(makeNupkg({ id: 'Tier.Wrong', version: '1.0.0' }));
    const key = 'packages/tier.wrong/1.0.0/tier.wrong.1.0.0.nupkg';
    const client = await redis.client();
    // a complete zip with a matching hash: only its identity gives it away
    await client.hSet(`nuproxy:blob:${key}`, { data: evil, sha512: createHash('sha512').update(evil).digest('base64'), upstream: 'hostile' });
    await client.close();
    hostile.on(flatPath('tier.wrong', '1.0.0'), serveBytes(good));
    const res = await request(`${a.url}v3/flat/tier.wrong/1.0.0/tier.wrong.1.0.0.nupkg`);
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(body.equals(good)).toBe(true);
    expect(hostile.hits(flatPath('tier.wrong', '1.0.0'))).toBe(1);
    expect(a.logs.lines.some((l) => l.msg === 'package in the shared tier failed its checks; fetching it again' && /another id/.test(String(l.err)))).toBe(true);
  });

  it('a download abandoned on one instance releases the fetch lock: the other instance, waiting for it, fetches at once', async () => {
    const w: Watch = { started: 0, closed: 0, bytes: 0 };
    const path = flatPath('tier.slow', '1.0.0');
    hostile.on(path, trickle(ZIP_START, w));
    const url = (p: TestProxy): string => `${p.url}v3/flat/tier.slow/1.0.0/tier.slow.1.0.0.nupkg`;
    const gone = new AbortController();
    const first = request(url(a), { signal: gone.signal }).catch(() => undefined);
    await until(() => w.started === 1, 'instance a to start the download');
    // from now on the upstream answers well; instance b asks while a still holds the lock
    const good = Buffer.from(makeNupkg({ id: 'Tier.Slow', version: '1.0.0' }));
    hostile.on(path, serveBytes(good));
    const asked = Date.now();
    const second = request(url(b), { headersTimeout: 30_000 });
    gone.abort(); // a's client leaves: a's download goes on for abandonAfter (1 s), then it is cancelled
    await first;
    await until(() => w.closed === 1, 'instance a to close its upstream connection');
    const res = await second;
    const body = Buffer.from(await res.body.arrayBuffer());
    const waited = Date.now() - asked;
    expect(res.statusCode).toBe(200);
    expect(body.equals(good)).toBe(true);
    // well before the lock would have expired on its own (60 s): it was released when the download was cancelled
    expect(waited).toBeLessThan(20_000);
    console.log(`[tier] instance b had the package ${waited} ms after asking (abandonAfter 1 s, fetch lock 60 s)`);
  });
});
