import { close, fstat, open as openCb, type Stats } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { NuproxyError } from '../errors.js';
import type { BlobInfo, BlobStore, BlobWriter, ByteReader, ByteSink, CommitCheck, SendProgress } from './blob-store.js';
import { sendFile } from './fs-send.js';
import { committedFileReader } from './follow-reader.js';
import { LocalTierFolder, type Copy } from './local-tier-folder.js';
import type { S3BlobStore } from './s3-blob-store.js';
import { SingleFlight } from './single-flight.js';

export interface LocalTierOptions {
  /** The folder (an FsBlobStore root of its own). */
  dir: string;
  /** Bytes the copies may take together (> 0). */
  maxSize: number;
  log?: Pick<Logger, 'debug'>;
}

const GB = 1024 ** 3;
const noLog = { debug: () => undefined };

const sizeText = (n: number): string => (n >= GB ? `${+(n / GB).toFixed(1)} GB` : `${+(n / 1024 ** 2).toFixed(1)} MB`);

/**
 * The S3 store with a bounded local folder in front (storage.localTier): warm reads of an S3-backed instance come
 * from the disk at the disk backend's speed (its fd send), and keep being served while the bucket is down. The
 * bucket stays the truth: a copy is served only when its size and SHA-512 are the bucket's record (stats are
 * cached by the S3 store, so this costs a warm hit no I/O); when the bucket cannot answer, the copy answers.
 * Copies come from the writer's spool (the instance that fetched a package keeps it without reading it back)
 * or from one background GET after a read from the bucket (single-flight per key; a failure is logged at debug
 * and forgotten, never the client's). Every write, delete and listing goes to the bucket. The folder, its index
 * and its bound: local-tier-folder.ts.
 */
export class LocalTierBlobStore implements BlobStore {
  readonly kind: string;
  readonly location: string;
  readonly sharedAcrossInstances = true;
  private readonly folder: LocalTierFolder;
  private readonly log: Pick<Logger, 'debug'>;
  private readonly fills = new SingleFlight<void>();
  /** Redirect mode signs for the bucket (a redirect sends the client there, past the tier). */
  readonly presign?: (key: string, ttlSeconds: number) => Promise<string | undefined>;

  constructor(
    private readonly bucket: S3BlobStore,
    opts: LocalTierOptions,
  ) {
    this.log = opts.log ?? noLog;
    this.folder = new LocalTierFolder(opts.dir, opts.maxSize, this.log);
    this.kind = bucket.kind;
    this.location = `${bucket.location} + local tier ${this.folder.dir} (${sizeText(opts.maxSize)})`;
    bucket.keepSpools((key, info, spool) => this.folder.keepSpool(key, info, spool));
    if (bucket.presign) this.presign = (key, ttlSeconds) => bucket.presign(key, ttlSeconds);
  }

  /** Bytes the copies take now (tests). */
  get localBytes(): number {
    return this.folder.bytes;
  }

  /** Whether a copy of `key` is in the folder (tests). */
  hasLocal(key: string): boolean {
    return this.folder.get(key) !== undefined;
  }

  /** Prepares the bucket, then the folder: sweeps its temp files and indexes the copies it holds. */
  async init(opts: { sweep?: boolean } = {}): Promise<{ swept: number }> {
    const bucket = await this.bucket.init(opts);
    const local = await this.folder.init(opts);
    return { swept: bucket.swept + local.swept };
  }

  /** The record from the bucket; while the bucket cannot answer, a local copy's (hashed first when not yet). */
  stat(key: string): Promise<BlobInfo | undefined> {
    return this.bucket.stat(key).catch((err: unknown) => this.statWhileDown(key, err));
  }

  private async statWhileDown(key: string, err: unknown): Promise<BlobInfo | undefined> {
    const copy = this.folder.get(key);
    if (!(err instanceof NuproxyError) || err.code === 'BAD_REQUEST' || !copy) throw err;
    if (!copy.verified && !(await this.folder.check(key, copy))) throw err;
    return copy.info;
  }

  /** The copy to serve for `info` (marked as just used), or undefined; a copy with other bytes is dropped. */
  private servable(key: string, info: BlobInfo): Copy | undefined {
    const copy = this.folder.get(key);
    if (copy === undefined) return undefined;
    if (copy.size !== info.size || copy.sha512 !== info.sha512) {
      void this.folder.remove(key, copy);
      return undefined;
    }
    if (!copy.verified) {
      void this.folder.check(key, copy); // served from the bucket meanwhile
      return undefined;
    }
    this.folder.touch(key, copy);
    this.bucket.noteRead(key);
    return copy;
  }

  send(key: string, info: BlobInfo, sink: ByteSink, start: number, endInclusive: number, progress?: SendProgress): void {
    const copy = this.servable(key, info);
    if (copy === undefined) {
      this.bucket.send(key, info, sink, start, endInclusive, progress);
      this.fill(key, info);
      return;
    }
    // The file is opened first and sent through its descriptor: an eviction from here on removes the name only
    // (POSIX keeps an open file's bytes until its last descriptor closes), so a send under way completes whole.
    // The size is checked on the descriptor: a copy cut or replaced behind our back goes to the bucket instead.
    openCb(copy.path, 'r', (err, fd) => {
      if (err) return this.sendInstead(key, copy, info, sink, start, endInclusive, progress);
      fstat(fd, (serr, st: Stats) => {
        if (serr || st.size !== copy.size) {
          close(fd, () => undefined);
          return this.sendInstead(key, copy, info, sink, start, endInclusive, progress);
        }
        sendFile(fd, sink, start, endInclusive, progress);
      });
    });
  }

  private sendInstead(key: string, copy: Copy, info: BlobInfo, sink: ByteSink, start: number, endInclusive: number, progress?: SendProgress): void {
    void this.folder.remove(key, copy);
    this.bucket.send(key, info, sink, start, endInclusive, progress);
  }

  async open(key: string, range?: { start: number; endInclusive: number }): Promise<Readable | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const copy = this.servable(key, info);
    if (copy) {
      try {
        return committedFileReader(copy.path, range ? range.start : 0, range ? Math.min(range.endInclusive + 1, copy.size) : copy.size);
      } catch {
        void this.folder.remove(key, copy); // gone behind our back
      }
    } else this.fill(key, info);
    return this.bucket.open(key, range);
  }

  async read(key: string): Promise<Buffer | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const copy = this.servable(key, info);
    if (copy) {
      const bytes = await this.folder.read(key);
      if (bytes?.length === copy.size) return bytes;
      void this.folder.remove(key, copy);
    }
    const bytes = await this.bucket.read(key);
    if (bytes) this.fill(key, info, bytes);
    return bytes;
  }

  async reader(key: string): Promise<ByteReader | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const copy = this.servable(key, info);
    if (copy) {
      const r = await this.folder.reader(key);
      if (r?.size === copy.size) return r;
      await r?.close();
      void this.folder.remove(key, copy);
    } else this.fill(key, info);
    return this.bucket.reader(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.bucket.list(prefix);
  }

  createWriter(key: string): Promise<BlobWriter> {
    return this.bucket.createWriter(key); // its commit hands the spool to the folder (keepSpools above)
  }

  put(key: string, bytes: Uint8Array, opts?: { upstream?: string; check?: CommitCheck }): Promise<BlobInfo> {
    return this.bucket.put(key, bytes, opts);
  }

  async import(key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo> {
    if (check.replace) await this.folder.drop(key);
    return this.bucket.import(key, body, check);
  }

  async delete(key: string): Promise<boolean> {
    await this.folder.drop(key);
    return this.bucket.delete(key);
  }

  noteRead(key: string): void {
    this.bucket.noteRead(key);
  }

  takeReads(): string[] {
    return this.bucket.takeReads();
  }

  /** Closes the bucket client's connections (tests). */
  destroy(): void {
    this.bucket.destroy();
  }

  /** Fills the copy of `key` in the background: from the bytes just read, else from one bucket GET. */
  private fill(key: string, info: BlobInfo, bytes?: Buffer): void {
    if (!this.folder.keeps(info) || this.folder.get(key)) return;
    this.fills
      .run(key, () => this.folder.fill(key, info, async () => (bytes ? [bytes] : this.bucket.open(key))))
      .catch((err: unknown) => this.log.debug({ err, key }, 'local tier: a fill failed'));
  }
}
