import { close, fstat, open as openCb, constants as fsc } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { NuproxyError } from '../errors.js';
import type { BlobInfo, BlobStore, BlobWriter, ByteReader, ByteSink, CommitCheck, FollowLimits, SendProgress } from './blob-store.js';
import { importVia, putVia } from './blob-commit.js';
import { FsBlobWriter, META_SUFFIX, tempNameIn, type WriterHome } from './fs-blob-writer.js';
import { fdByteReader } from './fs-byte-reader.js';
import { sendFile } from './fs-send.js';
import { committedFileReader, fileReader } from './follow-reader.js';
import { ReadLog } from './read-log.js';

export type { BlobInfo, CommitCheck } from './blob-store.js';

const SEGMENT = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}$/;
const TMP_DIR = '.tmp';
/** Temp files carry the host's name, so instances sharing one volume sweep only their own leftovers. */
const TEMP_HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';
/** Another host's writer names its temp files so (and a share reference is one of these names). */
const TEMP_NAME = /^[A-Za-z0-9]+-[0-9a-f]{16}\.part$/;

const isMissing = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * Immutable blobs on disk under one root: the blob at `<root>/<key>`, its SHA-512 and supplier in a `.meta`
 * sidecar beside it. Keys are "/"-separated relative paths of safe segments; anything else is refused before the
 * file system is touched. Writes go to `<root>/.tmp/` and are renamed into place only when complete and checked,
 * so a crash or an upstream fault never leaves a partial file at a key.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'disk';
  readonly sharedAcrossInstances = false;
  /** @deprecated tests only (use `location` for logs). */
  readonly root: string;
  private readonly tmpRoot: string;
  private readonly infoCache: LRUCache<string, BlobInfo>;
  /** The file of each info this store handed out: send() finds it without parsing the key again. */
  private readonly files = new WeakMap<BlobInfo, string>();
  private readonly reads = new ReadLog();
  private readonly home: WriterHome = {
    tempName: () => tempNameIn(this.tmpRoot, TEMP_HOST),
    committed: (key, info, path) => this.remember(key, info, path),
  };

  /** `maxStats`: how many stats are kept in memory (a share of cache.memoryMaxMB, see config/memory-budget.ts). */
  constructor(root: string, opts: { maxStats?: number } = {}) {
    this.infoCache = new LRUCache<string, BlobInfo>({ max: Math.max(1, opts.maxStats ?? 10_000) });
    this.root = resolve(root);
    this.tmpRoot = join(this.root, TMP_DIR);
  }

  get location(): string {
    return this.root;
  }

  /** @deprecated tests only. Scratch space on the same disk, swept at start-up. */
  get tmpDir(): string {
    return this.tmpRoot;
  }

  /**
   * Creates the root and sweeps temp files left by a crash: this host's own (a restarted instance), and any
   * older than an hour. On a volume shared by several instances the others' downloads under way are left alone.
   */
  async init(opts: { sweep?: boolean } = {}): Promise<{ swept: number }> {
    await mkdir(this.tmpRoot, { recursive: true });
    if (opts.sweep === false) return { swept: 0 };
    const mine = `${TEMP_HOST}-`;
    const cutoff = Date.now() - 3_600_000;
    let swept = 0;
    for (const f of await readdir(this.tmpRoot)) {
      const path = join(this.tmpRoot, f);
      const old = await stat(path).then((st) => st.mtimeMs < cutoff, () => false);
      const othersLive = !f.startsWith(mine) && TEMP_NAME.test(f);
      if (!othersLive || old) {
        await rm(path, { force: true, recursive: true });
        swept++;
      }
    }
    return { swept };
  }

  /** @deprecated tests only. The file of a key (BAD_REQUEST for an invalid key). */
  pathOf(key: string): string {
    return this.fileOf(key);
  }

  /** Absolute path for a key; throws BAD_REQUEST for anything that is not a plain relative path inside the root. */
  private fileOf(key: string): string {
    const segments = key.split('/');
    if (key.length > 512 || segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..') || segments[0] === TMP_DIR) {
      throw new NuproxyError('BAD_REQUEST', 'invalid cache key', { key: key.slice(0, 120) });
    }
    const full = join(this.root, ...segments);
    if (!full.startsWith(this.root + sep)) throw new NuproxyError('BAD_REQUEST', 'invalid cache key', { key });
    return full;
  }

  private remember(key: string, info: BlobInfo, path: string): void {
    this.files.set(info, path);
    this.infoCache.set(key, info);
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    const cached = this.infoCache.get(key);
    if (cached) return cached;
    const path = this.fileOf(key);
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    if (!st.isFile()) return undefined;
    let meta: { sha512?: unknown; upstream?: unknown } = {};
    try {
      meta = JSON.parse(await readFile(path + META_SUFFIX, 'utf8')) as typeof meta;
    } catch {
      meta = {};
    }
    const info: BlobInfo = {
      size: st.size,
      mtimeMs: st.mtimeMs,
      ...(typeof meta.sha512 === 'string' ? { sha512: meta.sha512 } : {}),
      ...(typeof meta.upstream === 'string' ? { upstream: meta.upstream } : {}),
    };
    this.remember(key, info, path);
    return info;
  }

  async open(key: string, range?: { start: number; endInclusive: number }): Promise<Readable | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const path = this.files.get(info) ?? this.fileOf(key);
    let reader;
    try {
      reader = committedFileReader(path, range ? range.start : 0, range ? Math.min(range.endInclusive + 1, info.size) : info.size);
    } catch (err) {
      if (!isMissing(err)) throw err;
      this.infoCache.delete(key); // removed behind our back
      return undefined;
    }
    this.reads.add(key);
    return reader;
  }

  async read(key: string): Promise<Buffer | undefined> {
    const path = this.fileOf(key);
    let bytes;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw err;
    }
    this.reads.add(key);
    return bytes;
  }

  async reader(key: string): Promise<ByteReader | undefined> {
    const path = this.fileOf(key);
    return new Promise((resolve, reject) =>
      openCb(path, 'r', (err, fd) => {
        if (err) return isMissing(err) ? resolve(undefined) : reject(err);
        fstat(fd, (serr, st) => {
          if (!serr && st.isFile()) return resolve(fdByteReader(fd, st.size, true));
          close(fd, () => (serr ? reject(serr) : resolve(undefined)));
        });
      }),
    );
  }

  send(key: string, info: BlobInfo, sink: ByteSink, start: number, endInclusive: number, progress?: SendProgress): void {
    this.reads.add(key);
    sendFile(this.files.get(info) ?? this.fileOf(key), sink, start, endInclusive, progress);
  }

  /** Names directly under a key prefix: blobs and deeper prefixes (the sidecars and hidden names left out). */
  async list(prefix: string): Promise<string[]> {
    try {
      return (await readdir(this.fileOf(prefix))).filter((n) => !n.startsWith('.') && !n.endsWith(META_SUFFIX));
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /**
   * Opens a temp file for `key`. The open runs off the event loop: creating a file costs a journal write, which
   * on a busy or virtual disk takes long enough to stall every other request if done synchronously.
   */
  createWriter(key: string): Promise<BlobWriter> {
    const finalPath = this.fileOf(key); // an invalid key throws here, before anything is opened
    const tempPath = this.home.tempName();
    return new Promise<BlobWriter>((resolve, reject) =>
      openCb(tempPath, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o644, (err, fd) => (err ? reject(err) : resolve(new FsBlobWriter(key, tempPath, finalPath, fd, this.home)))),
    );
  }

  put(key: string, bytes: Uint8Array, opts: { upstream?: string; check?: CommitCheck } = {}): Promise<BlobInfo> {
    return putVia(this, key, bytes, opts);
  }

  import(key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo> {
    return importVia(this, key, body, check);
  }

  /** The SHA-512 of a stored blob without one recorded (stored by an old version). */
  async hashOf(key: string): Promise<string | undefined> {
    const bytes = await readFile(this.fileOf(key)).catch(() => undefined);
    return bytes && createHash('sha512').update(bytes).digest('base64');
  }

  async delete(key: string): Promise<boolean> {
    const path = this.fileOf(key);
    this.infoCache.delete(key);
    const existed = await stat(path).then((st) => st.isFile(), () => false);
    if (!existed) return false;
    await rm(path, { force: true });
    await rm(path + META_SUFFIX, { force: true });
    this.infoCache.delete(key); // a stat that ran meanwhile
    return true;
  }

  noteRead(key: string): void {
    this.reads.add(key);
  }

  takeReads(): string[] {
    return this.reads.take();
  }

  /** Follows another worker's temp file on this disk, named by its share reference (a temp name, nothing else). */
  followShared(ref: string, start: number, limits: FollowLimits): Readable {
    if (!TEMP_NAME.test(ref)) throw new NuproxyError('BAD_REQUEST', 'invalid share reference', { ref: ref.slice(0, 60) });
    return fileReader(join(this.tmpRoot, ref), start, limits);
  }
}
