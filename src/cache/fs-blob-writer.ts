import { closeSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { checkAnnounced } from './blob-commit.js';
import type { BlobInfo, BlobWriter, CommitCheck, FollowLimits } from './blob-store.js';
import { fdByteReader } from './fs-byte-reader.js';
import { fileReader } from './follow-reader.js';

export const META_SUFFIX = '.meta';

/** How many trailing bytes a writer keeps in memory for the content check (a zip's end record area). */
const TAIL = 22 + 65535;

/** What the writer needs of its store: where temp files go, how they are named, and who learns of a commit. */
export interface WriterHome {
  /** A fresh temp file path of this host (the start-up sweeps know the name as one of this host's). */
  tempName(): string;
  committed(key: string, info: BlobInfo, path: string): void;
}

/**
 * One blob being written to a temp file of the store, renamed into place only when complete and checked.
 * Writes are synchronous and positional: bytes are visible to followers of the temp file as soon as write()
 * returns, with no queue of pending writes to hold in memory. The descriptor is opened read-write, so the
 * content check reads the file through it (no second open).
 */
export class FsBlobWriter implements BlobWriter {
  private closed = false;
  written = 0;
  private tailChunks: Buffer[] = [];
  private tailBytes = 0;
  /** The rename into place has started (the temp file may be gone, the blob at its key). */
  private placing = false;
  private committedInfo: BlobInfo | undefined;

  constructor(
    readonly key: string,
    private readonly tempPath: string,
    private readonly finalPath: string,
    private readonly fd: number,
    private readonly home: WriterHome,
  ) {}

  /** The temp file's name: another process on this disk follows it through FsBlobStore.followShared. */
  get shareRef(): string {
    return basename(this.tempPath);
  }

  /**
   * Synchronous positional write: data is visible to readers of the temp file as soon as this returns. `owned`:
   * the caller made `chunk` a copy of its own and never changes it, so the writer keeps it without copying again.
   */
  write(chunk: Uint8Array, owned = false): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off, this.written + off);
    this.written += chunk.length;
    this.tailChunks.push(owned ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length) : Buffer.from(chunk)); // else a copy: the source may reuse its buffers
    this.tailBytes += chunk.length;
    while (this.tailChunks.length > 1 && this.tailBytes - this.tailChunks[0]!.length >= TAIL) this.tailBytes -= this.tailChunks.shift()!.length;
  }

  follow(start: number, limits: FollowLimits): Readable {
    if (this.committedInfo) return fileReader(this.finalPath, start, limits);
    try {
      return fileReader(this.tempPath, start, limits);
    } catch (err) {
      // renamed into place a moment ago: the same bytes are at the key (else aborted: the caller follows the outcome)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.placing) return fileReader(this.finalPath, start, limits);
      throw err;
    }
  }

  private tail(): Buffer {
    const all = Buffer.concat(this.tailChunks);
    return all.length > TAIL ? all.subarray(all.length - TAIL) : all;
  }

  async commit(sha512: string, check: CommitCheck = {}): Promise<BlobInfo> {
    const upstream = check.upstream;
    let metaPlaced = false;
    // the sidecar's temp file: named like every temp file of this host (the start-up sweeps know it as one)
    const tempMeta = this.home.tempName();
    try {
      if (this.closed) throw new Error('blob writer already closed');
      checkAnnounced(this.written, sha512, check);
      if (check.verify) await check.verify(fdByteReader(this.fd, this.written, false), this.tail());
      check.onVerified?.();
      this.close();
      await ensureDir(dirname(this.finalPath));
      // The sidecar goes first: a blob file at its key is always complete, with its hash next to it. It is
      // written beside the temp blob and renamed into place, so it too is whole or absent (a full disk would
      // leave a 0-byte sidecar at the key if it were written there).
      await writeFile(tempMeta, JSON.stringify({ sha512, ...(upstream ? { upstream } : {}) }) + '\n');
      await rename(tempMeta, this.finalPath + META_SUFFIX);
      metaPlaced = true;
      this.placing = true;
      await rename(this.tempPath, this.finalPath);
    } catch (err) {
      this.placing = false;
      await rm(tempMeta, { force: true });
      // a sidecar with no blob beside it is removed again (one beside an earlier copy of the blob stays: it is true)
      if (metaPlaced && !(await stat(this.finalPath).then(() => true, () => false))) await rm(this.finalPath + META_SUFFIX, { force: true });
      await this.abort();
      throw err;
    }
    const info: BlobInfo = { size: this.written, sha512, mtimeMs: Date.now(), ...(upstream ? { upstream } : {}) };
    this.committedInfo = info;
    this.tailChunks = [];
    this.home.committed(this.key, info, this.finalPath);
    return info;
  }

  async abort(): Promise<void> {
    this.close();
    if (this.committedInfo) return; // committed: nothing of it is temporary any more
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

/** A temp name of `host` in `dir`: `<host>-<16 hex>.part`. */
export function tempNameIn(dir: string, host: string): string {
  return join(dir, `${host}-${randomBytes(8).toString('hex')}.part`);
}
