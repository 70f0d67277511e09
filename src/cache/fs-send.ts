import { close, open, read } from 'node:fs';
import type { ByteSink, SendProgress } from './blob-store.js';

/**
 * Reads for large files go through a few reusable buffers: a fresh 1 MB buffer per read costs an allocation and
 * its page faults (the kernel zeroes every new page), which is more than the copy itself. Each response keeps at
 * most two chunks in flight (one being read, one being written), and a buffer goes back to the pool only when
 * the socket has taken all of its bytes.
 */
const CHUNK = 1024 * 1024;
const IN_FLIGHT = 2;
const POOL_MAX = 16;
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function giveBuffer(b: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

/**
 * Sends bytes start..end (inclusive) of a stored file to a sink whose head is written, and ends it. A failed read
 * destroys the sink so the client sees a truncated body, never a wrong one; a sink that closes early stops the
 * reads. `file`: a path, or a descriptor the caller opened (it is closed here): the local tier opens the file
 * first, so a copy removed meanwhile is still sent whole.
 */
export function sendFile(file: string | number, sink: ByteSink, start: number, end: number, progress?: SendProgress): void {
  if (end < start) {
    if (typeof file === 'number') close(file, () => undefined);
    sink.end();
    return;
  }
  let fd: number | undefined;
  let pos = start;
  let inFlight = 0;
  let reading = false;
  let stopped = false;
  const finish = (err?: unknown): void => {
    if (stopped) return;
    stopped = true;
    if (fd !== undefined) close(fd, () => undefined);
    if (err) sink.destroy();
    else sink.end();
  };
  sink.once('close', () => finish(sink.writableFinished ? undefined : new Error('client went away')));
  const pump = (): void => {
    while (!stopped && !reading && inFlight < IN_FLIGHT && pos <= end) {
      const buf = takeBuffer();
      const want = Math.min(CHUNK, end - pos + 1);
      reading = true;
      inFlight++;
      read(fd!, buf, 0, want, pos, (err, n) => {
        reading = false;
        if (stopped) return;
        if (err || n === 0) return finish(err ?? new Error('file shorter than its recorded size'));
        pos += n;
        sink.write(n === buf.length ? buf : buf.subarray(0, n), (werr) => {
          inFlight--;
          if (werr) return finish(werr);
          if (progress) progress.bytesSent += n;
          giveBuffer(buf);
          if (pos > end && inFlight === 0) finish();
          else pump();
        });
        pump();
      });
    }
  };
  if (typeof file === 'number') {
    fd = file;
    pump();
    return;
  }
  open(file, 'r', (err, opened) => {
    if (err) return finish(err);
    if (stopped) return void close(opened, () => undefined);
    fd = opened;
    pump();
  });
}
