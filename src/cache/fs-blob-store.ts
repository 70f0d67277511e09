import { closeSync, open as openCb, writeSync, constants as fsc } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile, open } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join, resolve, sep } from 'node:path';
import { hostname } from 'node:os';
import { LRUCache } from 'lru-cache';
import { NuproxyError } from '../errors.js';

export interface BlobInfo {
  path: string;
  size: number;
  sha512?: string; // base64, from the sidecar written at commit time
  upstream?: string; // who supplied it, from the sidecar
  mtimeMs: number;
}

export interface CommitCheck {
  expectedLength?: number;
  expectedSha512?: string; // base64
  /**
   * Extra content check on the complete temp file (e.g. "is a zip"); throws to refuse it. `tail` holds the
   * file's last bytes when the writer kept them (no read back from disk needed).
   */
  verify?: (tempPath: string, size: number, tail?: Buffer) => Promise<void>;
  /** Called once every check has passed, before the file is moved into place. */
  onVerified?: () => void;
  /** Recorded next to the blob: which upstream supplied it. */
  upstream?: string;
}

const SEGMENT = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}$/;
const TMP_DIR = '.tmp';
const META_SUFFIX = '.meta';
/** Temp files carry the host's name, so instances sharing one volume sweep only their own leftovers. */
const TEMP_HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';

/**
 * Immutable blobs on disk under one root. Keys are "/"-separated relative paths of safe segments; anything
 * else is refused before the file system is touched. Writes go to `<root>/.tmp/` and are renamed into place
 * only when complete and checked, so a crash or an upstream fault never leaves a partial file at a key.
 */
export class FsBlobStore {
  readonly root: string;
  private readonly tmpRoot: string;

  /** Scratch space on the same disk, swept at start-up (also used for copies of pushed packages). */
  get tmpDir(): string {
    return this.tmpRoot;
  }
  private readonly infoCache = new LRUCache<string, BlobInfo>({ max: 10_000 });

  constructor(root: string) {
    this.root = resolve(root);
    this.tmpRoot = join(this.root, TMP_DIR);
  }

  /** Creates the root and sweeps temp files left behind by a crash. */
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
      // another host's writer names its temp files <host>-<16 hex>.part; anything else is a leftover
      const othersLive = !f.startsWith(mine) && /^[A-Za-z0-9]+-[0-9a-f]{16}\.part$/.test(f);
      if (!othersLive || old) {
        await rm(path, { force: true, recursive: true });
        swept++;
      }
    }
    return { swept };
  }

  /** Absolute path for a key; throws BAD_REQUEST for anything that is not a plain relative path inside the root. */
  pathOf(key: string): string {
    const segments = key.split('/');
    if (key.length > 512 || segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..') || segments[0] === TMP_DIR) {
      throw new NuproxyError('BAD_REQUEST', 'invalid cache key', { key: key.slice(0, 120) });
    }
    const full = join(this.root, ...segments);
    if (!full.startsWith(this.root + sep)) throw new NuproxyError('BAD_REQUEST', 'invalid cache key', { key });
    return full;
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    const cached = this.infoCache.get(key);
    if (cached) return cached;
    const path = this.pathOf(key);
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
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
      path,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ...(typeof meta.sha512 === 'string' ? { sha512: meta.sha512 } : {}),
      ...(typeof meta.upstream === 'string' ? { upstream: meta.upstream } : {}),
    };
    this.infoCache.set(key, info);
    return info;
  }

  /** Names directly under a key prefix (an empty list when there is nothing there). */
  async children(prefix: string): Promise<string[]> {
    try {
      return (await readdir(this.pathOf(prefix))).filter((n) => !n.startsWith('.'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw err;
    }
  }

  /** Stores a small blob whole (atomic like every write). */
  async put(key: string, bytes: Uint8Array, upstream?: string): Promise<BlobInfo> {
    const writer = await this.createWriter(key);
    writer.write(bytes);
    return writer.commit(createHash('sha512').update(bytes).digest('base64'), upstream ? { upstream } : {});
  }

  /**
   * Opens a temp file for `key`. The open runs off the event loop: creating a file costs a journal write, which
   * on a busy or virtual disk takes long enough to stall every other request if done synchronously.
   */
  createWriter(key: string): Promise<BlobWriter> {
    const finalPath = this.pathOf(key); // an invalid key throws here, before anything is opened
    const tempPath = join(this.tmpRoot, `${TEMP_HOST}-${randomBytes(8).toString('hex')}.part`);
    return new Promise<BlobWriter>((resolve, reject) =>
      openCb(tempPath, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o644, (err, fd) =>
        err ? reject(err) : resolve(new BlobWriter(key, tempPath, finalPath, fd, (info) => this.infoCache.set(key, info))),
      ),
    );
  }

  /** Drops a cached stat (used when a blob is removed by tools such as import). */
  forget(key: string): void {
    this.infoCache.delete(key);
  }
}

/** How many trailing bytes a writer keeps in memory for the content check (a zip's end record area). */
const TAIL = 22 + 65535;

export class BlobWriter {
  private closed = false;
  written = 0;
  private tailChunks: Buffer[] = [];
  private tailBytes = 0;

  constructor(
    readonly key: string,
    readonly tempPath: string,
    private readonly finalPath: string,
    private readonly fd: number,
    private readonly onCommit: (info: BlobInfo) => void,
  ) {}

  /**
   * Synchronous positional write: data is visible to readers of tempPath as soon as this returns. `owned`: the
   * caller made `chunk` a copy of its own and never changes it, so the writer keeps it without copying again.
   */
  write(chunk: Uint8Array, owned = false): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off, this.written + off);
    this.written += chunk.length;
    this.tailChunks.push(owned ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length) : Buffer.from(chunk)); // else a copy: the source may reuse its buffers
    this.tailBytes += chunk.length;
    while (this.tailChunks.length > 1 && this.tailBytes - this.tailChunks[0]!.length >= TAIL) this.tailBytes -= this.tailChunks.shift()!.length;
  }

  private tail(): Buffer {
    const all = Buffer.concat(this.tailChunks);
    return all.length > TAIL ? all.subarray(all.length - TAIL) : all;
  }

  async commit(sha512: string, check: CommitCheck = {}): Promise<BlobInfo> {
    const upstream = check.upstream;
    let metaPlaced = false;
    // the sidecar's temp file: named like every temp file of this host (the start-up sweeps know it as one)
    const tempMeta = join(dirname(this.tempPath), `${TEMP_HOST}-${randomBytes(8).toString('hex')}.part`);
    this.close();
    try {
      if (check.expectedLength !== undefined && check.expectedLength !== this.written) {
        throw new NuproxyError('INTEGRITY', `upstream body length ${this.written} differs from Content-Length ${check.expectedLength}`);
      }
      if (check.expectedSha512 !== undefined && check.expectedSha512 !== sha512) {
        throw new NuproxyError('INTEGRITY', 'upstream body does not match the SHA-512 the upstream announced');
      }
      if (check.verify) await check.verify(this.tempPath, this.written, this.tail());
      check.onVerified?.();
      await ensureDir(dirname(this.finalPath));
      // The sidecar goes first: a blob file at its key is always complete, with its hash next to it. It is
      // written beside the temp blob and renamed into place, so it too is whole or absent (a full disk would
      // leave a 0-byte sidecar at the key if it were written there).
      await writeFile(tempMeta, JSON.stringify({ sha512, ...(upstream ? { upstream } : {}) }) + '\n');
      await rename(tempMeta, this.finalPath + META_SUFFIX);
      metaPlaced = true;
      await rename(this.tempPath, this.finalPath);
    } catch (err) {
      await rm(tempMeta, { force: true });
      // a sidecar with no blob beside it is removed again (one beside an earlier copy of the blob stays: it is true)
      if (metaPlaced && !(await stat(this.finalPath).then(() => true, () => false))) await rm(this.finalPath + META_SUFFIX, { force: true });
      await this.abort();
      throw err;
    }
    const info: BlobInfo = { path: this.finalPath, size: this.written, sha512, mtimeMs: Date.now(), ...(upstream ? { upstream } : {}) };
    this.onCommit(info);
    return info;
  }

  async abort(): Promise<void> {
    this.close();
    await rm(this.tempPath, { force: true });
  }


  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Directories known to exist (the cache only ever adds directories): one mkdir per directory, not per file. */
const madeDirs = new Set<string>();
async function ensureDir(dir: string): Promise<void> {
  if (madeDirs.has(dir)) return;
  await mkdir(dir, { recursive: true });
  if (madeDirs.size > 100_000) madeDirs.clear();
  madeDirs.add(dir);
}

/** Reads `length` bytes at the end of a file (for cheap format checks). */
export async function readTail(path: string, length: number, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const n = Math.min(length, size);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, size - n);
    return buf;
  } finally {
    await fh.close();
  }
}
