// Merged answers kept between requests (src/feed/answer-memo.ts) must never change what a client sees: they
// follow the freshness of the documents they were built from, remembered 404s included, and Redis mode's
// localTtl. Real proxy, real test upstreams, a clock the test moves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { needTool } from '../support/need.js';

const MINUTE = 60_000;

describe('kept merged answers follow the freshness of their documents', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const clock = { t: Date.now() };

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Memo.Lib', version: '1.0.0' })] });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: { cache: { freshness: { versions: '10m', registration: '20m' } } },
      clock: () => clock.t,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('answers hot version lists and registrations from what it keeps until they go stale, then revalidates', async () => {
    const flat = `${proxy.url}v3/flat/memo.lib/index.json`;
    const reg = `${proxy.url}v3/registration/semver2/memo.lib/index.json`;
    expect((await get(flat)).headers['x-nuproxy-cache']).toBe('miss');
    expect((await get(reg)).headers['x-nuproxy-cache']).toBe('miss');
    for (let i = 0; i < 3; i++) {
      const r = await get(flat);
      expect(r.headers['x-nuproxy-cache']).toBe('hit');
      expect(r.json()).toEqual({ versions: ['1.0.0'] });
    }
    upstream.addPackage(makeNupkg({ id: 'Memo.Lib', version: '1.1.0' }));
    const hitsBefore = upstream.requests.length;
    clock.t += 10 * MINUTE - 1; // still fresh: the kept answer, no upstream request
    expect((await get(flat)).json()).toEqual({ versions: ['1.0.0'] });
    expect((await get(reg)).headers['x-nuproxy-cache']).toBe('hit');
    expect(upstream.requests.length).toBe(hitsBefore);

    clock.t += 1; // the version list is stale now (the registration's leaves are not; its list part is)
    const after = await get(flat);
    expect(after.headers['x-nuproxy-cache']).toBe('revalidated');
    expect(after.json()).toEqual({ versions: ['1.0.0', '1.1.0'] });
    const regAfter = await get(reg);
    const versions = (regAfter.json() as { items: { items: { catalogEntry: { version: string } }[] }[] }).items.flatMap((p) => p.items.map((l) => l.catalogEntry.version));
    expect(versions).toContain('1.1.0');
  });

  it('does not keep answers built on a 404 that is not remembered (freshness.notFound 0)', async () => {
    const a = await startTestUpstream({ packages: [makeNupkg({ id: 'Only.On.A', version: '1.0.0' })] });
    const b = await startTestUpstream({ packages: [] });
    const merged = await startTestProxy({
      upstreams: [a.serviceIndexUrl, b.serviceIndexUrl],
      config: { cache: { freshness: { versions: '10m', notFound: '0s' } } },
      clock: () => clock.t,
    });
    try {
      for (let i = 0; i < 4; i++) expect((await get(`${merged.url}v3/flat/only.on.a/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
      // every answer asked b again, as without any kept answers: b may have the id by now
      expect(b.hits(/only\.on\.a\/index\.json/)).toBe(4);
      expect(a.hits(/only\.on\.a\/index\.json/)).toBe(1);
      b.addPackage(makeNupkg({ id: 'Only.On.A', version: '2.0.0' }));
      expect((await get(`${merged.url}v3/flat/only.on.a/index.json`)).json()).toEqual({ versions: ['1.0.0', '2.0.0'] });
    } finally {
      await merged.stop();
      await a.close();
      await b.close();
    }
  });
});

const noRedis = needTool('redis-server', redisServerPath() !== undefined, 'answer-memo (the Redis part)');

describe.skipIf(noRedis !== undefined)('kept merged answers with Redis shared by two instances', () => {
  let redis: TestRedis;
  let upstream: TestUpstream;
  let a: TestProxy;
  let b: TestProxy;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Shared.Memo', version: '1.0.0' })] });
    const config = { cache: { metadata: redis.url, localTtl: '300ms', freshness: { versions: '1h' } } };
    a = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config });
    b = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    await redis?.stop();
  });

  it('takes a list another instance refreshed in Redis within localTtl, as its memory copies do', async () => {
    const list = async (p: TestProxy): Promise<unknown> => (await get(`${p.url}v3/flat/shared.memo/index.json`)).json();
    expect(await list(a)).toEqual({ versions: ['1.0.0'] });
    for (let i = 0; i < 3; i++) expect(await list(b)).toEqual({ versions: ['1.0.0'] }); // b keeps its answer
    upstream.addPackage(makeNupkg({ id: 'Shared.Memo', version: '2.0.0' }));
    // a version its list lacks makes a revalidate the id; the new list goes to Redis (no announcement)
    expect((await get(`${a.url}v3/flat/shared.memo/2.0.0/shared.memo.2.0.0.nupkg`)).status).toBe(200);
    expect(await list(a)).toEqual({ versions: ['1.0.0', '2.0.0'] });
    await new Promise((r) => setTimeout(r, 400));
    expect(await list(b)).toEqual({ versions: ['1.0.0', '2.0.0'] });
  });
});
