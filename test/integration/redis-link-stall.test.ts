// A busy process is not a slow Redis. The test process blocks its own event loop for longer than
// cache.redisTimeout right after sending commands to a real redis-server: the answers arrive meanwhile and
// must be taken (the lock is really held, the value really read), not given up on as if Redis were down. Under
// load this is what made two instances both "get" one fetch lock (the storage-s3-shared test saw two upstream
// fetches of one package). A Redis that really hangs (SIGSTOP) is still given up on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBlobTier } from '../../src/cache/redis-blob-tier.js';
import { RedisLink } from '../../src/cache/redis-link.js';
import { needTool } from '../support/need.js';
import { createLogSink } from '../support/log-sink.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';

const missing = needTool('redis-server', redisServerPath() !== undefined, 'redis-link-stall (Redis answers during an event-loop stall)');
const TIMEOUT_MS = 100;

function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // blocked: nothing is read from any socket meanwhile
  }
}

describe.skipIf(missing)('the Redis link under an event-loop stall', () => {
  let redis: TestRedis;
  let link: RedisLink;
  let other: RedisLink;
  const sink = createLogSink();
  beforeAll(async () => {
    redis = await startRedis();
    link = new RedisLink(redis.url, TIMEOUT_MS, sink.logger);
    other = new RedisLink(redis.url, 2_000, sink.logger);
    link.connect();
    other.connect();
    await Promise.all([link.firstConnection(10_000), other.firstConnection(10_000)]);
  });
  afterAll(async () => {
    redis?.resume();
    await Promise.all([link?.close(), other?.close()]);
    await redis?.stop();
  });

  it('a lock taken and a value read while the process was blocked 3x the timeout are real answers, not fallbacks', async () => {
    const tier = new RedisBlobTier(link, 1024, 60_000);
    const otherTier = new RedisBlobTier(other, 1024, 60_000);
    for (let round = 0; round < 3; round++) {
      const key = `stall-${round}`;
      const held = await otherTier.lock(key, 60_000);
      expect(held).toBeDefined();
      // the other instance holds it: the answer "not yours" arrives during the stall and must be the one used
      const taking = tier.lock(key, 60_000);
      const left = tier.lockLeftMs(key);
      busy(TIMEOUT_MS * 3);
      const got = await taking;
      expect(got).toBeUndefined();
      expect(await left).toBeGreaterThan(0);
      await held!();
    }
    expect(sink.lines.filter((l) => String(l.msg).includes('unavailable'))).toEqual([]);
  });

  it('a Redis that really hangs is still given up on (lock granted, as documented for Redis down)', async () => {
    const tier = new RedisBlobTier(link, 1024, 60_000);
    redis.pause();
    const started = Date.now();
    const release = await tier.lock('hung', 60_000);
    const took = Date.now() - started;
    redis.resume();
    expect(release).toBeDefined();
    expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(took).toBeLessThan(TIMEOUT_MS + 1_000 + 400); // within the wall-time cap (ms + 1 s), with room for a loaded machine
    expect(sink.lines.some((l) => String(l.msg).includes('unavailable'))).toBe(true);
  });
});
