import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { close, openSync, read } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobInfo, BlobWriter, CommitCheck } from './fs-blob-store.js';

const CHUNK = 64 * 1024;
const MEMORY_MAX = 2 * 1024 * 1024;

/**
 * One upstream body written once into the blob store and read by any number of clients while it arrives.
 * Readers follow the temp file; memory stays flat whatever the size. The last byte is held back from readers
 * until the blob is verified and committed, so no client ever receives a complete-looking body that failed its
 * checks: on failure their streams are destroyed and the client sees a truncated response.
 */
export class SharedDownload {
  readonly done: Promise<BlobInfo>;
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

  constructor(
    private readonly writer: BlobWriter,
    source: AsyncIterable<Uint8Array>,
    readonly expectedLength: number | undefined,
    check: CommitCheck,
  ) {
    this.upstream = check.upstream ?? '';
    if (expectedLength !== undefined && expectedLength <= MEMORY_MAX) this.mem = [];
    this.events.setMaxListeners(0);
    this.done = this.pump(source, check);
    this.done.catch(() => undefined); // failures reach readers and awaiting callers; never unhandled
  }

  private async pump(source: AsyncIterable<Uint8Array>, check: CommitCheck): Promise<BlobInfo> {
    const hash = createHash('sha512');
    try {
      for await (const chunk of source) {
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
        this.events.emit('progress');
      }
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
      await this.writer.abort();
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.events.emit('progress');
      throw this.failure;
    }
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

  /** A stream of the blob's bytes, available as they arrive. Open it synchronously after construction. */
  createReader(): Readable {
    if (this.committed) return fileReader(this.committed.path, 0, () => this.committed?.size ?? 0, () => true);
    if (this.failure) return settledReader(this.done);
    const self = this;
    const limit = (): number => (self.committed ? self.committed.size : self.verified ? self.writer.written : Math.max(0, self.writer.written - 1));
    const finished = (): boolean => self.committed !== undefined || self.verified;
    if (this.mem) return memoryReader(this.mem, limit, finished, () => self.failure, this.events);
    try {
      return fileReader(
        this.writer.tempPath,
        0,
        () => (self.committed ? self.committed.size : self.verified ? self.writer.written : Math.max(0, self.writer.written - 1)),
        () => self.committed !== undefined || self.verified,
        () => self.failure,
        this.events,
      );
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
