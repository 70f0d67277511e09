import { randomBytes } from 'node:crypto';
import type { RedisLink } from './redis-link.js';

/** Where a released fetch lock is announced (its key as the message). */
const UNLOCKED_CHANNEL = 'nuproxy:unlocked';

export interface TierBlob {
  bytes: Buffer;
  sha512: string;
  upstream?: string;
}

/**
 * Small package files shared through Redis, so an instance that has never seen a package serves it without the
 * upstream, and a lock so that concurrent misses on several instances make one upstream request in total.
 * Every call is bounded by the link; with Redis down the tier is simply empty and every lock is granted (each
 * instance then fetches for itself, as it would alone).
 */
export class RedisBlobTier {
  private readonly owner = randomBytes(8).toString('hex');

  constructor(
    private readonly link: RedisLink,
    readonly maxBytes: number,
    private readonly ttlMs: number,
  ) {}

  async get(key: string): Promise<TierBlob | undefined> {
    const fields = await this.link.bounded(() => this.link.binary.hGetAll(`nuproxy:blob:${key}`), {} as Record<string, Buffer>);
    const bytes = fields.data;
    const sha512 = fields.sha512?.toString('utf8');
    if (!bytes || !sha512) return undefined;
    const upstream = fields.upstream?.toString('utf8');
    return { bytes, sha512, ...(upstream ? { upstream } : {}) };
  }

  async put(key: string, blob: TierBlob): Promise<void> {
    if (blob.bytes.length > this.maxBytes) return;
    await this.link.bounded(async () => {
      const k = `nuproxy:blob:${key}`;
      await this.link.client.multi().hSet(k, { data: blob.bytes, sha512: blob.sha512, upstream: blob.upstream ?? '' }).pExpire(k, this.ttlMs).exec();
    }, undefined);
  }

  /**
   * Tries to become the one instance fetching `key`. Returns a release function, or undefined when another
   * instance holds the lock. With Redis down the lock is granted.
   */
  async lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const k = `nuproxy:lock:${key}`;
    const token = `${this.owner}:${randomBytes(4).toString('hex')}`;
    const got = await this.link.bounded(() => this.link.client.set(k, token, { NX: true, PX: ttlMs }), 'OK');
    if (got !== 'OK') return undefined;
    return async () => {
      // delete only our own lock (it may have expired and been taken by another instance meanwhile)
      const deleted = await this.link.bounded(
        () => this.link.client.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", { keys: [k], arguments: [token] }),
        0,
      );
      // the waiters of every instance learn it at once instead of at their next look (see onUnlocked)
      if (deleted === 1) await this.link.publish(UNLOCKED_CHANNEL, key);
    };
  }

  /** Whether an instance is fetching `key` now (false with Redis down). */
  async locked(key: string): Promise<boolean> {
    return (await this.lockLeftMs(key)) > 0;
  }

  /**
   * How long the lock of `key` still lasts unless released (ms; 0 when nobody holds it, and with Redis down).
   * A lock without expiry (never set by nuproxy) counts as lasting a second: the waiter looks again then.
   */
  async lockLeftMs(key: string): Promise<number> {
    const ms = await this.link.bounded(() => this.link.client.pTTL(`nuproxy:lock:${key}`), -2);
    return ms === -1 ? 1000 : Math.max(0, ms);
  }

  /** Calls `handler` with the key of every lock an instance releases (not of those that expire). */
  onUnlocked(handler: (key: string) => void): Promise<void> {
    return this.link.subscribe(UNLOCKED_CHANNEL, handler);
  }
}
