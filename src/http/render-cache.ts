import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { render } from '../protocol/urls.js';

export interface Rendered {
  body: Buffer;
  gzip: Buffer | undefined;
  etag: string;
}

/**
 * Stored documents rendered for one public base, with their gzip form computed once. Keyed by the document's
 * version, so a refreshed document renders anew.
 */
export class RenderCache {
  private readonly lru: LRUCache<string, Rendered>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: (r) => r.body.length + (r.gzip?.length ?? 0) + 128 });
  }

  /** `stored` is only asked for on a miss (building a merged document is the expensive part of an answer). */
  get(key: string, version: string, base: string, stored: () => string, wantGzip: boolean): Rendered {
    const k = `${key}\n${version}\n${base}`;
    let r = this.lru.get(k);
    if (!r) {
      const body = Buffer.from(render(stored(), base), 'utf8');
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      r = { body, gzip: undefined, etag };
      this.lru.set(k, r);
    }
    if (wantGzip && !r.gzip) {
      r.gzip = gzipSync(r.body);
      this.lru.set(k, r);
    }
    return r;
  }
}
