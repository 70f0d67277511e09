import Keyv from 'keyv';
import { LRUCache } from 'lru-cache';
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
  // in memory the entries stay objects: no JSON round trip on every hit (entries are never mutated)
  keyv.serialize = undefined;
  keyv.deserialize = undefined;
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
function approxSize(v: unknown): number {
  if (typeof v === 'string') return v.length;
  const entry = (v as { value?: Partial<MetadataEntry> } | undefined)?.value;
  if (entry && typeof entry.body === 'string') return entry.body.length + JSON.stringify(entry.links ?? {}).length;
  return JSON.stringify(v ?? null).length;
}
