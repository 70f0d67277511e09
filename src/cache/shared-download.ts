import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { close, openSync, read } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobInfo, BlobWriter, CommitCheck } from './fs-blob-store.js';

const CHUNK = 64 * 1024;
const MEMORY_MAX = 2 * 1024 * 1024;

/** A body that can be cancelled (the upstream connection closed with it). */
export type DownloadSource = AsyncIterable<Uint8Array> & { destroy?(err?: Error): void };

export interface DownloadOptions {
  /**
   * Once no reader (and no hold) is left, the download goes on at most this long, then it is cancelled: the
   * source destroyed, the temp file removed, `done` rejected with `abandonError()`. Unset: it always goes on.
   */
  abandonAfterMs?: number;
  abandonError?: () => Error;
}

/**
 * One upstream body written once into the blob store and read by any number of clients while it arrives.
 * Readers follow the temp file; memory stays flat whatever the size. The last byte is held back from readers
 * until the blob is verified and committed, so no client ever receives a complete-looking body that failed its
 * checks: on failure their streams are destroyed and the client sees a truncated response.
 *
 * Whoever wants the bytes holds the download (each reader does while it is open, others with `hold()`); once
 * nobody has for `abandonAfterMs`, it is cancelled, so clients that left do not keep an upstream connection and
 * the disk busy.
 */
export class SharedDownload {
  readonly done: Promise<BlobInfo>;
  /**
   * Resolves when the first bytes are written (the source passed them: its head checks are behind it) or the
   * source ended; rejects with the download's error if it fails before. Until then a client can still be
   * answered with an error status instead of a cut body.
   */
  readonly started: Promise<void>;
  /** Who supplies the bytes (reported to clients). */
  readonly upstream: string;
  private readonly events = new EventEmitter();
  private committed: BlobInfo | undefined;
  /** Every check passed: readers may have the last byte even before the file is moved into place. */
  private verified = false;
  private failure: Error | undefined;
  /**
   * A small download (announced length up to MEMORY_MAX) is also kept in memory while it lasts: its readers
   * take the bytes from there instead of reading the temp file back (one file-system round trip less per chunk).
   */
  private mem: Buffer[] | undefined;
  private firstBytes!: { resolve: () => void; reject: (err: Error) => void };
  /** Readers open plus holds taken: while above 0 the download is wanted. */
  private holders = 0;
  private abandonTimer: NodeJS.Timeout | undefined;
  /** Set when the download was cancelled (abandoned): the reason every reader and caller gets. */
  private cancelled: Error | undefined;
  /** Every byte has arrived: cancelling no longer saves anything. */
  private received = false;

  constructor(
    private readonly writer: BlobWriter,
    private readonly source: DownloadSource,
    readonly expectedLength: number | undefined,
    check: CommitCheck,
    private readonly opts: DownloadOptions = {},
  ) {
    this.upstream = check.upstream ?? '';
    if (expectedLength !== undefined && expectedLength <= MEMORY_MAX) this.mem = [];
    this.events.setMaxListeners(0);
    this.started = new Promise<void>((resolve, reject) => (this.firstBytes = { resolve, reject }));
    this.started.catch(() => undefined);
    this.done = this.pump(source, check);
    this.done.catch(() => undefined); // failures reach readers and awaiting callers; never unhandled
    void this.started.then(() => this.holders === 0 && this.armAbandon(), () => undefined);
  }

  /**
   * Marks the download as wanted by someone who is not (yet) a reader here, e.g. a client of another worker
   * following the temp file. Call the returned function (once) when they are gone.
   */
  hold(): () => void {
    this.holders++;
    if (this.abandonTimer) clearTimeout(this.abandonTimer);
    this.abandonTimer = undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
      if (this.holders === 0) this.armAbandon();
    };
  }

  private armAbandon(): void {
    const ms = this.opts.abandonAfterMs;
    if (ms === undefined || this.settled || this.received || this.abandonTimer) return;
    this.abandonTimer = setTimeout(() => {
      this.abandonTimer = undefined;
      if (this.holders === 0) this.cancel(this.opts.abandonError?.() ?? new Error(`download abandoned: nobody read it for ${ms} ms`));
    }, ms);
    this.abandonTimer.unref();
  }

  /** Stops the download: the source is destroyed (its connection closed), nothing is stored, readers fail. */
  private cancel(reason: Error): void {
    if (this.settled || this.received || this.cancelled) return;
    this.cancelled = reason;
    this.source.destroy?.(reason);
    this.events.emit('progress');
  }

  /** Cancelled because nobody was reading it (a new client must start it again). */
  get abandoned(): boolean {
    return this.cancelled !== undefined;
  }

  private get settled(): boolean {
    return this.committed !== undefined || this.failure !== undefined;
  }

  private async pump(source: AsyncIterable<Uint8Array>, check: CommitCheck): Promise<BlobInfo> {
    const hash = createHash('sha512');
    try {
      for await (const chunk of source) {
        if (this.cancelled) throw this.cancelled; // a source that cannot be destroyed stops at its next chunk
        if (this.mem && this.writer.written + chunk.length <= MEMORY_MAX) {
          // one copy (the source may reuse its buffers) serves the readers and the writer's zip-tail check
          const copy = Buffer.from(chunk);
          this.writer.write(copy, true);
          this.mem.push(copy);
        } else {
          this.mem = undefined; // longer than announced: the commit refuses it
          this.writer.write(chunk);
        }
        hash.update(chunk);
        if (this.writer.written === chunk.length) this.firstBytes.resolve();
        this.events.emit('progress');
      }
      if (this.cancelled) throw this.cancelled;
      this.received = true;
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
      this.firstBytes.resolve();
      this.committed = await this.writer.commit(hash.digest('base64'), {
        ...check,
        onVerified: () => {
          this.verified = true;
          this.events.emit('progress');
        },
      });
      this.mem = undefined; // later readers read the committed file
      this.events.emit('progress');
      return this.committed;
    } catch (err) {
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
      // the failure is recorded before the temp file goes: a reader opening now follows the outcome
      this.failure = this.cancelled ?? (err instanceof Error ? err : new Error(String(err)));
      this.firstBytes.reject(this.failure);
      this.events.emit('progress');
      await this.writer.abort();
      throw this.failure;
    }
  }

  /**
   * Resolves once a client may be answered: when every check has passed, or, for a body longer than
   * `holdUpTo` bytes, as soon as more than that has arrived (a large package streams to its clients while it
   * arrives). Rejects with the download's error before that, so a client still waiting gets an error status
   * rather than a cut body.
   */
  ready(holdUpTo: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const decide = (): boolean => {
        if (this.failure) reject(this.failure);
        else if (this.isVerified || this.writer.written > holdUpTo) resolve();
        else return false;
        return true;
      };
      if (decide()) return;
      const off = this.onProgress(() => decide() && off());
    });
  }

  get bytesWritten(): number {
    return this.writer.written;
  }

  /** Every check passed (the last byte may be read). */
  get isVerified(): boolean {
    return this.verified || this.committed !== undefined;
  }

  /** Where the bytes are being written (other processes on this disk may follow it). */
  get tempPath(): string {
    return this.writer.tempPath;
  }

  /** Called on every chunk written, on verification and at the end. */
  onProgress(listener: () => void): () => void {
    this.events.on('progress', listener);
    return () => this.events.off('progress', listener);
  }

  /**
   * A stream of the blob's bytes, available as they arrive. Open it synchronously after construction. While
   * open it holds the download (see hold()).
   */
  createReader(): Readable {
    if (this.committed) return fileReader(this.committed.path, 0, () => this.committed?.size ?? 0, () => true);
    if (this.failure) return settledReader(this.done);
    const reader = this.followingReader();
    const release = this.hold();
    reader.once('close', release);
    return reader;
  }

  private followingReader(): Readable {
    const self = this;
    const limit = (): number => (self.committed ? self.committed.size : self.verified ? self.writer.written : Math.max(0, self.writer.written - 1));
    const finished = (): boolean => self.committed !== undefined || self.verified;
    const failed = (): Error | undefined => self.failure ?? self.cancelled;
    if (this.mem) return memoryReader(this.mem, limit, finished, failed, this.events);
    try {
      return fileReader(this.writer.tempPath, 0, limit, finished, failed, this.events);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // The temp file is gone but the outcome is not recorded yet: commit has just renamed it into place, or a
      // failure has just removed it. Follow the outcome instead of failing with ENOENT.
      return settledReader(this.done);
    }
  }
}

/**
 * A download another process on this machine is writing (a worker of the same nuproxy): its temp file is
 * followed as that process reports progress, with the same rule as SharedDownload: the last byte only once the
 * writer has verified the whole. Without news for `idleMs` the download counts as failed.
 */
export class RemoteDownload {
  readonly done: Promise<BlobInfo>;
  private readonly events = new EventEmitter();
  private written = 0;
  private verified = false;
  private committed: BlobInfo | undefined;
  private failure: Error | undefined;
  private settle!: { resolve: (info: BlobInfo) => void; reject: (err: Error) => void };
  private idle: NodeJS.Timeout | undefined;

  constructor(
    readonly tempPath: string,
    readonly expectedLength: number | undefined,
    readonly upstream: string,
    private readonly idleMs: number,
  ) {
    this.events.setMaxListeners(0);
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined);
    this.touch();
  }

  private touch(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => this.fail('the worker fetching this package stopped reporting'), this.idleMs);
    this.idle.unref();
  }

  progress(written: number, verified: boolean): void {
    if (this.committed || this.failure) return;
    this.written = Math.max(this.written, written);
    this.verified ||= verified;
    this.touch();
    this.events.emit('progress');
  }

  finish(info: BlobInfo): void {
    if (this.committed || this.failure) return;
    if (this.idle) clearTimeout(this.idle);
    this.committed = info;
    this.settle.resolve(info);
    this.events.emit('progress');
  }

  fail(message: string): void {
    if (this.committed || this.failure) return;
    if (this.idle) clearTimeout(this.idle);
    this.failure = new Error(message);
    this.settle.reject(this.failure);
    this.events.emit('progress');
  }

  get settled(): boolean {
    return this.committed !== undefined || this.failure !== undefined;
  }

  createReader(): Readable {
    if (this.committed) return committedReader(this.committed);
    if (this.failure) return settledReader(this.done);
    try {
      return fileReader(
        this.tempPath,
        0,
        () => (this.committed ? this.committed.size : this.verified ? this.written : Math.max(0, this.written - 1)),
        () => this.committed !== undefined || this.verified,
        () => this.failure,
        this.events,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return settledReader(this.done); // moved into place (or removed) already: follow the outcome
    }
  }
}

/** Where a following reader takes its bytes from: `take` answers up to `max` bytes at `pos`, or none yet. */
interface ByteSource {
  take(pos: number, max: number, cb: (err: Error | null, bytes: Buffer | undefined) => void): void;
  close(cb: () => void): void;
}

/**
 * Streams a source from `start` up to a moving limit. `finished()` says the limit is final; `failed()` aborts;
 * without `events` to wait on, reaching the limit early is an error.
 */
function followReader(
  source: ByteSource,
  start: number,
  limit: () => number,
  finished: () => boolean,
  failed: () => Error | undefined = () => undefined,
  events?: EventEmitter,
): Readable {
  let pos = start;
  let waiting: (() => void) | undefined;
  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      const wait = (): void => {
        if (!events) {
          stream.destroy(new Error('file ended before its expected size'));
          return;
        }
        waiting = () => {
          waiting = undefined;
          step();
        };
        events.once('progress', waiting);
      };
      const step = (): void => {
        const err = failed();
        if (err) {
          stream.destroy(err);
          return;
        }
        const lim = limit();
        if (pos < lim) {
          source.take(pos, Math.min(CHUNK, lim - pos), (terr, bytes) => {
            if (terr) stream.destroy(terr);
            else if (!bytes) wait();
            else {
              pos += bytes.length;
              stream.push(bytes);
            }
          });
          return;
        }
        if (finished()) stream.push(null);
        else wait();
      };
      step();
    },
    destroy(err, cb) {
      if (waiting && events) events.off('progress', waiting);
      source.close(() => cb(err));
    },
  });
  return stream;
}

/** A file, opened synchronously at once, so a rename of the file right after does not disturb the reader. */
function fileReader(
  path: string,
  start: number,
  limit: () => number,
  finished: () => boolean,
  failed?: () => Error | undefined,
  events?: EventEmitter,
): Readable {
  const fd = openSync(path, 'r');
  const source: ByteSource = {
    take: (pos, max, cb) => {
      const buf = Buffer.allocUnsafe(max);
      read(fd, buf, 0, max, pos, (err, n) => cb(err, err ? undefined : n === max ? buf : buf.subarray(0, n)));
    },
    close: (cb) => close(fd, () => cb()),
  };
  return followReader(source, start, limit, finished, failed, events);
}

/** Waits for the download's outcome: the committed bytes, or the download's error. */
function settledReader(done: Promise<BlobInfo>): Readable {
  return Readable.from(
    (async function* () {
      const info = await done;
      yield* committedReader(info);
    })(),
    { objectMode: false },
  );
}

/** The chunks of a download kept in memory (the array only grows while it is read). */
function memoryReader(chunks: Buffer[], limit: () => number, finished: () => boolean, failed: () => Error | undefined, events: EventEmitter): Readable {
  let index = 0; // chunk holding the next position
  let offset = 0; // that position inside the chunk
  const source: ByteSource = {
    take: (_pos, max, cb) => {
      const chunk = chunks[index];
      // no chunk below the limit only when the body ran past its announced length; the download then fails
      if (!chunk) return cb(null, undefined);
      const slice = chunk.subarray(offset, offset + Math.min(chunk.length - offset, max));
      offset += slice.length;
      if (offset === chunk.length) {
        index++;
        offset = 0;
      }
      cb(null, slice);
    },
    close: (cb) => cb(),
  };
  return followReader(source, 0, limit, finished, failed, events);
}

/** A reader for a committed blob (exported for the serving path). */
export function committedReader(info: BlobInfo, start = 0, endExclusive = info.size): Readable {
  return fileReader(info.path, start, () => endExclusive, () => true);
}
