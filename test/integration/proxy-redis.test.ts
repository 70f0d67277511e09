import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { needTool } from '../support/need.js';
import { sharedRedisBackends, type SharedRedis } from '../support/redis-cluster.js';

const missing = needTool('redis-server', redisServerPath() !== undefined, 'proxy-redis (metadata in a real Redis)');

const packages = (): Uint8Array[] => [makeNupkg({ id: 'Shared.Lib', version: '1.0.0' }), makeNupkg({ id: 'Shared.Lib', version: '2.0.0' })];

// what the shared tier promises, on one redis-server and on a Redis Cluster
for (const backend of sharedRedisBackends('proxy-redis (metadata in a real Redis)'))
describe.skipIf(backend.skip !== undefined)(`metadata in a real shared tier (${backend.name})`, () => {
  let redis: SharedRedis;
  let upstream: TestUpstream;

  beforeAll(async () => {
    redis = await backend.start();
    upstream = await startTestUpstream({ packages: packages() });
  }, 60_000);
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
  });

  it('keeps metadata across a proxy restart, so the new process does not ask the upstream', async () => {
    const first = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { metadata: redis.url } } });
    const versions = await get(`${first.url}v3/flat/shared.lib/index.json`);
    const registration = await get(`${first.url}v3/registration/semver2/shared.lib/index.json`);
    expect(versions.headers['x-nuproxy-cache']).toBe('miss');
    await first.stop();

    upstream.resetHits();
    const second = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { metadata: redis.url } } });
    try {
      const v2 = await get(`${second.url}v3/flat/shared.lib/index.json`);
      const r2 = await get(`${second.url}v3/registration/semver2/shared.lib/index.json`);
      expect(v2.headers['x-nuproxy-cache']).toBe('hit');
      expect(v2.text).toBe(versions.text);
      // rendered for the new process's own address, from the same stored document
      expect(r2.text).toBe(registration.text.replaceAll(first.url, second.url));
      expect(upstream.requests).toEqual([]);
      expect((await get(`${second.url}health/ready`)).json()).toMatchObject({ ready: true, metadataStore: { kind: 'redis+memory', state: 'up' } });
    } finally {
      await second.stop();
    }
  });
});

// a single server killed and restarted (a cluster losing a node: test/integration/redis-cluster-failover.test.ts)
describe.skipIf(missing !== undefined)('metadata in a real Redis', () => {
  let redis: TestRedis;
  let upstream: TestUpstream;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startTestUpstream({ packages: packages() });
  });
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
  });

  it('keeps serving (from the upstream) while Redis is down, and reports it on the readiness endpoint', async () => {
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { metadata: redis.url, redisTimeout: '200ms' } } });
    try {
      await redis.kill();
      const started = Date.now();
      const r = await get(`${proxy.url}v3/flat/shared.lib/index.json`);
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ versions: ['1.0.0', '2.0.0'] });
      expect(Date.now() - started).toBeLessThan(3000);
      const ready = (await get(`${proxy.url}health/ready`)).json();
      expect(ready.metadataStore).toMatchObject({ kind: 'redis+memory', state: 'down' });
      await redis.restart();
    } finally {
      await proxy.stop();
    }
  });
});
