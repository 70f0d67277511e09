import type { BoxLink } from '../cache/box-link.js';
import type { FetchLock, Release } from './fetch-lock.js';

/**
 * The fetch lock of the node:cluster workers of one nuproxy, kept by the primary process (BoxBroker): a worker
 * that exits is released at once (the broker detaches it), one that hangs when its TTL ends. Without an answer
 * from the primary the lock counts as granted (see BoxLink.lock).
 */
export class BoxFetchLock implements FetchLock {
  constructor(private readonly box: BoxLink) {}

  lock(key: string, ttlMs: number): Promise<Release | undefined> {
    return this.box.lock(key, ttlMs); // its release is idempotent already
  }

  waitUnlocked(key: string, ms: number): Promise<void> {
    return this.box.waitUnlocked(key, ms);
  }
}
