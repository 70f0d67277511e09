import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from '../log.js';
import type { BlobInfo, BlobWriter, ByteReader } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { META_SUFFIX, tempNameIn } from './fs-blob-writer.js';
import { SingleFlight } from './single-flight.js';

/** One copy in the folder. `verified`: its bytes were hashed (or written) by this process. */
export interface Copy {
  size: number;
  sha512: string;
  path: string;
  info: BlobInfo;
  verified: boolean;
}

const SEGMENT = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}$/;
const HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';

/**
 * The local tier's folder (local-tier-blob-store.ts): checked copies of bucket blobs in an FsBlobStore root, an
 * in-memory index of them (key → copy, in the order of last use) and its bound. The total of the copies and of
 * those being written never passes maxSize: room is made by evicting the least recently used copies down to 90%
 * of it; a copy being written is not in the index yet, so it is never evicted.
 */
export class LocalTierFolder {
  readonly dir: string;
  readonly maxSize: number;
  private readonly local: FsBlobStore;
  private readonly tmpDir: string;
  /** Insertion order is the order of last use: the first entry is the least recently used. */
  private readonly copies = new Map<string, Copy>();
  private total = 0;
  /** Bytes of copies being written (counted against maxSize). */
  private reserved = 0;
  /** Bumped by every delete or replace: a copy written meanwhile may hold the old bytes and is not kept. */
  private epoch = 0;
  private readonly checks = new SingleFlight<boolean>();
  /** Removals from the disk under way: a new copy of the key waits for its old one to be gone. */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(
    dir: string,
    maxSize: number,
    private readonly log: Pick<Logger, 'debug'>,
  ) {
    this.dir = resolve(dir);
    this.maxSize = maxSize;
    this.local = new FsBlobStore(this.dir, { maxStats: 1 }); // its stat cache is not used: the index is
    this.tmpDir = join(this.dir, '.tmp'); // the FsBlobStore's temp area (swept by its init)
  }

  get bytes(): number {
    return this.total;
  }

  get(key: string): Copy | undefined {
    return this.copies.get(key);
  }

  /** Marks a copy as just used (no allocation: the entry moves to the end of the index). */
  touch(key: string, copy: Copy): void {
    this.copies.delete(key);
    this.copies.set(key, copy);
  }

  /** The whole copy of `key` (undefined when its file is gone). */
  read(key: string): Promise<Buffer | undefined> {
    return this.local.read(key).catch(() => undefined);
  }

  /** Random access to the copy of `key` (undefined when its file is gone). */
  reader(key: string): Promise<ByteReader | undefined> {
    return this.local.reader(key).catch(() => undefined);
  }

  /** Creates the folder, sweeps its temp files, and indexes the copies it holds. */
  async init(opts: { sweep?: boolean }): Promise<{ swept: number }> {
    const swept = await this.local.init(opts);
    await this.loadIndex();
    return swept;
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
  remove(key: string, copy: Copy): Promise<void> {
    if (this.copies.get(key) === copy) {
      this.copies.delete(key);
      this.total -= copy.size;
    }
    const removed: Promise<void> = (this.removing.get(key) ?? Promise.resolve())
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

  /** Removes the copy of `key` (if any) and voids copies being written now (a delete or replace). */
  async drop(key: string): Promise<void> {
    this.epoch++;
    const copy = this.copies.get(key);
    if (copy) await this.remove(key, copy);
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
  check(key: string, copy: Copy): Promise<boolean> {
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

  /** Whether a copy of a blob so large and so recorded may be kept at all. */
  keeps(info: BlobInfo): boolean {
    return info.sha512 !== undefined && info.size <= this.maxSize;
  }

  /**
   * Writes a copy of `key` from `body` through an FsBlobStore writer that commits only with the record's length
   * and SHA-512 (a wrong or short body is never kept). `body` is opened once room is made.
   */
  async fill(key: string, info: BlobInfo, body: () => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array> | undefined>): Promise<void> {
    if (!this.keeps(info) || this.copies.has(key)) return;
    await this.removing.get(key);
    if (!this.reserve(info.size)) return;
    const epoch = this.epoch;
    let writer: BlobWriter | undefined;
    try {
      const chunks = await body();
      if (!chunks) return;
      writer = await this.local.createWriter(key);
      const hash = createHash('sha512');
      for await (const chunk of chunks) {
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
   * Moves a committed spool file (checked bytes, exactly the blob's) into the folder by rename. On another file
   * system the rename fails and the caller deletes the spool as usual (a later read fills the copy instead).
   * True when the spool was taken.
   */
  async keepSpool(key: string, info: BlobInfo, spool: string): Promise<boolean> {
    if (!this.keeps(info)) return false;
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
