import type { BoxLink } from './box-link.js';
import type { MetadataEntry, MetadataStore } from './metadata-store.js';

type Sync = { kind: 'meta-delete'; key: string } | { kind: 'meta-set'; key: string; entry: MetadataEntry; ttlMs: number };

/**
 * Each worker's own memory store, kept in step where it matters: a delete (a push, delete or relist changed an
 * id) and an announced change (the generation of cached queries) reach every worker of this nuproxy at once.
 * Ordinary fills stay local: a worker that has not seen a document yet fetches it, as a second instance would.
 */
export function createBoxMetadataStore(local: MetadataStore, box: BoxLink): MetadataStore {
  const listeners: ((key: string) => void)[] = [];
  box.subscribe((payload) => {
    const m = payload as Sync;
    if (m?.kind === 'meta-delete') void local.delete(m.key);
    else if (m?.kind === 'meta-set') void local.set(m.key, m.entry, m.ttlMs);
    else return;
    for (const l of listeners) l(m.key);
  });
  return {
    kind: `${local.kind} (per worker)`,
    get: (key) => local.get(key),
    set: (key, entry, ttlMs) => local.set(key, entry, ttlMs),
    async delete(key) {
      await local.delete(key);
      box.publish({ kind: 'meta-delete', key } satisfies Sync);
    },
    async changed(key, value) {
      if (value) box.publish({ kind: 'meta-set', key, entry: value.entry, ttlMs: value.ttlMs } satisfies Sync);
      else box.publish({ kind: 'meta-delete', key } satisfies Sync);
    },
    onRemoteChange: (listener) => void listeners.push(listener),
    health: () => local.health(),
    close: () => local.close(),
  };
}
