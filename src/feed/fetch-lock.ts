/**
 * Exactly one fetcher per key at a time, across whatever shares a cache: one process (MemoryFetchLock), the
 * node:cluster workers of one nuproxy (BoxFetchLock), several instances (RedisFetchLock). Every implementation
 * passes test/contract/fetch-lock.contract.ts. A lock only says who fetches; what a waiter reads once the
 * holder is done (a download to follow, a copy in Redis, the shared disk) is the caller's `peek`, and layers
 * (the workers' lock outside, Redis inside) are `fetchOnce` called inside another's `fetch`.
 */

/** Gives the lock up; calling it again does nothing. */
export type Release = () => void | Promise<void>;

export interface FetchLock {
  /**
   * Tries to become the one fetcher of `key`: a release function, or undefined while someone else holds it.
   * The lock expires after `ttlMs` by itself (a holder that dies or hangs never blocks the others for good).
   */
  lock(key: string, ttlMs: number): Promise<Release | undefined>;
  /** Resolves when nobody holds `key` (at once when nobody does), or after `ms`. */
  waitUnlocked(key: string, ms: number): Promise<void>;
}

export interface FetchOnce<T> {
  /** How long the lock is held at most, and how long a waiter waits before it fetches without it. */
  ttlMs: number;
  /**
   * The holder's fetch. It owns `release`: it may keep the lock past its return (until a download it started
   * is stored) and must release it in the end; a fetch that throws is released for it.
   */
  fetch: (release: Release) => Promise<T>;
  /** What the holder left for the others (undefined: nothing yet, or it failed). */
  peek: () => Promise<T | undefined>;
  /** Look before taking the lock (a copy others stored may already be there). */
  peekFirst?: boolean;
  /** Besides the release, what else wakes a waiter early (the holder announcing a download to follow). */
  wake?: (ms: number) => Promise<void>;
  /** Told once when this caller found another holder and waits for it (the metrics' single-flight joins). */
  joined?: () => void;
}

const noRelease: Release = () => undefined;

/**
 * Runs `o.fetch` as the one holder of `key`, or waits for the holder and returns what `o.peek` then finds. A
 * holder that fails releases, and the next waiter takes the lock and fetches; a waiter still empty-handed
 * after `ttlMs` fetches without the lock (fetching twice beats waiting forever).
 */
export async function fetchOnce<T>(lock: FetchLock, key: string, o: FetchOnce<T>): Promise<T> {
  const deadline = Date.now() + o.ttlMs;
  let found = o.peekFirst ? await o.peek() : undefined;
  let peeked = o.peekFirst === true;
  let joined = false;
  for (;;) {
    if (found !== undefined) return found;
    const release = await lock.lock(key, o.ttlMs);
    // a look taken before the lock may be stale: a holder can store and release between that look and this
    // lock (then this caller would fetch a second time what is already there), so it looks once more
    if (release) return holding(release, peeked ? (r) => peekThenFetch(o, r) : o.fetch);
    peeked = true;
    if (!joined) {
      joined = true;
      o.joined?.();
    }
    found = await o.peek(); // the holder may have announced what to follow already
    if (found !== undefined) return found;
    const left = Math.max(0, deadline - Date.now());
    await (o.wake ? Promise.race([lock.waitUnlocked(key, left), o.wake(left)]) : lock.waitUnlocked(key, left));
    found = await o.peek();
    if (found === undefined && Date.now() >= deadline) return o.fetch(noRelease);
    // else: found, or the holder failed (or found nothing): take the lock and try, or learn it is absent
  }
}

async function peekThenFetch<T>(o: FetchOnce<T>, release: Release): Promise<T> {
  const there = await o.peek();
  if (there === undefined) return o.fetch(release);
  await release();
  return there;
}

async function holding<T>(release: Release, fetch: (release: Release) => Promise<T>): Promise<T> {
  let once = false;
  const releaseOnce: Release = () => {
    if (once) return;
    once = true;
    return release();
  };
  try {
    return await fetch(releaseOnce);
  } catch (err) {
    await releaseOnce();
    throw err;
  }
}

/** The lock of one process: a map of held keys, each with its expiry timer and the waiters to wake. */
export class MemoryFetchLock implements FetchLock {
  private readonly held = new Map<string, { token: object; timer: NodeJS.Timeout; waiters: (() => void)[] }>();

  async lock(key: string, ttlMs: number): Promise<Release | undefined> {
    if (this.held.has(key)) return undefined;
    const token = {};
    const timer = setTimeout(() => this.unlock(key, token), ttlMs);
    timer.unref();
    this.held.set(key, { token, timer, waiters: [] });
    return () => this.unlock(key, token);
  }

  waitUnlocked(key: string, ms: number): Promise<void> {
    const entry = this.held.get(key);
    if (!entry) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      entry.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Only the holder's own release (or its expiry) frees the key: an expired holder cannot free a successor's. */
  private unlock(key: string, token: object): void {
    const entry = this.held.get(key);
    if (entry?.token !== token) return;
    clearTimeout(entry.timer);
    this.held.delete(key);
    for (const wake of entry.waiters) wake();
  }
}
