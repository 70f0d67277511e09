/**
 * Readers that follow a file (or the chunks kept in memory) while it is being written: each reads up to a
 * moving limit and waits for news at that limit. The limit rule (the last byte only once the whole is verified)
 * is the writer's: SharedDownload for downloads in this process, RemoteDownload for another worker's. These are
 * the disk's helpers (FsBlobStore and its writer) and SharedDownload's memory copy; nothing above cache/ sees them.
 */
import type { EventEmitter } from 'node:events';
import { close, openSync, read } from 'node:fs';
import { Readable } from 'node:stream';

const CHUNK = 64 * 1024;

/**
 * Where a reader takes its limit from. `finished()` says the limit is final; `failed()` aborts; without
 * `events` to wait on, reaching the limit early is an error (a committed file shorter than its size).
 */
export interface ReaderLimits {
  limit: () => number;
  finished: () => boolean;
  failed?: () => Error | undefined;
  events?: EventEmitter;
}

/** Where a following reader takes its bytes from: `take` answers up to `max` bytes at `pos`, or none yet. */
interface ByteSource {
  take(pos: number, max: number, cb: (err: Error | null, bytes: Buffer | undefined) => void): void;
  close(cb: () => void): void;
}

/** Streams a source from `start` up to a moving limit. */
function followReader(source: ByteSource, start: number, limits: ReaderLimits): Readable {
  const { limit, finished, failed, events } = limits;
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
        const err = failed?.();
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

/**
 * A file, opened synchronously at once, so a rename of the file right after does not disturb the reader. Throws
 * (ENOENT) when the file is not there.
 */
export function fileReader(path: string, start: number, limits: ReaderLimits): Readable {
  const fd = openSync(path, 'r');
  const source: ByteSource = {
    take: (pos, max, cb) => {
      const buf = Buffer.allocUnsafe(max);
      read(fd, buf, 0, max, pos, (err, n) => cb(err, err ? undefined : n === max ? buf : buf.subarray(0, n)));
    },
    close: (cb) => close(fd, () => cb()),
  };
  return followReader(source, start, limits);
}

/** A complete file's bytes start..endExclusive. */
export function committedFileReader(path: string, start: number, endExclusive: number): Readable {
  return fileReader(path, start, { limit: () => endExclusive, finished: () => true });
}

/** Waits for an outcome, then streams what `open` gives for it (the committed bytes), or fails with its error. */
export function settledReader<T>(done: Promise<T>, open: (outcome: T) => Readable | Promise<Readable | undefined>): Readable {
  return Readable.from(
    (async function* () {
      const reader = await open(await done);
      if (!reader) throw new Error('the stored blob is gone');
      yield* reader;
    })(),
    { objectMode: false },
  );
}

/** The chunks of a download kept in memory (the array only grows while it is read). */
export function memoryReader(chunks: Buffer[], limits: ReaderLimits): Readable {
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
  return followReader(source, 0, limits);
}
