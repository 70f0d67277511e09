import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { render } from '../protocol/urls.js';

export interface Rendered {
  body: Buffer;
  gzip: Buffer | undefined;
  etag: string;
}

interface Slot {
  version: string;
  base: string;
  rendered: Rendered;
}

/**
 * Stored documents rendered for one public base, with their gzip form computed once. Keyed by the document's
 * key alone (no key string is built per request); the slot remembers the version and base it was rendered
 * for, so a refreshed document, or another base, renders anew.
 */
export class RenderCache {
  private readonly lru: LRUCache<string, Slot[]>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: (slots) => slots.reduce((n, s) => n + s.rendered.body.length + (s.rendered.gzip?.length ?? 0) + 128, 0) });
  }

  /** `stored` is only asked for on a miss (building a merged document is the expensive part of an answer). */
  get(key: string, version: string, base: string, stored: () => string, wantGzip: boolean): Rendered {
    let slots = this.lru.get(key);
    let slot = slots?.find((s) => s.base === base);
    if (slot && slot.version !== version) slot = undefined;
    if (!slot) {
      const body = Buffer.from(render(stored(), base), 'utf8');
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      slot = { version, base, rendered: { body, gzip: undefined, etag } };
      // one slot per base (a handful: the names clients use for this server), the newest version only
      slots = [slot, ...(slots ?? []).filter((s) => s.base !== base)].slice(0, 8);
      this.lru.set(key, slots);
    }
    const r = slot.rendered;
    if (wantGzip && !r.gzip) {
      r.gzip = gzipSync(r.body);
      this.lru.set(key, slots!);
    }
    return r;
  }
}
