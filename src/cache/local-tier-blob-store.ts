import { close, createReadStream, fstat, open as openCb, type Stats } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { NuproxyError } from '../errors.js';
import type { BlobInfo, BlobStore, BlobWriter, ByteReader, ByteSink, CommitCheck, SendProgress } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { META_SUFFIX, tempNameIn } from './fs-blob-writer.js';
import { sendFile } from './fs-send.js';
import { committedFileReader } from './follow-reader.js';
import type { S3BlobStore } from './s3-blob-store.js';
import { SingleFlight } from './single-flight.js';

export interface LocalTierOptions {
  /** The folder (an FsBlobStore root of its own). */
  dir: string;
  /** Bytes the copies may take together (> 0). */
  maxSize: number;
  log?: Pick<Logger, 'debug'>;
}

/** One copy in the folder. `verified`: its bytes were hashed (or written) by this process. */
interface Copy {
  size: number;
  sha512: string;
  path: string;
  info: BlobInfo;
  verified: boolean;
}

const SEGMENT = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}$/;
const HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';
const GB = 1024 ** 3;
const noLog = { debug: () => undefined };

const sizeText = (n: number): string => (n >= GB ? `${+(n / GB).toFixed(1)} GB` : `${+(n / 1024 ** 2).toFixed(1)} MB`);

/**
 * The S3 store with a bounded local folder in front (storage.localTier): warm reads of an S3-backed instance come
 * from the disk at the disk backend's speed (its fd send), and keep being served while the bucket is down. The
 * bucket stays the truth: a copy is served only when its size and SHA-512 are the bucket's record (stats are
 * cached by the S3 store, so this costs a warm hit no I/O); when the bucket cannot answer, the copy answers.
 * Copies come from the writer's spool (the instance that fetched a package keeps it without reading it back)
 * or from one background GET after a read from the bucket, committed through an FsBlobStore writer with the
 * record's length and hash as checks (a wrong or short body is never kept). Every write, delete and listing
 * goes to the bucket. Least recently used copies are evicted once the total would pass maxSize.
 */
export class LocalTierBlobStore implements BlobStore {
  readonly kind: string;
  readonly location: string;
  readonly sharedAcrossInstances = true;
  private readonly local: FsBlobStore;
  private readonly dir: string;
  private readonly tmpDir: string;
  private readonly maxSize: number;
  private readonly log: Pick<Logger, 'debug'>;
  /** Insertion order is the order of last use: the first entry is the least recently used. */
  private readonly copies = new Map<string, Copy>();
  private total = 0;
  /** Bytes of copies being written (counted against maxSize, never evicted: they are not in `copies` yet). */
  private reserved = 0;
  /** Bumped by every delete or replace: a copy written meanwhile may hold the old bytes and is not kept. */
  private epoch = 0;
  private readonly fills = new SingleFlight<void>();
  private readonly checks = new SingleFlight<boolean>();
  /** Removals from the disk under way: a new copy of the key waits for its old one to be gone. */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(
    private readonly bucket: S3BlobStore,
    opts: LocalTierOptions,
  ) {
    this.dir = resolve(opts.dir);
    this.maxSize = opts.maxSize;
    this.log = opts.log ?? noLog;
    this.local = new FsBlobStore(this.dir, { maxStats: 1 }); // its stat cache is not used: the index below is
    this.tmpDir = this.local.tmpDir;
    this.kind = bucket.kind;
    this.location = `${bucket.location} + local tier ${this.dir} (${sizeText(this.maxSize)})`;
    bucket.keepSpools((key, info, spool) => this.keepSpool(key, info, spool));
  }

  /** Bytes the copies take now (tests, health). */
  get localBytes(): number {
    return this.total;
  }

  /** Whether a copy of `key` is in the folder (tests). */
  hasLocal(key: string): boolean {
    return this.copies.has(key);
  }

  /** Prepares the bucket, then the folder: sweeps its temp files and indexes the copies it holds. */
  async init(opts: { sweep?: boolean } = {}): Promise<{ swept: number }> {
    const bucket = await this.bucket.init(opts);
    const local = await this.local.init(opts);
    await this.loadIndex();
    return { swept: bucket.swept + local.swept };
  }

  /**
   * The index from the folder, least recently used first (by access or modification time, whichever is later).
   * Copies found here are verified (hashed) before their first use: they may come from another process's life.
   */
  private async loadIndex(): Promise<void> {
    this.copies.clear();
    this.total = 0;
    const found: { key: string; info: BlobInfo; used: number }[] = [];
    for (const key of await walk(this.dir, '')) {
      const [st, info] = await Promise.all([stat(this.pathOf(key)).catch(() => undefined), this.local.stat(key).catch(() => undefined)]);
      if (!st || !info) continue;
      if (info.sha512 === undefined) await this.local.delete(key).catch(() => false); // no record: cannot be checked
      else found.push({ key, info, used: Math.max(st.atimeMs, st.mtimeMs) });
    }
    found.sort((a, b) => a.used - b.used);
    for (const f of found) this.add(f.key, f.info, false);
    if (this.total > this.maxSize) this.evict(this.maxSize * 0.9);
  }

  /** The record from the bucket; while the bucket cannot answer, a local copy's (checked first when not yet). */
  stat(key: string): Promise<BlobInfo | undefined> {
    return this.bucket.stat(key).catch((err: unknown) => this.statWhileDown(key, err));
  }

  private async statWhileDown(key: string, err: unknown): Promise<BlobInfo | undefined> {
    const copy = this.copies.get(key);
    if (!(err instanceof NuproxyError) || err.code === 'BAD_REQUEST' || !copy) throw err;
    if (!copy.verified && !(await this.check(key, copy))) throw err;
    return copy.info;
  }

  /** The copy to serve for `info` (marked as just used), or undefined; a copy with other bytes is dropped. */
  private servable(key: string, info: BlobInfo): Copy | undefined {
    const copy = this.copies.get(key);
    if (copy === undefined) return undefined;
    if (copy.size !== info.size || copy.sha512 !== info.sha512) {
      void this.remove(key, copy);
      return undefined;
    }
    if (!copy.verified) {
      void this.check(key, copy); // served from the bucket meanwhile
      return undefined;
    }
    this.copies.delete(key);
    this.copies.set(key, copy);
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
    if (this.copies.get(key) === copy) void this.remove(key, copy);
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
        void this.remove(key, copy); // gone behind our back
      }
    } else this.fill(key, info);
    return this.bucket.open(key, range);
  }

  async read(key: string): Promise<Buffer | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const copy = this.servable(key, info);
    if (copy) {
      const bytes = await this.local.read(key).catch(() => undefined);
      if (bytes?.length === copy.size) return bytes;
      void this.remove(key, copy);
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
      const r = await this.local.reader(key).catch(() => undefined);
      if (r?.size === copy.size) return r;
      await r?.close();
      void this.remove(key, copy);
    } else this.fill(key, info);
    return this.bucket.reader(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.bucket.list(prefix);
  }

  createWriter(key: string): Promise<BlobWriter> {
    return this.bucket.createWriter(key); // its commit hands the spool to keepSpool
  }

  put(key: string, bytes: Uint8Array, opts?: { upstream?: string; check?: CommitCheck }): Promise<BlobInfo> {
    return this.bucket.put(key, bytes, opts);
  }

  async import(key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo> {
    if (check.replace) await this.drop(key);
    return this.bucket.import(key, body, check);
  }

  async delete(key: string): Promise<boolean> {
    await this.drop(key);
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

  /** Removes the copy of `key` (if any) and voids copies being written now. */
  private async drop(key: string): Promise<void> {
    this.epoch++;
    const copy = this.copies.get(key);
    if (copy) await this.remove(key, copy);
  }

  /** Only for keys that passed the bucket's key check (an S3 key's segments are valid on the disk too). */
  private pathOf(key: string): string {
    return join(this.dir, ...key.split('/'));
  }

  private add(key: string, info: BlobInfo, verified: boolean): void {
    const old = this.copies.get(key);
    if (old) {
      this.copies.delete(key);
      this.total -= old.size;
    }
    this.copies.set(key, { size: info.size, sha512: info.sha512!, path: this.pathOf(key), info, verified });
    this.total += info.size;
  }

  /** Out of the index at once (nothing new is served from it), off the disk in the background. */
  private remove(key: string, copy: Copy): Promise<void> {
    if (this.copies.get(key) === copy) {
      this.copies.delete(key);
      this.total -= copy.size;
    }
    const removed = (this.removing.get(key) ?? Promise.resolve())
      .then(() => this.local.delete(key))
      .then(
        () => undefined,
        (err: unknown) => this.log.debug({ err, key }, 'local tier: removing a copy failed'),
      )
      .finally(() => {
        if (this.removing.get(key) === removed) this.removing.delete(key);
      });
    this.removing.set(key, removed);
    return removed;
  }

  /** Least recently used copies go until the copies take at most `target` bytes. */
  private evict(target: number): void {
    for (const [key, copy] of this.copies) {
      if (this.total <= target) break;
      void this.remove(key, copy);
    }
  }

  /** Room for `size` more bytes (evicting down to 90% of maxSize when needed); false when it cannot be made. */
  private reserve(size: number): boolean {
    if (this.total + this.reserved + size > this.maxSize) this.evict(this.maxSize * 0.9 - this.reserved - size);
    if (this.total + this.reserved + size > this.maxSize) return false;
    this.reserved += size;
    return true;
  }

  /** Hashes a copy found at start-up: true when it holds its recorded bytes, else it is removed. */
  private check(key: string, copy: Copy): Promise<boolean> {
    return this.checks.run(key, async () => {
      const ok = await hashFile(copy.path).then(
        (h) => h.size === copy.size && h.sha512 === copy.sha512,
        () => false,
      );
      if (ok) copy.verified = true;
      else {
        this.log.debug({ key }, 'local tier: a copy did not hold its recorded bytes; removed');
        await this.remove(key, copy);
      }
      return ok;
    });
  }

  /**
   * Fills the copy of `key` in the background from one bucket GET (or the bytes just read), single-flight per
   * key. The FsBlobStore writer commits only with the record's length and SHA-512. A failure is forgotten.
   */
  private fill(key: string, info: BlobInfo, bytes?: Buffer): void {
    if (info.sha512 === undefined || info.size > this.maxSize || this.copies.has(key)) return;
    this.fills.run(key, () => this.fillNow(key, info, bytes)).catch((err: unknown) => this.log.debug({ err, key }, 'local tier: a fill failed'));
  }

  private async fillNow(key: string, info: BlobInfo, bytes: Buffer | undefined): Promise<void> {
    if (this.copies.has(key) || !this.reserve(info.size)) return;
    const epoch = this.epoch;
    let writer: BlobWriter | undefined;
    try {
      await this.removing.get(key);
      const body = bytes ? [bytes] : await this.bucket.open(key);
      if (!body) return;
      writer = await this.local.createWriter(key);
      const hash = createHash('sha512');
      for await (const chunk of body as AsyncIterable<Buffer> | Buffer[]) {
        writer.write(chunk);
        hash.update(chunk);
      }
      if (epoch !== this.epoch) throw new Error('the blob was deleted or replaced meanwhile');
      const stored = await writer.commit(hash.digest('base64'), { expectedLength: info.size, expectedSha512: info.sha512, ...(info.upstream ? { upstream: info.upstream } : {}) });
      writer = undefined;
      if (epoch !== this.epoch) await this.local.delete(key);
      else this.add(key, { ...stored, mtimeMs: info.mtimeMs }, true);
    } finally {
      this.reserved -= info.size;
      await writer?.abort();
    }
  }

  /**
   * The S3 writer's hook (see S3WriterHome.keepSpool): moves a committed spool file into the folder by rename
   * (the spool and the folder are both under cache.dir by default). On another file system the rename fails and
   * the spool is deleted as usual: the next read fills the copy from the bucket instead.
   */
  private async keepSpool(key: string, info: BlobInfo, spool: string): Promise<boolean> {
    if (info.sha512 === undefined || info.size > this.maxSize) return false;
    const had = this.copies.get(key);
    if (had && had.sha512 === info.sha512 && had.size === info.size) return false;
    if (had) void this.remove(key, had);
    await this.removing.get(key);
    if (!this.reserve(info.size)) return false;
    const epoch = this.epoch;
    const temp = tempNameIn(this.tmpDir, HOST);
    const tempMeta = tempNameIn(this.tmpDir, HOST);
    const final = this.pathOf(key);
    try {
      try {
        await rename(spool, temp);
      } catch {
        return false;
      }
      // FsBlobWriter's layout: the sidecar first ({ sha512, upstream }), each renamed into place whole
      await mkdir(dirname(final), { recursive: true });
      await writeFile(tempMeta, JSON.stringify({ sha512: info.sha512, ...(info.upstream ? { upstream: info.upstream } : {}) }) + '\n');
      await rename(tempMeta, final + META_SUFFIX);
      await rename(temp, final);
      if (epoch !== this.epoch) await this.local.delete(key);
      else this.add(key, info, true);
    } catch (err) {
      this.log.debug({ err, key }, 'local tier: keeping a spool failed');
      await rm(temp, { force: true });
      await rm(tempMeta, { force: true });
      if (!(await stat(final).then(() => true, () => false))) await rm(final + META_SUFFIX, { force: true });
    } finally {
      this.reserved -= info.size;
    }
    return true;
  }
}

/** Keys of the blob files under `dir` (sidecars, hidden names and the temp folder left out). */
async function walk(dir: string, prefix: string): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true }).catch(() => []);
  const keys: string[] = [];
  for (const e of entries) {
    if (!SEGMENT.test(e.name) || e.name.endsWith(META_SUFFIX)) continue;
    const key = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) keys.push(...(await walk(dir, key)));
    else if (e.isFile() && key.length <= 512) keys.push(key);
  }
  return keys;
}

function hashFile(path: string): Promise<{ size: number; sha512: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha512');
    let size = 0;
    createReadStream(path)
      .on('data', (c) => {
        hash.update(c as Buffer);
        size += c.length;
      })
      .on('error', reject)
      .on('end', () => resolve({ size, sha512: hash.digest('base64') }));
  });
}
