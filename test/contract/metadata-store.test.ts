import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createMemoryMetadataStore } from '../../src/cache/keyv-metadata-store.js';
import { createRedisMetadataStore } from '../../src/cache/redis-metadata-store.js';
import type { MetadataStore } from '../../src/cache/metadata-store.js';
import { createLogSink } from '../support/log-sink.js';
import { RedisLink } from '../../src/cache/redis-link.js';
import { createOverlayMetadataStore } from '../../src/cache/overlay-metadata-store.js';
import { RedisBlobTier } from '../../src/cache/redis-blob-tier.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { needTool } from '../support/need.js';
import { sharedRedisBackends, type SharedRedis } from '../support/redis-cluster.js';
import { metadataStoreContract } from './metadata-store.contract.js';

const HOUR = 3_600_000;
const noRedis = needTool('redis-server', redisServerPath() !== undefined, 'the Redis MetadataStore contract tests');

metadataStoreContract('memory', async () => {
  const store = createMemoryMetadataStore(64 * 1024 * 1024);
  return { store, cleanup: () => store.close() };
});

// the shared tier's contract on one redis-server and on a Redis Cluster (3 masters, 3 replicas)
for (const backend of sharedRedisBackends('the Redis MetadataStore contract tests'))
describe.skipIf(backend.skip !== undefined)(`${backend.name} backend`, () => {
  let redis: SharedRedis;
  beforeAll(async () => {
    redis = await backend.start();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  metadataStoreContract(backend.name, async () => {
    const { logger } = createLogSink();
    const store = createRedisMetadataStore(redis.target, 2_000, logger);
    return { store, cleanup: () => store.close() };
  });

  // what a scaled-out instance uses: memory in front of Redis, with invalidation broadcast
  metadataStoreContract(`${backend.name} with memory in front`, async () => {
    const { logger } = createLogSink();
    const link = new RedisLink(redis.target, 2_000, logger);
    link.connect();
    const store = createOverlayMetadataStore(createRedisMetadataStore(link, 2_000, logger), link, { maxBytes: 64 * 1024 * 1024, localTtlMs: 50 });
    return { store, cleanup: () => link.close() };
  });

  it('drops memory copies on other instances when one deletes a key', async () => {
    const { logger } = createLogSink();
    const links = [new RedisLink(redis.target, 2_000, logger), new RedisLink(redis.target, 2_000, logger)];
    links.forEach((l) => l.connect());
    const [one, two] = links.map((l) => createOverlayMetadataStore(createRedisMetadataStore(l, 2_000, logger), l, { maxBytes: 1 << 20, localTtlMs: 60_000 }));
    try {
      await one!.set('shared:k', { body: 'v1', fetchedAt: 1 }, HOUR);
      expect((await two!.get('shared:k'))?.body).toBe('v1'); // now in two's memory for a minute
      await one!.set('shared:k', { body: 'v2', fetchedAt: 2 }, HOUR);
      await one!.changed('shared:k');
      let seen: string | undefined;
      for (let i = 0; i < 50 && seen !== 'v2'; i++) {
        seen = (await two!.get('shared:k'))?.body;
        if (seen !== 'v2') await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toBe('v2');
      await one!.delete('shared:k');
      let gone = false;
      for (let i = 0; i < 50 && !gone; i++) {
        gone = (await two!.get('shared:k')) === undefined;
        if (!gone) await new Promise((r) => setTimeout(r, 20));
      }
      expect(gone).toBe(true);
    } finally {
      await Promise.all(links.map((l) => l.close()));
    }
  });

  it('shares small package files and one fetch lock through Redis', async () => {
    const { logger } = createLogSink();
    const link = new RedisLink(redis.target, 2_000, logger);
    link.connect();
    const tier = new RedisBlobTier(link, 1024, HOUR);
    try {
      const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
      await tier.put('packages/a/1.0.0/a.1.0.0.nupkg', { bytes, sha512: 'h', upstream: 'u' });
      expect(await tier.get('packages/a/1.0.0/a.1.0.0.nupkg')).toEqual({ bytes, sha512: 'h', upstream: 'u' });
      await tier.put('packages/big/1.0.0/big.1.0.0.nupkg', { bytes: Buffer.alloc(2048), sha512: 'h' });
      expect(await tier.get('packages/big/1.0.0/big.1.0.0.nupkg')).toBeUndefined();
      const release = await tier.lock('k', 10_000);
      expect(release).toBeDefined();
      expect(await tier.lock('k', 10_000)).toBeUndefined();
      expect(await tier.locked('k')).toBe(true);
      await release!();
      expect(await tier.locked('k')).toBe(false);
      expect(await tier.lockLeftMs('k')).toBe(0);
      const again = await tier.lock('k', 10_000);
      expect(await tier.lockLeftMs('k')).toBeGreaterThan(9_000);
      await again!();
      const short = await tier.lock('k2', 50);
      expect(short).toBeDefined();
      await new Promise((r) => setTimeout(r, 120));
      expect(await tier.lock('k2', 50)).toBeDefined(); // an expired lock (its holder died) is free again
    } finally {
      await link.close();
    }
  });

  it('announces a released lock to the waiters of every instance (the nuproxy:unlocked channel)', async () => {
    const { logger } = createLogSink();
    const links = [new RedisLink(redis.target, 2_000, logger), new RedisLink(redis.target, 2_000, logger)];
    links.forEach((l) => l.connect());
    try {
      const [one, two] = links.map((l) => new RedisBlobTier(l, 1024, HOUR));
      const heard: string[] = [];
      await two!.onUnlocked((key) => heard.push(key));
      const release = await one!.lock('packages/x/1.0.0/x.1.0.0.nupkg', 10_000);
      expect(await two!.lock('packages/x/1.0.0/x.1.0.0.nupkg', 10_000)).toBeUndefined();
      await release!();
      for (let i = 0; i < 100 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(heard).toEqual(['packages/x/1.0.0/x.1.0.0.nupkg']);
    } finally {
      await Promise.all(links.map((l) => l.close()));
    }
  });
});

describe('memory store specifics', () => {
  it('evicts the oldest entries when over its byte bound', async () => {
    const store = createMemoryMetadataStore(1024 * 1024);
    const body = 'x'.repeat(100 * 1024);
    const keys = Array.from({ length: 30 }, (_, i) => `evict:${i}`);
    for (const [i, k] of keys.entries()) await store.set(k, { body, fetchedAt: i }, HOUR);
    expect(await store.get(keys[0]!)).toBeUndefined();
    expect(await store.get(keys[1]!)).toBeUndefined();
    expect((await store.get(keys[29]!))?.fetchedAt).toBe(29);
    let present = 0;
    for (const k of keys) if (await store.get(k)) present++;
    expect(present).toBeGreaterThan(0);
    expect(present).toBeLessThanOrEqual(10); // 1 MB holds at most ten 100 KB bodies
    await store.close();
  });
});

describe.skipIf(noRedis !== undefined)('redis store outage and recovery', () => {
  const timeoutMs = 300;
  let redis: TestRedis;
  let store: MetadataStore;
  let sink: ReturnType<typeof createLogSink>;
  const warnLines = (): Record<string, unknown>[] =>
    sink.lines.filter((l) => l.level === 40 && /metadata store unavailable/.test(String(l.msg)));
  const infoLines = (): Record<string, unknown>[] =>
    sink.lines.filter((l) => l.level === 30 && /metadata store available again/.test(String(l.msg)));

  beforeAll(async () => {
    redis = await startRedis();
    sink = createLogSink();
    store = createRedisMetadataStore(redis.url, timeoutMs, sink.logger);
    await store.set('outage:before', { body: 'before', fetchedAt: 1 }, HOUR);
    expect((await store.get('outage:before'))?.body).toBe('before');
    expect(store.health().state).toBe('up');
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('answers misses within the timeout, never throws, and warns exactly once while Redis is down', async () => {
    await redis.kill();
    const durations: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now();
      expect(await store.get('outage:before')).toBeUndefined();
      durations.push(Date.now() - t0);
      const t1 = Date.now();
      await expect(store.set(`outage:${i}`, { body: 'x', fetchedAt: i }, HOUR)).resolves.toBeUndefined();
      durations.push(Date.now() - t1);
      await expect(store.delete(`outage:${i}`)).resolves.toBeUndefined();
    }
    // keep calling while the client's reconnect attempts fail in the background (backoff grows past 1 s)
    const downUntil = Date.now() + 1_500;
    while (Date.now() < downUntil) {
      const t = Date.now();
      expect(await store.get('outage:before')).toBeUndefined();
      durations.push(Date.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
    // a burst of concurrent calls too
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => store.get(`outage:burst:${i}`)));
    expect(burst.every((e) => e === undefined)).toBe(true);

    expect(Math.max(...durations)).toBeLessThan(timeoutMs + 1000);
    expect(store.health().state).toBe('down');
    expect(warnLines()).toHaveLength(1);
    expect(infoLines()).toHaveLength(0);
    console.info(`[redis outage] slowest call while down: ${Math.max(...durations)} ms (timeout ${timeoutMs} ms)`);
  });

  it('recovers on its own when Redis comes back on the same port', async () => {
    const t0 = Date.now();
    await redis.restart();
    let recovered = false;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await store.set('outage:after', { body: 'after', fetchedAt: 2 }, HOUR);
      if ((await store.get('outage:after'))?.body === 'after') {
        recovered = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(true);
    console.info(`[redis outage] recovered ${Date.now() - t0} ms after restart began`);
    expect(store.health()).toEqual({ state: 'up' });
    expect(infoLines()).toHaveLength(1);
    expect(warnLines()).toHaveLength(1);
    // the data before the crash is gone (no persistence), and that is a miss, not an error
    expect(await store.get('outage:before')).toBeUndefined();
  });
});

describe.skipIf(noRedis !== undefined)('redis link: the two connections come back at different times', () => {
  // A TCP gate between the link and Redis: it can drop every connection and hold the next ones back, so the
  // client and the subscriber reconnect one after the other, as they do when their backoffs differ.
  let redis: TestRedis;
  let gate: Server;
  const sockets = new Set<Socket>();
  let holdFrom = Infinity; // connections with index >= holdFrom wait for release()
  let accepted = 0;
  const held: (() => void)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    gate = createServer((inbound) => {
      const index = accepted++;
      sockets.add(inbound);
      inbound.on('close', () => sockets.delete(inbound));
      inbound.on('error', () => {});
      const pipeThrough = (): void => {
        if (inbound.destroyed) return;
        const outbound = createConnection(redis.port, '127.0.0.1');
        sockets.add(outbound);
        outbound.on('close', () => {
          sockets.delete(outbound);
          inbound.destroy();
        });
        outbound.on('error', () => inbound.destroy());
        inbound.on('close', () => outbound.destroy());
        inbound.pipe(outbound).pipe(inbound);
      };
      if (index >= holdFrom) {
        inbound.pause();
        held.push(pipeThrough);
      } else pipeThrough();
    });
    await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => gate?.close(() => r()));
    await redis?.stop();
  });

  it('reports "up" once, only when both are back, and never flaps while one of them is still reconnecting', async () => {
    const sink = createLogSink();
    const port = (gate.address() as AddressInfo).port;
    const store = createRedisMetadataStore(`redis://127.0.0.1:${port}`, 300, sink.logger);
    try {
      await store.set('gate:a', { body: 'a', fetchedAt: 1 }, HOUR);
      expect((await store.get('gate:a'))?.body).toBe('a');
      expect(store.health().state).toBe('up');
      const before = accepted;
      expect(before).toBe(2); // the client and the subscriber

      // drop both; the first to reconnect gets through, the second is held back
      holdFrom = before + 1;
      for (const s of sockets) s.destroy();
      const deadline = Date.now() + 10_000;
      while ((accepted < before + 2 || held.length === 0) && Date.now() < deadline) {
        await store.get('gate:a'); // keeps calling: a call that succeeds must not announce a recovery by itself
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(held.length).toBe(1);
      // one connection is back and one is not: still "down", however many calls are made meanwhile
      for (let i = 0; i < 20; i++) {
        await store.get('gate:a');
        await store.set(`gate:${i}`, { body: 'x', fetchedAt: i }, HOUR);
        expect(store.health().state).toBe('down');
        await new Promise((r) => setTimeout(r, 10));
      }
      const up = sink.lines.filter((l) => /available again/.test(String(l.msg)));
      expect(up).toHaveLength(0);

      held.shift()!();
      const upDeadline = Date.now() + 10_000;
      while (store.health().state !== 'up' && Date.now() < upDeadline) {
        await store.get('gate:a');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(store.health()).toEqual({ state: 'up' });
      expect((await store.get('gate:a'))?.body).toBe('a');
      expect(sink.lines.filter((l) => /available again/.test(String(l.msg)))).toHaveLength(1);
      expect(sink.lines.filter((l) => /store unavailable/.test(String(l.msg)))).toHaveLength(1);
    } finally {
      holdFrom = Infinity;
      for (const release of held.splice(0)) release();
      await store.close();
    }
  });
});
