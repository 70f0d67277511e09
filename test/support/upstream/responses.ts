// Small response model of the test upstream: everything is computed into a buffer first, then sent (or mangled
// by a fault). Metadata responses get a strong content-hash ETag and a Last-Modified.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface Resp {
  status: number;
  headers: Record<string, string>;
  /** Exactly the bytes on the wire (already gzip-compressed when Content-Encoding is gzip). */
  body: Buffer;
  /** For JSON responses: the uncompressed JSON text (used by the invalid-json fault). */
  jsonText?: string;
  /** HTTP reason phrase (default: the standard one). nuget.org puts error messages here; the client prints it. */
  reason?: string;
}

export const BLOB_NOT_FOUND_XML =
  '<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>';

export function strongEtag(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export function notFound(): Resp {
  return {
    status: 404,
    headers: { 'content-type': 'application/xml' },
    body: Buffer.from(BLOB_NOT_FOUND_XML),
  };
}

export function jsonResp(doc: unknown, opts: { lastModified: number; gzip?: boolean; contentType?: string }): Resp {
  const text = JSON.stringify(doc);
  const raw = Buffer.from(text);
  const body = opts.gzip ? gzipSync(raw) : raw;
  const headers: Record<string, string> = {
    'content-type': opts.contentType ?? 'application/json',
    etag: strongEtag(body),
    'last-modified': httpDate(opts.lastModified),
  };
  if (opts.gzip) headers['content-encoding'] = 'gzip';
  return { status: 200, headers, body, jsonText: text };
}

export function bytesResp(body: Buffer, contentType: string, lastModified: number, extra: Record<string, string> = {}): Resp {
  return {
    status: 200,
    headers: { 'content-type': contentType, etag: strongEtag(body), 'last-modified': httpDate(lastModified), ...extra },
    body,
  };
}

function etagMatches(header: string, etag: string): boolean {
  const bare = (t: string): string => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

/** RFC 9110 conditional GET/HEAD: If-None-Match wins over If-Modified-Since. Returns a 304 or undefined. */
export function conditional(
  reqHeaders: Record<string, string | string[] | undefined>,
  resp: Resp,
): Resp | undefined {
  if (resp.status !== 200) return undefined;
  const etag = resp.headers.etag;
  const lastModified = resp.headers['last-modified'];
  const inm = reqHeaders['if-none-match'];
  const ims = reqHeaders['if-modified-since'];
  let notModified = false;
  if (typeof inm === 'string' && etag !== undefined) {
    notModified = etagMatches(inm, etag);
  } else if (typeof ims === 'string' && lastModified !== undefined) {
    const since = Date.parse(ims);
    notModified = Number.isFinite(since) && Date.parse(lastModified) <= since;
  }
  if (!notModified) return undefined;
  const headers: Record<string, string> = {};
  if (etag !== undefined) headers.etag = etag;
  if (lastModified !== undefined) headers['last-modified'] = lastModified;
  return { status: 304, headers, body: Buffer.alloc(0) };
}
