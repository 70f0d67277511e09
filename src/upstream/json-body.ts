/**
 * Reads one metadata document from an upstream response, bounded while it streams: an upstream (or anything in
 * front of it) may send a gzip bomb, an endless or 500 MB version list, a document nested 100,000 deep, or an echo
 * of nuproxy's own credentials. Each is refused the moment it shows, the upstream body destroyed (its connection
 * closed), nothing kept: the caller stores nothing, and memory goes back to where it was.
 *
 * - upstreams[].limits.metadataCompressedBytes: the bytes of a gzip/deflate-encoded body as received (an announced
 *   Content-Length over it is refused before reading). An unencoded body is bounded by metadataBytes alone.
 * - upstreams[].limits.metadataBytes: the decoded bytes, counted as they come out of zlib.
 * - upstreams[].limits.jsonDepth: nesting (json-reader.ts, which also parses in slices: no long event-loop block).
 * - a configured secret in the decoded bytes, or in a string once its JSON escapes are undone.
 * - upstreams[].limits.versions: entries of a version list or registration, checked by the caller once the
 *   document is parsed and before any per-entry work (checkEntryCount).
 */
import { pipeline } from 'node:stream/promises';
import { createGunzip, createInflate } from 'node:zlib';
import { NuproxyError } from '../errors.js';
import { safeUrl } from '../log.js';
import { toUpstreamError, type UpstreamResponse } from './http-client.js';
import { JsonDepthError, JsonReader, JsonSyntaxError } from './json-reader.js';
import type { SecretSet } from './secrets.js';
import { discard, header } from './body-util.js';

export interface DocumentLimits {
  metadataBytes: number;
  metadataCompressedBytes: number;
  jsonDepth: number;
  versions: number;
}

export interface DocumentContext {
  upstream: string;
  url: string;
  limits: DocumentLimits;
  secrets: SecretSet;
  /** Told of the bytes as received, before decoding (the metrics' bytes fetched). */
  fetched?: (bytes: number) => void;
}

/** The parsed document (an object or array), or a NuproxyError (502; 504 for a timeout). */
export async function readJsonDocument(res: UpstreamResponse, ctx: DocumentContext): Promise<object> {
  const { upstream, limits } = ctx;
  const details = { upstream, url: safeUrl(ctx.url) };
  // a coding nuproxy did not ask for is read as it is, as NuGet's own client does (servers that send
  // "Content-Encoding: utf-8" exist); if it really was compressed, the document does not parse
  const encoding = (header(res.headers, 'content-encoding') ?? '').trim().toLowerCase();
  const encoded = encoding === 'gzip' || encoding === 'deflate';
  const wireKey = encoded ? 'metadataCompressedBytes' : 'metadataBytes';
  const wireLimit = limits[wireKey];
  const tooLarge = (key: keyof DocumentLimits, what: string): NuproxyError =>
    new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${upstream} sent a metadata document ${what}, over limits.${key} (${formatBytes(limits[key])})`, { ...details, limit: `limits.${key}` });

  const announced = header(res.headers, 'content-length');
  if (announced !== undefined && /^\d+$/.test(announced.trim()) && Number(announced) > wireLimit) {
    discard(res.body);
    throw tooLarge(wireKey, `of ${formatBytes(Number(announced))}${encoded ? ` ${encoding}-encoded` : ''}`);
  }

  const secretFound = (): NuproxyError =>
    new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${upstream} sent a metadata document that contains one of nuproxy's configured secrets (does it echo request headers?)`, details);
  // while it streams: sizes, depth and secrets are checked and the bytes kept, nothing parsed (an attack that is
  // cut at a limit costs at most the limit's bytes, never the objects of a 64 MB parse)
  const scan = new JsonReader({ maxDepth: limits.jsonDepth, scanOnly: true });
  const scanner = ctx.secrets.scanner();
  const chunks: (Buffer | undefined)[] = [];
  let wire = 0;
  let decoded = 0;
  const countWire = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      wire += chunk.length;
      ctx.fetched?.(chunk.length);
      if (wire > wireLimit) throw tooLarge(wireKey, `larger than announced or without a length${encoded ? ` (${encoding}-encoded)` : ''}`);
      yield chunk;
    }
  };
  const consume = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) {
      decoded += chunk.length;
      if (decoded > limits.metadataBytes) throw tooLarge('metadataBytes', `that decodes to more bytes than allowed`);
      if (scanner.push(chunk)) throw secretFound();
      scan.push(chunk);
      keep(chunk);
    }
  };
  // a large body is copied into big blocks (see BLOCK), a small one kept as it came
  let block: Buffer | undefined;
  let used = 0;
  let held = 0;
  const keep = (chunk: Buffer): void => {
    if (!block && held + chunk.length <= AS_RECEIVED_BYTES) {
      chunks.push(chunk);
      held += chunk.length;
      return;
    }
    for (let off = 0; off < chunk.length; ) {
      if (!block || used === block.length) {
        if (block) chunks.push(block);
        block = Buffer.allocUnsafeSlow(BLOCK);
        used = 0;
      }
      const n = chunk.copy(block, used, off);
      used += n;
      off += n;
    }
  };
  try {
    if (encoded) await pipeline(res.body, countWire, encoding === 'gzip' ? createGunzip() : createInflate(), consume);
    // unencoded (most upstreams answer so): two nested loops, no stream.pipeline (its per-call AbortController
    // costs more than reading a small version list); a throw in either returns the body's iterator, which
    // destroys the body (its connection closed) just as pipeline would
    else await consume(countWire(res.body));
    if (block) chunks.push(block.subarray(0, used));
    scan.end();
    // most documents are small: one JSON.parse (a few ms), unless an escape could hide a secret from the byte scan
    if (decoded <= DIRECT_PARSE_BYTES && (ctx.secrets.empty || !scan.sawEscape)) return asDocument(parseWhole(chunks as Buffer[]), ctx);
    // larger ones are parsed in slices, giving the event loop a turn every few milliseconds (a 64 MB document
    // takes about a second of CPU here; health probes and warm hits go on meanwhile)
    const reader = new JsonReader({
      maxDepth: limits.jsonDepth,
      onEscapedString: (s) => {
        if (ctx.secrets.foundIn(s)) throw secretFound();
      },
    });
    let turn = performance.now();
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      chunks[i] = undefined; // the reader lets go of what it has parsed
      for (let off = 0; off < chunk.length; off += STEP) {
        reader.push(chunk.subarray(off, off + STEP));
        if (performance.now() - turn > TURN_MS) {
          await new Promise((r) => setImmediate(r));
          turn = performance.now();
        }
      }
    }
    return asDocument(reader.end(), ctx);
  } catch (err) {
    throw documentError(err, res, ctx, encoding);
  }
}

/**
 * Refuses a document that lists more entries (versions of a version list, leaves or pages of a registration) than
 * limits.versions, before anything is done per entry: no real feed has that many (nuget.org's largest packages
 * have a few thousand versions), and sorting, merging and rewriting them is work that holds the event loop (a
 * 12 MB list of 800,000 versions took seconds), which a parse in slices does not bound.
 */
export function checkEntryCount(count: number, what: string, ctx: { upstream: string; url?: string; limits: Pick<DocumentLimits, 'versions'> }): void {
  if (count <= ctx.limits.versions) return;
  throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${ctx.upstream} sent ${what} of ${count} entries, over limits.versions (${ctx.limits.versions})`, {
    upstream: ctx.upstream,
    ...(ctx.url !== undefined ? { url: safeUrl(ctx.url) } : {}),
    limit: 'limits.versions',
  });
}

/** Longest stretch of parsing between two turns of the event loop, and the bytes handed to the parser at once. */
const TURN_MS = 10;
const STEP = 64 * 1024;
/** Up to this many bytes of a body are kept in the chunks the socket or zlib handed out. */
const AS_RECEIVED_BYTES = 1024 * 1024;
/**
 * Beyond that, bytes are copied into blocks this large, and the chunks let go at once. Thousands of 16-64 KB chunks
 * held at the same time fragment the allocator, which then keeps the memory after they are freed (measured: four
 * 64 MB attacks at once left RSS 100-260 MB up after a full collection). A block over 32 MB is a mapping of its
 * own (glibc maps allocations above its largest mmap threshold): freed, it goes back to the system. Pages never
 * written are never resident.
 */
const BLOCK = 33 * 1024 * 1024;
/** Up to this size a document is parsed by one JSON.parse (about 5 ms per MB here). */
const DIRECT_PARSE_BYTES = 1024 * 1024;

function parseWhole(chunks: Buffer[]): unknown {
  const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new JsonSyntaxError((err as Error).message);
  }
}

function asDocument(json: unknown, ctx: DocumentContext): object {
  if (json === null || typeof json !== 'object') {
    throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${ctx.upstream} sent JSON that is not a document`, { upstream: ctx.upstream, url: safeUrl(ctx.url) });
  }
  return json;
}

function documentError(err: unknown, res: UpstreamResponse, ctx: DocumentContext, encoding: string): NuproxyError {
  if (err instanceof NuproxyError) return err;
  const details = { upstream: ctx.upstream, url: safeUrl(ctx.url) };
  if (err instanceof JsonDepthError) {
    return new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${ctx.upstream} sent a metadata document nested deeper than limits.jsonDepth (${ctx.limits.jsonDepth})`, { ...details, limit: 'limits.jsonDepth' }, err);
  }
  if (err instanceof JsonSyntaxError) {
    const contentType = header(res.headers, 'content-type') ?? 'unknown';
    // a header is the upstream's text: kept free of secrets, then shortened, before it goes into a message
    const asSent = header(res.headers, 'content-encoding') ?? '';
    const coding = encoding === '' || encoding === 'identity' || encoding === 'gzip' || encoding === 'deflate' ? '' : ` (Content-Encoding ${ctx.secrets.redact(asSent).slice(0, 40)}, which nuproxy did not ask for)`;
    return new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${ctx.upstream} sent ${/html/i.test(contentType) ? 'an HTML page' : 'invalid JSON'} instead of a JSON document${coding}`, { ...details, contentType: ctx.secrets.redact(contentType) }, err);
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${ctx.upstream} sent a body that does not decode as ${encoding}`, details, err);
  }
  return toUpstreamError(err, ctx.upstream, ctx.url);
}

/** 67108864 -> "64 MB": limits named in errors as they are written in the config. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (n >= size) return `${Number.isInteger(n / size) ? n / size : (n / size).toFixed(1)} ${unit}`;
  }
  return `${n} bytes`;
}
