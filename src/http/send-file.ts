import { close, open, read } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import type { BlobInfo } from '../feed/packages.js';

export type ByteRange = { start: number; end: number }; // inclusive

/** Parses a single "bytes=" range (RFC 9110 §14.1.2). Multiple ranges are not supported: serve the whole file. */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export function etagOf(info: BlobInfo): string {
  return info.sha512 ? `"${info.sha512.slice(0, 32).replace(/[+/]/g, (c) => (c === '+' ? '-' : '_'))}"` : `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
}

/** Where a sender counts the body bytes it has handed to the connection (the exchange, for its log line). */
export interface SendProgress {
  bytesSent: number;
}

/** Writes a stream to the raw Node response; a failed source destroys the socket so the client sees truncation. */
export function pipeTo(res: ServerResponse, status: number, headers: Record<string, string>, body: Readable | undefined, progress?: SendProgress): void {
  res.writeHead(status, headers);
  if (!body) {
    res.end();
    return;
  }
  // (a stream is a download under way, never a cache hit: counting its chunks costs a hit nothing)
  if (progress) body.on('data', (chunk: Buffer) => (progress.bytesSent += chunk.length));
  pipeline(body, res, (err) => {
    if (err) res.destroy();
  });
}

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
 * Sends bytes start..end (inclusive) of a stored file. A failed read destroys the socket so the client sees a
 * truncated body, never a wrong one; a client that goes away stops the reads.
 */
export function sendFile(res: ServerResponse, status: number, headers: Record<string, string>, path: string, start: number, end: number, progress?: SendProgress): void {
  res.writeHead(status, headers);
  if (end < start) {
    res.end();
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
    if (err) res.destroy();
    else res.end();
  };
  res.once('close', () => finish(res.writableFinished ? undefined : new Error('client went away')));
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
        res.write(n === buf.length ? buf : buf.subarray(0, n), (werr) => {
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
  open(path, 'r', (err, opened) => {
    if (err) return finish(err);
    if (stopped) return void close(opened, () => undefined);
    fd = opened;
    pump();
  });
}
