import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log.js';
import type { MetadataEntry, MetadataStore } from './metadata-store.js';

const NAMESPACE = 'nuproxy:meta';

/** In-process store: keyv over an lru-cache bounded by the total size of the stored strings. */
export function createMemoryMetadataStore(maxBytes: number): MetadataStore {
  // keyv hands the store either a serialized string or its { value, expires } envelope, depending on options
  const lru = new LRUCache<string, {}>({
    maxSize: Math.max(1024, Math.floor(maxBytes)),
    sizeCalculation: (v, k) => approxSize(v) + k.length + 64,
  });
  // keyv calls store.set(key, value, ttlNumber); lru-cache's third argument is an options object. Expiry is
  // checked by keyv on read, and the size bound evicts, so the adapter drops the number.
  const store = {
    get: (k: string) => lru.get(k),
    set: (k: string, v: {}) => {
      lru.set(k, v);
      return true;
    },
    delete: (k: string) => lru.delete(k),
    clear: () => lru.clear(),
    has: (k: string) => lru.has(k),
  };
  const keyv = new Keyv<MetadataEntry>({ store, namespace: NAMESPACE });
  return {
    kind: 'memory',
    get: (key) => keyv.get(key),
    set: async (key, entry, ttlMs) => {
      await keyv.set(key, entry, ttlMs);
    },
    delete: async (key) => {
      await keyv.delete(key);
    },
    health: () => ({ state: 'up' }),
    close: async () => {
      lru.clear();
    },
  };
}

/**
 * Redis through keyv/@keyv/redis. Redis trouble never becomes client trouble: every call is bounded by
 * `timeoutMs`, and a failed or slow call is a miss (get) or a no-op (set/delete). The state is logged once
 * per change, not per request.
 */
export function createRedisMetadataStore(url: string, timeoutMs: number, logger: Logger): MetadataStore {
  const redis = new KeyvRedis(
    {
      url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(timeoutMs, 1000),
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000),
      },
    },
    { throwOnConnectError: false, throwOnErrors: true, connectionTimeout: Math.max(timeoutMs, 1000) },
  );
  // throwOnErrors on Keyv itself too: otherwise Keyv swallows the adapter's error and answers undefined/false, which
  // `bounded` would take for a healthy answer (the state flapped down/up on every call while Redis was down).
  const keyv = new Keyv<MetadataEntry>({ store: redis, namespace: NAMESPACE, useKeyPrefix: false, throwOnErrors: true });
  let state: 'up' | 'down' = 'up';
  let detail: string | undefined;
  const mark = (next: 'up' | 'down', err?: unknown): void => {
    if (next === state) return;
    state = next;
    detail = err instanceof Error ? err.message : undefined;
    if (next === 'down') logger.warn({ store: 'redis', err: detail }, 'metadata store unavailable; serving without it');
    else logger.info({ store: 'redis' }, 'metadata store available again');
  };
  keyv.on('error', (err: unknown) => mark('down', err));

  async function bounded<T>(op: () => Promise<T>, fallback: T): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`redis did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      mark('up');
      return result;
    } catch (err) {
      mark('down', err);
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    kind: 'redis',
    get: (key) => bounded(() => keyv.get(key), undefined),
    set: (key, entry, ttlMs) => bounded(async () => void (await keyv.set(key, entry, ttlMs)), undefined),
    delete: (key) => bounded(async () => void (await keyv.delete(key)), undefined),
    health: () => (detail ? { state, detail } : { state }),
    close: async () => {
      try {
        await keyv.disconnect();
      } catch {
        // already closed or never connected
      }
    },
  };
}

function approxSize(v: unknown): number {
  if (typeof v === 'string') return v.length;
  const entry = (v as { value?: Partial<MetadataEntry> } | undefined)?.value;
  if (entry && typeof entry.body === 'string') return entry.body.length + JSON.stringify(entry.links ?? {}).length;
  return JSON.stringify(v ?? null).length;
}
