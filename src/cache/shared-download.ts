import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { close, openSync, read } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobInfo, BlobWriter, CommitCheck } from './fs-blob-store.js';

const CHUNK = 64 * 1024;

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

  constructor(
    private readonly writer: BlobWriter,
    source: AsyncIterable<Uint8Array>,
    readonly expectedLength: number | undefined,
    check: CommitCheck,
  ) {
    this.upstream = check.upstream ?? '';
    this.events.setMaxListeners(0);
    this.done = this.pump(source, check);
    this.done.catch(() => undefined); // failures reach readers and awaiting callers; never unhandled
  }

  private async pump(source: AsyncIterable<Uint8Array>, check: CommitCheck): Promise<BlobInfo> {
    const hash = createHash('sha512');
    try {
      for await (const chunk of source) {
        this.writer.write(chunk);
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

  /** A stream of the blob's bytes, available as they arrive. Open it synchronously after construction. */
  createReader(): Readable {
    if (this.committed) return fileReader(this.committed.path, 0, () => this.committed?.size ?? 0, () => true);
    if (this.failure) return settledReader(this.done);
    const self = this;
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
 * Reads a file from `start` up to a moving limit. `finished()` says the limit is final; `failed()` aborts.
 * The fd is opened synchronously at once, so a rename of the file right after does not disturb the reader.
 */
function fileReader(
  path: string,
  start: number,
  limit: () => number,
  finished: () => boolean,
  failed: () => Error | undefined = () => undefined,
  events?: EventEmitter,
): Readable {
  const fd = openSync(path, 'r');
  let pos = start;
  let waiting: (() => void) | undefined;
  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      const step = (): void => {
        const err = failed();
        if (err) {
          stream.destroy(err);
          return;
        }
        const lim = limit();
        if (pos < lim) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, lim - pos));
          read(fd, buf, 0, buf.length, pos, (rerr, n) => {
            if (rerr) {
              stream.destroy(rerr);
              return;
            }
            pos += n;
            stream.push(n === buf.length ? buf : buf.subarray(0, n));
          });
          return;
        }
        if (finished()) {
          stream.push(null);
          return;
        }
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
      step();
    },
    destroy(err, cb) {
      if (waiting && events) events.off('progress', waiting);
      close(fd, () => cb(err));
    },
  });
  return stream;
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

/** A reader for a committed blob (exported for the serving path). */
export function committedReader(info: BlobInfo, start = 0, endExclusive = info.size): Readable {
  return fileReader(info.path, start, () => endExclusive, () => true);
}
