import type { Readable, Writable } from 'node:stream';
import type { BlobInfo, BlobStore } from '../cache/blob-store.js';
import type { Logger } from '../log.js';

/** What the HTTP edge knows of a stored package file (its ETag and Last-Modified come from it). */
export interface StoredPackage {
  size: number;
  /** Base64. */
  sha512?: string;
  upstream?: string;
  mtimeMs: number;
}

/** Where a stored package is sent (a Node ServerResponse is one). */
export type PackageSink = Pick<Writable, 'write' | 'end' | 'destroy' | 'once' | 'writableFinished'>;

/** A stored package file: its bytes in memory (`bytes`, small files) or sent from the store (`send`). */
export interface StoredFile {
  kind: 'file';
  info: StoredPackage;
  outcome: 'hit';
  upstream?: string;
  bytes?: Buffer;
  /**
   * Sends bytes start..endInclusive to a sink whose head is written, and ends it (a failed read destroys it);
   * `progress.bytesSent` counts what the sink took.
   */
  send(sink: PackageSink, start: number, endInclusive: number, progress?: { bytesSent: number }): void;
}

/**
 * Store sends under way by key (issue #14): eviction never removes a file while it is sent. The one cost on the
 * path of a file sent from the store (a memory-tier hit never gets here): a Map get/set and a 'close' listener.
 */
export class InFlight {
  private readonly counts = new Map<string, number>();

  /** Counts `key` as in use until `user` (a response, or a reader of a download) closes. */
  hold(key: string, user: { once(event: 'close', listener: () => void): unknown }): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    user.once('close', () => {
      const n = (this.counts.get(key) ?? 1) - 1;
      if (n > 0) this.counts.set(key, n);
      else this.counts.delete(key);
    });
  }

  has(key: string): boolean {
    return this.counts.has(key);
  }
}

/** One object per hit, with `send` on its prototype (bound to the store by its fields, not by a closure). */
export class StoredHandle implements StoredFile {
  readonly kind = 'file';
  readonly outcome = 'hit';
  readonly upstream: string | undefined;

  constructor(
    private readonly blobs: BlobStore,
    private readonly key: string,
    readonly info: BlobInfo,
    readonly bytes?: Buffer,
    private readonly inFlight?: InFlight,
  ) {
    this.upstream = info.upstream;
  }

  send(sink: PackageSink, start: number, endInclusive: number, progress?: { bytesSent: number }): void {
    this.inFlight?.hold(this.key, sink);
    this.blobs.send(this.key, this.info, sink, start, endInclusive, progress);
  }
}

/**
 * A committed package the client fetches from the store itself (redirect mode): `location` is a short-lived
 * presigned URL. It carries a signature: `target` (the URL without its query string) is what logs may say.
 */
export interface RedirectFile {
  kind: 'redirect';
  info: StoredPackage;
  outcome: 'hit';
  upstream?: string;
  location: string;
  target: string;
}

export type PackageHandle =
  | StoredFile
  | RedirectFile
  | { kind: 'stream'; stream: Readable; length: number | undefined; outcome: 'miss' | 'shared'; upstream: string }
  /** A small download that has passed its checks, whole in memory (SharedDownload.verifiedBytes). */
  | { kind: 'bytes'; bytes: Buffer; outcome: 'miss' | 'shared'; upstream: string }
  | { kind: 'head'; length: number | undefined; outcome: 'bypass'; upstream: string };

/**
 * Redirect mode: the handle of a committed package the client fetches from the store (a presigned URL valid
 * `ttlSeconds`), or undefined when the store cannot sign for it now (the caller then serves it itself).
 */
export async function presigned(blobs: BlobStore, log: Logger, key: string, info: BlobInfo, ttlSeconds: number): Promise<RedirectFile | undefined> {
  let location: string | undefined;
  try {
    location = await blobs.presign?.(key, ttlSeconds);
  } catch (err) {
    log.warn({ key, err: (err as Error).message }, 'redirect mode: cannot presign, serving the package itself');
  }
  if (!location) return undefined;
  const q = location.indexOf('?');
  return { kind: 'redirect', info, outcome: 'hit', ...(info.upstream ? { upstream: info.upstream } : {}), location, target: q < 0 ? location : location.slice(0, q) };
}
