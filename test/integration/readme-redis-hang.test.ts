// README "Redis trouble never becomes client trouble", for a Redis that hangs rather than dies: the test
// redis-server is stopped with SIGSTOP (its port still accepts connections, nothing is ever answered), so
// only cache.redisTimeout stands between a request and a wait without end. Then SIGCONT, and it recovers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from '../support/http.js';
import { needTool } from '../support/need.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { waitFor } from '../support/wait.js';

const noRedis = needTool('redis-server', redisServerPath() !== undefined, 'readme-redis-hang (a hung Redis through the proxy)');
const REDIS_TIMEOUT_MS = 500; // the default cache.redisTimeout

describe.skipIf(noRedis !== undefined)('a hung (not dead) Redis through the proxy', () => {
  let redis: TestRedis;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const ids = ['Hang.Before', 'Hang.During', 'Hang.After'];

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startTestUpstream({ packages: ids.map((id) => makeNupkg({ id, version: '1.0.0', padBytes: 64 * 1024 })) });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      // localTtl 0: every metadata hit is a Redis round trip, so every request meets the hung server
      config: { cache: { metadata: redis.url, redisTimeout: `${REDIS_TIMEOUT_MS}ms`, localTtl: 0 } },
    });
  });
  afterAll(async () => {
    redis?.resume();
    await proxy?.stop();
    await upstream?.close();
    await redis?.stop();
  });

  const storeState = async (): Promise<string> => (await get(`${proxy.url}health/ready`)).json().metadataStore.state;
  const timed = async (url: string): Promise<{ status: number; ms: number; cache: unknown; body: Buffer }> => {
    const started = performance.now();
    const r = await get(url);
    return { status: r.status, ms: performance.now() - started, cache: r.headers['x-nuproxy-cache'], body: r.body };
  };
  const listHits = (id: string): number => upstream.hits(`/v3-flatcontainer/${id}/index.json`);

  it('keeps answering every kind of request, each within about redisTimeout, and says so on /health/ready', async () => {
    const list = `${proxy.url}v3/flat/hang.before/index.json`;
    const pkg = `${proxy.url}v3/flat/hang.before/1.0.0/hang.before.1.0.0.nupkg`;
    expect((await timed(list)).status).toBe(200);
    expect((await timed(pkg)).status).toBe(200);
    expect((await timed(list)).cache).toBe('hit'); // from Redis
    expect(await storeState()).toBe('up');

    redis.pause();
    try {
      const answers = [];
      // a stored list, a new id, a stored package, a new package, the service index; twice each
      for (let round = 0; round < 2; round++) {
        for (const url of [list, `${proxy.url}v3/flat/hang.during/index.json`, pkg, `${proxy.url}v3/flat/hang.during/1.0.0/hang.during.1.0.0.nupkg`, proxy.index]) {
          const r = await timed(url);
          answers.push({ url: url.slice(proxy.url.length), status: r.status, ms: Math.round(r.ms) });
        }
      }
      console.info(`[redis hang] answers while Redis was stopped (redisTimeout ${REDIS_TIMEOUT_MS} ms): ${JSON.stringify(answers)}`);
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      // "about redisTimeout": at most one Redis call of a request waits for the bound (a request whose Redis calls
      // each waited for it would take a multiple; one that waited on the hung server, until SIGCONT)
      expect(answers.filter((a) => a.ms > 2.5 * REDIS_TIMEOUT_MS)).toEqual([]);
      expect(await storeState()).toBe('down');
    } finally {
      redis.resume();
    }
  });

  it('recovers on its own after SIGCONT: Redis is used again, without a restart of the proxy', async () => {
    // the state follows what Redis calls do: keep making requests that use it
    await waitFor('the metadata store to be up again', async () => (await get(`${proxy.url}v3/flat/hang.before/index.json`)).status === 200 && (await storeState()) === 'up', { stepMs: 50 });
    const url = `${proxy.url}v3/flat/hang.after/index.json`;
    expect((await timed(url)).status).toBe(200);
    const again = await timed(url);
    expect(again.status).toBe(200);
    expect(again.cache).toBe('hit'); // stored in Redis and read back from it (localTtl 0: no memory copy)
    expect(listHits('hang.after')).toBe(1);
  });
});
