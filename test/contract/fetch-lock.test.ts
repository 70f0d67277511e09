import { fork, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe } from 'vitest';
import { BoxBroker } from '../../src/cache/box-link.js';
import { RedisBlobTier } from '../../src/cache/redis-blob-tier.js';
import { RedisLink } from '../../src/cache/redis-link.js';
import { MemoryFetchLock } from '../../src/feed/fetch-lock.js';
import { RedisFetchLock } from '../../src/feed/redis-fetch-lock.js';
import { createLogSink } from '../support/log-sink.js';
import { sharedRedisBackends, type SharedRedis } from '../support/redis-cluster.js';
import { fetchLockContract, localContender, removeResults, resultsDir, type Contender } from './fetch-lock.contract.js';

const CHILD = new URL('../support/children/fetch-lock-contender.mjs', import.meta.url).pathname;
const HOUR = 3_600_000;

fetchLockContract('one process', async () => {
  const dir = await resultsDir();
  const lock = new MemoryFetchLock();
  return { contenders: [localContender(lock, dir), localContender(lock, dir), localContender(lock, dir)], dir, cleanup: () => removeResults(dir) };
});

// The workers of one nuproxy: three real processes (the built dist/: run `npm run build` first), each a BoxLink
// over its IPC channel, and this test process as their primary with a real BoxBroker, wired as src/main.ts does.
fetchLockContract(
  'node:cluster workers (BoxLink through a real primary)',
  async () => {
    const dir = await resultsDir();
    const broker = new BoxBroker();
    const children: ChildProcess[] = [];
    const contenders = await Promise.all(
      [1, 2, 3].map(async (id) => {
        const child = fork(CHILD, [dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        const port = broker.attach(id, (m) => {
          if (child.connected) child.send(m as object);
        });
        child.once('exit', () => port.detach());
        const replies = new Map<number, (v: unknown) => void>();
        let rid = 1;
        const ready = new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`contender ${id} exited (${code}) before it was ready`)));
          child.on('message', (m: { contender?: 1; ready?: boolean; rid?: number; result?: unknown }) => {
            if (m?.contender !== 1) return port.onMessage(m);
            if (m.ready) return resolve();
            replies.get(m.rid!)?.(m.result);
            replies.delete(m.rid!);
          });
        });
        const ask = <T>(op: string, args: object): Promise<T> =>
          new Promise((resolve) => {
            const r = rid++;
            replies.set(r, resolve as (v: unknown) => void);
            child.send({ contender: 1, rid: r, op, ...args });
          });
        await ready;
        const c: Contender = {
          run: (key, how) => ask('run', { key, how }),
          lock: (key, ttlMs) => ask('lock', { key, ttlMs }),
          release: (handle) => ask('release', { handle }),
          waitUnlocked: (key, ms) => ask('waitUnlocked', { key, ms }),
        };
        return c;
      }),
    );
    return {
      contenders: contenders as [Contender, Contender, Contender],
      dir,
      kill: (i) =>
        new Promise<void>((resolve) => {
          const child = children[i]!;
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
      cleanup: async () => {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await removeResults(dir);
      },
    };
  },
  { dies: true },
);

// on one redis-server and on a Redis Cluster (the lock's key, its release script and the unlocked channel)
for (const backend of sharedRedisBackends('the Redis FetchLock contract tests'))
describe.skipIf(backend.skip !== undefined)(backend.name, () => {
  let redis: SharedRedis;
  beforeAll(async () => {
    redis = await backend.start();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  // three instances: each its own connections and lock owner, one Redis
  fetchLockContract(`several instances (${{ redis: 'Redis', 'redis cluster': 'Redis Cluster', 'redis sentinel': 'Redis Sentinel' }[backend.name]})`, async () => {
    const dir = await resultsDir();
    const { logger } = createLogSink();
    const links = [1, 2, 3].map(() => new RedisLink(redis.target, 2_000, logger));
    for (const l of links) l.connect();
    // instances that are up: a command before the first connection is a miss (a lock "taken"), not the contract
    await Promise.all(links.map((l) => l.firstConnection(10_000)));
    const contenders = links.map((l) => localContender(new RedisFetchLock(new RedisBlobTier(l, 1024, HOUR)), dir));
    return {
      contenders: contenders as [Contender, Contender, Contender],
      dir,
      cleanup: async () => {
        await Promise.all(links.map((l) => l.close()));
        await removeResults(dir);
      },
    };
  });
});
