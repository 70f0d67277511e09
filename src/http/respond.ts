import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { DocAnswer } from '../feed/feed.js';
import type { PackageHandle, RedirectFile, StoredPackage } from '../feed/packages.js';
import { ACCESS_MSG, rememberFailure, type Logger, type Redactor } from '../log.js';
import { writeAccessLine, type AccessValue } from './access-line.js';
import type { IdTally } from './id-tally.js';
import type { Metrics, RequestKind } from '../metrics/metrics.js';
import { errorPayload, notFound } from './errors.js';
import type { RenderCache } from './render-cache.js';
import { etagOf, parseRange, pipeTo } from './send-file.js';

/**
 * One request answered straight on Node's response objects, and what its log line says about it. Used by the
 * read routes (the hot path of every restore) without any framework in between.
 */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  started: number;
  /** The path without its query string, for the log. */
  path: string;
  /** What was asked for (the metrics' `kind`): set by the route. */
  kind: RequestKind;
  cache?: string | undefined;
  upstream?: string | undefined;
  partial?: string[] | undefined;
  errorCode?: string | undefined;
  /** An unexpected error (logged with its stack at level error). */
  error?: unknown;
  /** Redirect mode: where the package answer sent the client, without the query string (its signature). */
  redirect?: string | undefined;
  /**
   * Body bytes handed to the connection so far (counted by the senders below), for the log line of a response
   * that closed before it was finished.
   */
  bytesSent: number;
  /** The package id a flat-container request is about (the admin summary's per-id tally counts it). */
  id?: string | undefined;
  /** The access token's name (never its value); undefined for an anonymous request. */
  token?: string | undefined;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  started: number;
  cache?: string | undefined;
  upstream?: string | undefined;
  partial?: string[] | undefined;
  errorCode?: string | undefined;
  error?: unknown;
  /** A package answered with a redirect to the store: its target URL without the query string. */
  redirect?: string | undefined;
  /** The response closed before it was finished (the client went away, or nuproxy cut it after a failed check). */
  aborted?: boolean;
  /** With `aborted`: the body bytes handed to the connection before it closed, when the sender counted them. */
  bytesSent?: number | undefined;
  /** The access token's name, never its value. */
  token?: string | undefined;
}

/**
 * The one access-log line per request (both the read routes and the framework routes write it). A response cut
 * off says so (`aborted: true`, `bytesSent`): its status alone (200) would claim a complete answer. Returns the
 * request's duration in ms (the metrics take it from here: one clock read per request).
 */
export function logRequest(log: Logger, e: RequestLogEntry): number {
  const ms = performance.now() - e.started;
  const entry: Record<string, unknown> = {
    method: e.method,
    path: e.path,
    status: e.status,
    durationMs: Math.round(ms * 10) / 10,
    cache: e.cache,
    upstream: e.upstream,
  };
  if (e.token !== undefined) entry.principal = e.token; // the token's name ("token" is a redacted field)
  if (e.partial) entry.partial = e.partial;
  if (e.errorCode) entry.error = e.errorCode;
  if (e.redirect) entry.redirect = e.redirect; // never the signed query: the line counts and names redirects
  if (e.aborted) {
    entry.aborted = true;
    if (e.bytesSent !== undefined) entry.bytesSent = e.bytesSent;
  }
  if (e.error) {
    entry.err = e.error;
    log.error(entry, 'request failed');
  } else {
    // the same line as log.info(entry, ACCESS_MSG), without pino's general path on every request
    if (!writeAccessLine(log, entry as Record<string, AccessValue>, ACCESS_MSG)) log.info(entry, ACCESS_MSG);
    if (e.status >= 500) rememberFailure(log, entry);
  }
  return ms;
}

/** A finished request's figures: its kind, status, duration, bytes, and how it was answered. */
export function recordRequest(metrics: Metrics, kind: RequestKind, status: number, ms: number, bytesSent: number, cache: string | undefined): void {
  metrics.request(kind, status, ms / 1000, bytesSent);
  if (cache !== undefined) metrics.answer(kind, cache);
}

/** What a closed response's log line says about it: its status (499 if it closed before any), cut off or not. */
export function outcomeOf(res: ServerResponse): { status: number; aborted: boolean } {
  const aborted = !res.writableFinished;
  // (nginx's "client closed request": nothing was sent, so no status is true)
  return { status: aborted && !res.headersSent ? 499 : res.statusCode, aborted };
}

/** Logs (and counts) the exchange once its response is over (sent, or cut off). */
export function logWhenDone(log: Logger, x: Exchange, metrics: Metrics, tally?: IdTally): void {
  const done = (): void => {
    const outcome = outcomeOf(x.res);
    const ms = logRequest(log, { method: x.req.method ?? 'GET', ...x, ...outcome });
    recordRequest(metrics, x.kind, outcome.status, ms, x.bytesSent, x.cache);
    if (tally && x.id !== undefined) tally.note(x.id, x.bytesSent);
  };
  if (x.res.writableFinished) done();
  else x.res.once('close', done);
}

/** A request header read straight from Node's request. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The JSON error answer (errors.ts), with the configured secrets cut out of its message. */
export function writeError(x: Exchange, err: unknown, secrets?: Redactor): void {
  const p = errorPayload(err, secrets);
  x.errorCode = p.code;
  if (p.unexpected) x.error = err;
  const { res } = x;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(JSON.stringify(p.body));
  const headers = { 'content-type': JSON_TYPE, 'content-length': String(body.length), ...p.headers };
  if (p.statusText) res.writeHead(p.status, p.statusText, headers);
  else res.writeHead(p.status, headers);
  if (x.req.method === 'HEAD') return void res.end();
  res.end(body);
  x.bytesSent = body.length;
}

/** A stored or merged document, rendered for the request's public base, gzip when the client takes it. */
export function sendDoc(x: Exchange, doc: DocAnswer | undefined, what: string, renders: RenderCache, base: string): void {
  if (!doc) throw notFound(`${what} not found`);
  x.cache = doc.outcome;
  const upstreams = doc.upstreams.length ? doc.upstreams.join(', ') : '';
  if (upstreams) x.upstream = upstreams;
  if (doc.partial.length) x.partial = doc.partial;
  const { req, res } = x;
  const useGzip = doc.gzip && /\bgzip\b/i.test(header(req, 'accept-encoding') ?? '');
  const r = renders.get(doc.key, doc.version, base, () => doc.body, useGzip);
  const headers: Record<string, string> = { 'content-type': JSON_TYPE, etag: r.etag, 'x-nuproxy-cache': doc.outcome };
  if (upstreams) headers['x-nuproxy-upstream'] = upstreams;
  // built without these upstreams (they failed): not cached as an answer, and said so
  if (doc.partial.length) headers['x-nuproxy-partial'] = doc.partial.join(', ');
  if (doc.outcome === 'stale') {
    headers.warning = '110 - "Response is Stale"';
    headers['x-nuproxy-stale'] = 'true';
  }
  if (doc.gzip) headers.vary = 'Accept-Encoding';
  if (doc.warning) headers['x-nuget-warning'] = doc.warning;
  if (header(req, 'if-none-match') === r.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const body = useGzip ? r.gzip! : r.body;
  if (useGzip) headers['content-encoding'] = 'gzip';
  headers['content-length'] = String(body.length);
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return void res.end();
  res.end(body);
  x.bytesSent = body.length;
}

/** Headers of a stored file, computed once per file (they never change: the files are immutable). */
const fileHeaderCache = new WeakMap<object, Record<string, string>>();
function fileHeaders(info: StoredPackage): Record<string, string> {
  let h = fileHeaderCache.get(info);
  if (!h) {
    h = { etag: etagOf(info), 'accept-ranges': 'bytes', 'last-modified': new Date(info.mtimeMs).toUTCString(), 'cache-control': 'public, max-age=31536000, immutable' };
    fileHeaderCache.set(info, h);
  }
  return h;
}

/** A package file: from memory or the store with ETag/Range, or streamed while it is being fetched. */
export function sendPackage(x: Exchange, handle: PackageHandle | undefined, contentType: string): void {
  if (!handle) throw notFound('package not found');
  const { req, res } = x;
  x.cache = handle.outcome;
  const head = req.method === 'HEAD';
  const headers: Record<string, string> = { 'content-type': contentType, 'x-nuproxy-cache': handle.outcome };
  if (handle.upstream) {
    x.upstream = handle.upstream;
    headers['x-nuproxy-upstream'] = handle.upstream;
  }
  const bare = (status: number): void => {
    res.writeHead(status, headers);
    res.end();
  };
  if (handle.kind !== 'file') {
    if (handle.kind === 'redirect') return redirectTo(x, handle, headers);
    if (handle.kind === 'bytes') {
      headers['content-length'] = String(handle.bytes.length);
      if (head) return bare(200);
      res.writeHead(200, headers);
      res.end(handle.bytes);
      x.bytesSent = handle.bytes.length;
      return;
    }
    if (handle.length !== undefined) headers['content-length'] = String(handle.length);
    if (handle.kind === 'head' || head) {
      if (handle.kind === 'stream') handle.stream.destroy();
      return bare(200);
    }
    return pipeTo(res, 200, headers, handle.stream as Readable, x);
  }
  const { info, bytes } = handle;
  const fh = fileHeaders(info);
  Object.assign(headers, fh);
  if (header(req, 'if-none-match') === fh.etag) return bare(304);
  const ifRange = header(req, 'if-range');
  const range = ifRange && ifRange !== fh.etag ? undefined : parseRange(header(req, 'range'), info.size);
  if (range === 'unsatisfiable') {
    headers['content-range'] = `bytes */${info.size}`;
    headers['content-length'] = '0';
    return bare(416);
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : info.size - 1;
  const status = range ? 206 : 200;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
  headers['content-length'] = String(end - start + 1);
  if (head) return bare(status);
  if (bytes) {
    res.writeHead(status, headers);
    res.end(range ? bytes.subarray(start, end + 1) : bytes);
    x.bytesSent = end - start + 1;
    return;
  }
  res.writeHead(status, headers);
  handle.send(res, start, end, x); // the store's own fast path (the disk: descriptors, reused read buffers)
}

/**
 * Redirect mode: a committed package answered `302 Found` to a presigned URL of the store (GET and HEAD alike; a
 * Range goes along to the store, which honours it). Not cacheable: the URL expires. A conditional GET that
 * already has it is still a 304, which costs nobody any bytes.
 */
function redirectTo(x: Exchange, handle: RedirectFile, headers: Record<string, string>): void {
  const fh = fileHeaders(handle.info);
  delete headers['content-type'];
  if (header(x.req, 'if-none-match') === fh.etag) {
    x.res.writeHead(304, Object.assign(headers, fh));
    x.res.end();
    return;
  }
  x.redirect = handle.target;
  headers.location = handle.location;
  headers['cache-control'] = 'no-store';
  headers['content-length'] = '0';
  x.res.writeHead(302, headers);
  x.res.end();
}
