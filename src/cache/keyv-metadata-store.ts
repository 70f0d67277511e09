import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { RedisLink } from './redis-link.js';
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
/**
 * Redis through keyv/@keyv/redis, on a RedisLink (given, or made from a URL and owned). Every call is bounded by
 * the link's timeout: a failed or slow call is a miss (get) or a no-op (set/delete), never a failed request.
 */
export function createRedisMetadataStore(urlOrLink: string | RedisLink, timeoutMs: number, logger: Logger): MetadataStore {
  const owned = typeof urlOrLink === 'string';
  const link = typeof urlOrLink === 'string' ? new RedisLink(urlOrLink, timeoutMs, logger) : urlOrLink;
  if (owned) link.connect();
  const redis = new KeyvRedis(link.client as never, { throwOnConnectError: false, throwOnErrors: true, connectionTimeout: Math.max(timeoutMs, 1000) });
  // throwOnErrors on Keyv itself too: otherwise Keyv swallows the adapter's error and answers undefined/false, which
  // `bounded` would take for a healthy answer (the state flapped down/up on every call while Redis was down).
  const keyv = new Keyv<MetadataEntry>({ store: redis, namespace: NAMESPACE, useKeyPrefix: false, throwOnErrors: true });
  keyv.on('error', (err: unknown) => link.mark('down', err));
  return {
    kind: 'redis',
    get: (key) => link.bounded(() => keyv.get(key), undefined),
    set: (key, entry, ttlMs) => link.bounded(async () => void (await keyv.set(key, entry, ttlMs)), undefined),
    delete: (key) => link.bounded(async () => void (await keyv.delete(key)), undefined),
    health: () => link.health(),
    close: async () => {
      if (owned) await link.close();
    },
  };
}

function approxSize(v: unknown): number {
  if (typeof v === 'string') return v.length;
  const entry = (v as { value?: Partial<MetadataEntry> } | undefined)?.value;
  if (entry && typeof entry.body === 'string') return entry.body.length + JSON.stringify(entry.links ?? {}).length;
  return JSON.stringify(v ?? null).length;
}
