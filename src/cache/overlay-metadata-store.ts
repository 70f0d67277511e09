import { LRUCache } from 'lru-cache';
import type { MetadataEntry, MetadataStore } from './metadata-store.js';
import type { RedisLink } from './redis-link.js';

const CHANNEL = 'nuproxy:metadata-changed';

/**
 * Memory in front of a shared store (Redis): a hot answer costs no round trip, and what one instance fetched is
 * read by the others from the shared store. A memory copy is used for at most `localTtlMs`; a delete (or a
 * `changed` announcement) is broadcast so every instance drops its copy at once. While the shared store is
 * down, memory copies keep answering, whatever their age.
 */
export function createOverlayMetadataStore(shared: MetadataStore, link: RedisLink, opts: { maxBytes: number; localTtlMs: number; now?: () => number }): MetadataStore & { changed(key: string): Promise<void> } {
  const now = opts.now ?? Date.now;
  const memory = new LRUCache<string, { entry: MetadataEntry; at: number }>({
    maxSize: Math.max(1024, Math.floor(opts.maxBytes)),
    sizeCalculation: (v, k) => v.entry.body.length + k.length + 128,
  });
  const listeners: ((key: string) => void)[] = [];
  void link.subscribe(CHANNEL, (key) => {
    memory.delete(key);
    for (const l of listeners) l(key);
  });

  return {
    kind: 'redis+memory',
    async get(key) {
      const local = memory.get(key);
      if (local && now() - local.at < opts.localTtlMs) return local.entry;
      const entry = await shared.get(key);
      if (entry) {
        memory.set(key, { entry, at: now() });
        return entry;
      }
      // shared store down (or the entry gone): a memory copy of any age beats nothing while Redis is down
      return shared.health().state === 'down' ? local?.entry : undefined;
    },
    async set(key, entry, ttlMs) {
      memory.set(key, { entry, at: now() });
      await shared.set(key, entry, ttlMs);
    },
    async delete(key) {
      memory.delete(key);
      await shared.delete(key);
      await link.publish(CHANNEL, key);
    },
    async changed(key) {
      memory.delete(key);
      await link.publish(CHANNEL, key);
    },
    onRemoteChange: (listener) => void listeners.push(listener),
    health: () => shared.health(),
    close: () => shared.close(),
  };
}
