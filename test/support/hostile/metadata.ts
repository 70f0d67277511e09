// Hostile metadata answers for the hostile upstream (server.ts): bombs, huge and endless documents, deep nesting,
// echoes of the request's credentials. Each is a HostileHandler; those that stream record what they sent in a
// `Sent` object, so a test can show that nuproxy stopped reading early and let go of the connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { HostileHandler } from './server.js';

/** What a streaming handler sent, and whether the client (nuproxy) closed the connection on it. */
export interface Sent {
  bytes: number;
  closed: boolean;
  /** Resolves when the connection closed or the answer ended. */
  done: Promise<void>;
}

function tracker(): Sent & { finish(): void } {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return { bytes: 0, closed: false, done, finish };
}

/** Writes chunks from `next` (undefined: the end) with backpressure until it ends or the client hangs up. */
function stream(res: ServerResponse, sent: Sent & { finish(): void }, next: () => Buffer | undefined): void {
  res.on('close', () => {
    sent.closed = !res.writableFinished;
    sent.finish();
  });
  const pump = (): void => {
    for (;;) {
      if (res.destroyed) return;
      const chunk = next();
      if (chunk === undefined) {
        res.end();
        return;
      }
      sent.bytes += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

let member: Buffer | undefined;
/** One gzip member of 64 MB of "a" (65 KB: deflate's best ratio), made once. */
function bombMember(): Buffer {
  member ??= gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x61), { level: 9 });
  return member;
}

const BOMB_HEAD = '{"versions":["';

/**
 * A gzip-encoded document that inflates to about `decodedBytes` (default 2.5 GB, from 2.6 MB on the wire, as in
 * issue #11): one gzip member opening `{"versions":["`, then members of 64 MB of "a" each (gunzip reads
 * concatenated members): a version string that never ends.
 */
export function gzipBomb(sent: Sent & { finish(): void }, decodedBytes = 2.5 * 1024 ** 3): HostileHandler {
  return (_req, res) => {
    const head = gzipSync(Buffer.from(BOMB_HEAD));
    const members = Math.ceil(decodedBytes / (64 * 1024 * 1024));
    let i = -1;
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    stream(res, sent, () => (++i === 0 ? head : i <= members ? bombMember() : undefined));
  };
}

/** The wire size and decoded size of gzipBomb(decodedBytes). */
export function bombSizes(decodedBytes = 2.5 * 1024 ** 3): { wire: number; decoded: number } {
  const members = Math.ceil(decodedBytes / (64 * 1024 * 1024));
  return { wire: gzipSync(Buffer.from(BOMB_HEAD)).length + members * bombMember().length, decoded: BOMB_HEAD.length + members * 64 * 1024 * 1024 };
}

/**
 * A version list that never ends (a 500 MB one, or worse), valid JSON as far as it goes, sent as fast as the
 * client reads. `contentLength` announces a length (it may be false).
 */
export function endlessVersionList(sent: Sent & { finish(): void }, opts: { contentLength?: number } = {}): HostileHandler {
  return (_req, res) => {
    let first = true;
    res.writeHead(200, { 'content-type': 'application/json', ...(opts.contentLength !== undefined ? { 'content-length': String(opts.contentLength) } : {}) });
    // the same 64 KB of versions over and over: costs this process nothing, so timings measure nuproxy
    stream(res, sent, () => {
      if (!first) return ENDLESS_CHUNK;
      first = false;
      return Buffer.from('{"versions":[');
    });
  };
}

const ENDLESS_CHUNK = Buffer.from(`"1.0.0-endless.${'x'.repeat(40)}",`.repeat(Math.ceil((64 * 1024) / 56)));

/** A version list of exactly `bytes` bytes (valid JSON), optionally gzip-encoded; random versions if `incompressible`. */
export function versionListOfSize(bytes: number, opts: { gzip?: boolean; incompressible?: boolean } = {}): Buffer {
  const head = '{"versions":["1.0.0"';
  const tail = ']}';
  let body = '';
  let i = 0;
  const rand = (): string => randomBytes(16).toString('hex');
  const parts: string[] = [];
  let len = head.length + tail.length;
  for (;;) {
    const v = `,"1.0.${i++}-${opts.incompressible ? rand() : 'pre'}"`;
    if (len + v.length > bytes) break;
    parts.push(v);
    len += v.length;
  }
  body = head + parts.join('') + tail;
  // pad with whitespace to the exact size (whitespace between tokens is valid JSON)
  const doc = Buffer.from(body.slice(0, -tail.length) + ' '.repeat(bytes - len) + tail);
  return opts.gzip ? gzipSync(doc) : doc;
}

/** Answers a fixed body (a document built by the test) with the right headers. */
export function document(body: Buffer | string, opts: { gzip?: boolean; contentLength?: boolean } = {}): HostileHandler {
  return (_req, res) => {
    const b = Buffer.from(body);
    res.writeHead(200, { 'content-type': 'application/json', ...(opts.gzip ? { 'content-encoding': 'gzip' } : {}), ...(opts.contentLength === false ? {} : { 'content-length': String(b.length) }) });
    res.end(b);
  };
}

/** Announces a huge Content-Length (default 10 GB) and then trickles a valid start of a document. */
export function hugeContentLength(sent: Sent & { finish(): void }, length = 10 * 1024 ** 3): HostileHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(length) });
    let first = true;
    stream(res, sent, () => {
      if (!first) return Buffer.from(' '.repeat(64 * 1024));
      first = false;
      return Buffer.from('{"versions":["1.0.0"');
    });
  };
}

/** A version list nested `depth` deep inside its first version ([[[[...]]]]). */
export function deepDocument(depth: number): Buffer {
  return Buffer.from(`{"versions":[${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}]}`);
}

/**
 * A version list that echoes the request's credentials: the whole Authorization header, the value after its
 * scheme, and (escapedPlus) that value with "+" and "/" written as JSON escapes, as System.Text.Json does.
 */
export function echoCredentials(how: 'header' | 'value' | 'escaped'): HostileHandler {
  return (req: IncomingMessage, res: ServerResponse) => {
    const auth = String(req.headers.authorization ?? '');
    const value = auth.replace(/^\S+\s+/, '');
    const echoed = how === 'header' ? auth : how === 'value' ? value : value.replace(/[+/=]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"versions":["1.0.0"],"seen":"${how === 'escaped' ? echoed : JSON.stringify(echoed).slice(1, -1)}"}`);
  };
}

export { tracker };
