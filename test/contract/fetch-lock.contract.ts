// Conformance suite for the fetch lock (src/feed/fetch-lock.ts): one process, the node:cluster workers of one
// nuproxy, several instances over Redis. Each backend hands in three contenders (callers in one process, worker
// processes behind a real primary, instances with their own Redis connections) that share one directory where
// the holder's fetch leaves its result (test/support/fetch-lock-runner.mjs), and the suite drives fetchOnce and
// the lock itself through them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchOnce, type FetchLock, type Release } from '../../src/feed/fetch-lock.js';
import { fetchesOf, openGate, runContender, type Behaviour, type Outcome } from '../support/fetch-lock-runner.mjs';
import { waitFor } from '../support/wait.js';

export type { Behaviour, Outcome };

export interface Contender {
  /** fetchOnce with the runner's fetch and peek (see fetch-lock-runner.mjs). */
  run(key: string, how: Behaviour): Promise<Outcome>;
  /** The lock itself: a handle for `release`, or undefined while held elsewhere. */
  lock(key: string, ttlMs: number): Promise<number | undefined>;
  release(handle: number): Promise<void>;
  /** waitUnlocked; resolves with the ms it waited. */
  waitUnlocked(key: string, ms: number): Promise<number>;
}

export interface FetchLockFixture {
  contenders: [Contender, Contender, Contender];
  /** Where the contenders' fetches leave their results (the fixture makes it, the suite reads it). */
  dir: string;
  /** Kills contender `i` the way a crash would, when the backend can tell (a worker process). */
  kill?: (i: number) => Promise<void>;
  cleanup(): Promise<void>;
}

/** A temp directory for a fixture's results. */
export function resultsDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'nuproxy-lock-'));
}

export async function removeResults(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A contender in this process around `lock` (each with its own instance for backends with instances). */
export function localContender(lock: FetchLock, dir: string): Contender {
  const held = new Map<number, Release>();
  let next = 1;
  return {
    run: (key, how) => runContender({ fetchOnce, lock, dir, key, how }),
    lock: async (key, ttlMs) => {
      const release = await lock.lock(key, ttlMs);
      if (!release) return undefined;
      held.set(next, release);
      return next++;
    },
    release: async (handle) => void (await held.get(handle)?.()),
    waitUnlocked: async (key, ms) => {
      const t0 = Date.now();
      await lock.waitUnlocked(key, ms);
      return Date.now() - t0;
    },
  };
}

/** Long enough never to end during a test: a waiter proceeding early proves the release (or the lock's TTL) freed it. */
const LONG = 30_000;
/** What a wait that should end at once may take at most, on a loaded 2-core machine. */
const PROMPT = 5_000;

/** `dies`: the backend releases a holder whose process dies at once (its fixture has `kill`). */
export function fetchLockContract(name: string, setup: () => Promise<FetchLockFixture>, opts: { dies?: boolean } = {}): void {
  describe(`FetchLock contract: ${name}`, () => {
    let f: FetchLockFixture;
    let n = 0;
    const key = (): string => `packages/k${++n}/1.0.0/k${n}.1.0.0.nupkg`;
    const holding = (k: string, count = 1): Promise<unknown> => waitFor(`${count} fetch(es) of ${k}`, async () => (await fetchesOf(f.dir, k)).length >= count);

    beforeAll(async () => {
      f = await setup();
    });
    afterAll(async () => {
      await f?.cleanup();
    });

    it('concurrent callers make exactly one fetch, and every waiter gets the holder\'s result', async () => {
      const k = key();
      const [a, b, c] = f.contenders;
      const first = a.run(k, { value: 'v1', ttlMs: LONG, gate: true });
      await holding(k);
      const rest = [b, c, a, b, c].map((x, i) => x.run(k, { value: `other${i}`, ttlMs: LONG }));
      // every waiter is waiting while the holder's fetch is under way
      const early = await Promise.race([Promise.all(rest).then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 200))]);
      expect(early).toBe('waiting');
      await openGate(f.dir, k);
      const all = await Promise.all([first, ...rest]);
      expect(all.map((o) => o.value)).toEqual(Array(6).fill('v1'));
      expect(all.map((o) => o.fetched)).toEqual([true, false, false, false, false, false]);
      expect(await fetchesOf(f.dir, k)).toEqual(['v1']);
    });

    it('a holder that throws lets the next one fetch, and the others get that one\'s result', async () => {
      const k = key();
      const [a, b, c] = f.contenders;
      const failing = a.run(k, { value: 'bad', ttlMs: LONG, gate: true, fail: true });
      await holding(k);
      const waiters = [b.run(k, { value: 'good', ttlMs: LONG }), c.run(k, { value: 'good', ttlMs: LONG })];
      await openGate(f.dir, k);
      const failed = await failing;
      expect(failed.error).toMatch(/fetch of bad failed/);
      const [ob, oc] = await Promise.all(waiters);
      expect([ob!.value, oc!.value]).toEqual(['good', 'good']);
      expect([ob!.fetched, oc!.fetched].filter(Boolean)).toHaveLength(1);
      expect(await fetchesOf(f.dir, k)).toEqual(['bad', 'good']);
      // long before its deadline: the failed holder released
      expect(Math.max(ob!.ms, oc!.ms)).toBeLessThan(PROMPT);
    });

    it('a holder that hangs blocks the others only until its lock\'s TTL ends', async () => {
      const k = key();
      const [a, b, c] = f.contenders;
      void a.run(k, { value: 'stuck', ttlMs: 600, hang: true });
      await holding(k);
      // the waiters would wait 30 s on their own: only the expired lock lets one of them fetch this soon
      const [ob, oc] = await Promise.all([b.run(k, { value: 'after', ttlMs: LONG }), c.run(k, { value: 'after', ttlMs: LONG })]);
      expect([ob!.value, oc!.value]).toEqual(['after', 'after']);
      expect([ob!.fetched, oc!.fetched].filter(Boolean)).toHaveLength(1);
      expect(await fetchesOf(f.dir, k)).toEqual(['stuck', 'after']);
      expect(Math.max(ob!.ms, oc!.ms)).toBeLessThan(600 + PROMPT);
    });

    it('release is idempotent: a second call never frees a lock someone else took meanwhile', async () => {
      const k = key();
      const [a, b, c] = f.contenders;
      const ha = await a.lock(k, LONG);
      expect(ha).toBeDefined();
      expect(await b.lock(k, LONG)).toBeUndefined();
      await a.release(ha!);
      await a.release(ha!);
      const hb = await b.lock(k, LONG);
      expect(hb).toBeDefined();
      await a.release(ha!); // stale: b holds it now
      expect(await c.lock(k, LONG)).toBeUndefined();
      await b.release(hb!);
      const hc = await c.lock(k, LONG);
      expect(hc).toBeDefined();
      await c.release(hc!);
    });

    it('waitUnlocked returns at once when free, and soon after the holder releases', async () => {
      const k = key();
      const [a, b] = f.contenders;
      expect(await b.waitUnlocked(k, LONG)).toBeLessThan(PROMPT);
      const h = await a.lock(k, LONG);
      const waited = b.waitUnlocked(k, LONG);
      const early = await Promise.race([waited.then(() => 'woke'), new Promise((r) => setTimeout(() => r('waiting'), 200))]);
      expect(early).toBe('waiting');
      await a.release(h!);
      expect(await waited).toBeLessThan(PROMPT);
    });

    it('distinct keys do not block each other', async () => {
      const k1 = key();
      const k2 = key();
      const [a, b] = f.contenders;
      const held = a.run(k1, { value: 'one', ttlMs: LONG, gate: true });
      await holding(k1);
      const other = await b.run(k2, { value: 'two', ttlMs: LONG });
      expect(other).toMatchObject({ value: 'two', fetched: true });
      expect(other.ms).toBeLessThan(PROMPT);
      await openGate(f.dir, k1);
      expect((await held).value).toBe('one');
    });

    // one process cannot outlive itself, and an instance that dies leaves its Redis lock to the TTL (above)
    // registered only where it applies (a skip would read as a missing tool)
    if (opts.dies) it('a holder whose process dies releases at once', async () => {
      const k = key();
      const [a, b, c] = f.contenders;
      void a.run(k, { value: 'dying', ttlMs: LONG, hang: true });
      await holding(k);
      const waiters = [b.run(k, { value: 'next', ttlMs: LONG }), c.run(k, { value: 'next', ttlMs: LONG })];
      await f.kill!(0);
      const [ob, oc] = await Promise.all(waiters);
      expect([ob!.value, oc!.value]).toEqual(['next', 'next']);
      expect([ob!.fetched, oc!.fetched].filter(Boolean)).toHaveLength(1);
      expect(Math.max(ob!.ms, oc!.ms)).toBeLessThan(PROMPT);
    });
  });
}
