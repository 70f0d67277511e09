import type { RedisBlobTier } from '../cache/redis-blob-tier.js';
import type { FetchLock, Release } from './fetch-lock.js';

/** The first look again after a look that found the lock held, doubled each time up to LOOK_MAX_MS. */
const LOOK_FIRST_MS = 25;
const LOOK_MAX_MS = 800;

/**
 * The fetch lock of several nuproxy instances, in Redis (RedisBlobTier's lock: SET NX PX, released only by its
 * owner). A waiter is woken by the release message (pub/sub), so it reads the holder's copy one round trip
 * after the release, not at its next poll; it still looks itself now and then, never later than the lock's
 * expiry (a holder that died sends nothing) and with backoff (a lost message costs at most LOOK_MAX_MS). With
 * Redis down every lock is granted and nobody waits.
 */
export class RedisFetchLock implements FetchLock {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly tier: RedisBlobTier) {
    void tier.onUnlocked((key) => {
      for (const wake of this.waiters.get(key) ?? []) wake();
    });
  }

  async lock(key: string, ttlMs: number): Promise<Release | undefined> {
    const release = await this.tier.lock(key, ttlMs);
    if (!release) return undefined;
    let once = false;
    return () => {
      if (once) return;
      once = true;
      return release();
    };
  }

  waitUnlocked(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      let look: NodeJS.Timeout | undefined;
      const set = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, set);
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(until);
        clearTimeout(look);
        set.delete(finish);
        if (set.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
        resolve();
      };
      set.add(finish); // before the first look: a release between the look and the wait is not missed
      const until = setTimeout(finish, ms);
      until.unref();
      const lookAgain = async (step: number): Promise<void> => {
        const left = await this.tier.lockLeftMs(key);
        if (done) return;
        if (left === 0) return finish();
        look = setTimeout(() => void lookAgain(Math.min(step * 2, LOOK_MAX_MS)), Math.min(left, step));
        look.unref();
      };
      void lookAgain(LOOK_FIRST_MS);
    });
  }
}
