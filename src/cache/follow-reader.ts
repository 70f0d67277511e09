/**
 * Readers that follow a file (or the chunks kept in memory) while it is being written: each reads up to a
 * moving limit and waits for news at that limit. The limit rule (the last byte only once the whole is verified)
 * is the writer's: SharedDownload for downloads in this process, RemoteDownload for another worker's.
 */
import type { EventEmitter } from 'node:events';
import { close, openSync, read } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobInfo } from './fs-blob-store.js';

const CHUNK = 64 * 1024;

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
export function fileReader(
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
export function settledReader(done: Promise<BlobInfo>): Readable {
  return Readable.from(
    (async function* () {
      const info = await done;
      yield* committedReader(info);
    })(),
    { objectMode: false },
  );
}

/** The chunks of a download kept in memory (the array only grows while it is read). */
export function memoryReader(chunks: Buffer[], limit: () => number, finished: () => boolean, failed: () => Error | undefined, events: EventEmitter): Readable {
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
