// PackagePublish / SymbolPackagePublish of the test upstream (protocol reference §5, §9.1): push, delete (unlist),
// relist and symbol push, with the API-key, protocol-version and size rules of nuget.org-like feeds.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { compareVersions, parseVersion } from '../../../src/protocol/version.js';
import { readNupkg, type NuspecInfo } from '../nupkg.js';
import type { Resp } from './responses.js';
import type { PackageStore } from './store.js';

export interface PublishOptions {
  /** The key pushes/deletes must carry in X-NuGet-ApiKey; wrong or missing -> 403 with a JSON body {"message": ...}. */
  apiKey: string;
  /** PackagePublish path (default '/api/v2/package', like nuget.org). Symbol pushes are at '/api/v2/symbolpackage'. */
  path?: string;
  /** Also advertise and serve SymbolPackagePublish/4.9.0 (default true). */
  symbols?: boolean;
  /**
   * nuget.org's policy (default false): a push without X-NuGet-Protocol-Version (or, when absent,
   * X-NuGet-Client-Version) >= 4.1.0 gets 400 "A client version '4.1.0' or higher is required ...".
   */
  requireProtocolHeader?: boolean;
  /** When set, successful pushes (package and symbols) answer with `X-NuGet-Warning: <warning>`. */
  warning?: string;
  /** Pushes whose body is larger than this get 413 (default 250 MiB). The excess is read and discarded, never kept. */
  maxBytes?: number;
  /** What DELETE does: 'unlist' (default, like nuget.org: stays in the flat container) or 'delete' (gone entirely). */
  deleteMode?: 'unlist' | 'delete';
}

export interface PushRecord {
  /** Id and version as written in the pushed nuspec. */
  id: string;
  version: string;
  /** Size of the .nupkg / .snupkg (the first multipart part, or the raw body). */
  bytes: number;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * One request to a publish route (push, symbols, delete, relist), recorded as it arrives, whatever becomes of it:
 * refused, unparsable, or cut off before its body ended. `pushes` holds only what was accepted, so "no push
 * recorded" alone cannot tell a proxy that never sent a package from one that sent it whole and had it refused.
 */
export interface PublishAttempt {
  kind: PublishRoute['kind'];
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Body bytes received so far (kept up to date while the body arrives). */
  bytes: number;
  /** 'receiving' until the body ended ('complete') or the connection died before its end ('cut'). */
  body: 'receiving' | 'complete' | 'cut';
  /** The status the test upstream answered with, once it answered ('cut' bodies get none). */
  status?: number;
}

export interface ResolvedPublish {
  readonly apiKey: string;
  /** Without trailing slash, e.g. '/api/v2/package'. */
  readonly path: string;
  readonly symbols: boolean;
  readonly requireProtocolHeader: boolean;
  readonly warning: string | undefined;
  readonly maxBytes: number;
  readonly deleteMode: 'unlist' | 'delete';
}

export const SYMBOL_PUBLISH_PATH = '/api/v2/symbolpackage';
export const DEFAULT_PUBLISH_PATH = '/api/v2/package';
export const MIN_PROTOCOL_VERSION = '4.1.0';
export const PROTOCOL_VERSION_MESSAGE = `A client version '${MIN_PROTOCOL_VERSION}' or higher is required to be able to push packages`;
export const INVALID_KEY_MESSAGE =
  'The specified API key is invalid, has expired, or does not have permission to access the specified package.';

export function resolvePublish(o: PublishOptions): ResolvedPublish {
  const path = (o.path ?? DEFAULT_PUBLISH_PATH).replace(/\/+$/, '');
  if (!path.startsWith('/') || path === '') throw new Error(`publish.path must start with '/' and not be the root: ${o.path}`);
  return {
    apiKey: o.apiKey,
    path,
    symbols: o.symbols ?? true,
    requireProtocolHeader: o.requireProtocolHeader ?? false,
    warning: o.warning,
    maxBytes: o.maxBytes ?? 250 * 1024 * 1024,
    deleteMode: o.deleteMode ?? 'unlist',
  };
}

export type PublishRoute =
  | { kind: 'push' }
  | { kind: 'symbols' }
  | { kind: 'delete' | 'relist'; id: string; version: string };

/**
 * Which publish route a request is, from its method and decoded pathname (prefix matched case-insensitively, like
 * nuget.org's ASP.NET routes), or undefined for everything else (served as a normal feed request).
 */
export function matchPublish(p: ResolvedPublish, method: string, pathname: string): PublishRoute | undefined {
  const lower = pathname.toLowerCase();
  const base = p.path.toLowerCase();
  if (method === 'PUT') {
    if (lower === base || lower === `${base}/`) return { kind: 'push' };
    if (p.symbols && (lower === SYMBOL_PUBLISH_PATH || lower === `${SYMBOL_PUBLISH_PATH}/`)) return { kind: 'symbols' };
    return undefined;
  }
  if (method !== 'DELETE' && method !== 'POST') return undefined;
  if (!lower.startsWith(`${base}/`)) return undefined;
  const parts = pathname.slice(base.length + 1).replace(/\/$/, '').split('/');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return undefined;
  return { kind: method === 'DELETE' ? 'delete' : 'relist', id: parts[0]!, version: parts[1]! };
}

export interface ReadBody {
  /** The body, or empty when it was too large. */
  body: Buffer;
  /** Bytes received in total. */
  bytes: number;
  tooLarge: boolean;
}

/** Reads a request body (chunked or Content-Length) into memory, keeping at most `maxBytes`; `onBytes` sees the running total. */
export function readBody(req: IncomingMessage, maxBytes: number, onBytes?: (bytes: number) => void): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      onBytes?.(bytes);
      if (tooLarge) return;
      if (bytes > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => resolve({ body: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), bytes, tooLarge }));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('request body aborted'));
    });
  });
}

/** The boundary parameter of a multipart Content-Type (quoted or not), or undefined when not multipart. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const m = /^\s*multipart\/[\w.+-]+\s*;(.*)$/is.exec(contentType);
  if (!m) return undefined;
  const b = /(?:^|;)\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(m[1]!);
  return b ? (b[1] ?? b[2]) : undefined;
}

/** Bytes of the first part of a multipart body, or undefined when the body is not well-formed multipart. */
export function firstMultipartPart(body: Buffer, boundary: string): Buffer | undefined {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  let start: number;
  if (body.subarray(0, delim.length).equals(delim)) start = 0;
  else {
    const i = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]));
    if (i < 0) return undefined;
    start = i + 2;
  }
  const afterDelim = start + delim.length;
  if (body.subarray(afterDelim, afterDelim + 2).toString('latin1') === '--') return undefined; // no parts at all
  const eol = body.indexOf('\r\n', afterDelim);
  if (eol < 0) return undefined;
  const headersEnd = body.indexOf('\r\n\r\n', eol);
  if (headersEnd < 0) return undefined;
  const contentStart = headersEnd + 4;
  const end = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), contentStart);
  if (end < 0) return undefined;
  return body.subarray(contentStart, end);
}

/** The package inside a push body: the first multipart part, or the whole body when it is not multipart. */
export function packageFromBody(contentType: string | undefined, body: Buffer): Buffer | undefined {
  const boundary = multipartBoundary(contentType);
  return boundary === undefined ? body : firstMultipartPart(body, boundary);
}

/** ASCII-only reason phrase (node rejects control characters in a status message). */
function reasonPhrase(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

export function messageResp(status: number, message: string, extra: Record<string, string> = {}): Resp {
  return {
    status,
    reason: reasonPhrase(message),
    headers: { 'content-type': 'application/json; charset=utf-8', ...extra },
    body: Buffer.from(JSON.stringify({ message })),
  };
}

function emptyResp(status: number, extra: Record<string, string> = {}): Resp {
  return { status, headers: { ...extra }, body: Buffer.alloc(0) };
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** nuget.org's RequireMinProtocolVersionForPushPolicy: X-NuGet-Protocol-Version, else X-NuGet-Client-Version. */
export function protocolVersionOk(h: IncomingHttpHeaders): boolean {
  const raw = header(h, 'x-nuget-protocol-version') ?? header(h, 'x-nuget-client-version');
  const v = raw === undefined ? undefined : parseVersion(raw.trim());
  const min = parseVersion(MIN_PROTOCOL_VERSION)!;
  return v !== undefined && compareVersions(v, min) >= 0;
}

export interface PublishState {
  readonly store: PackageStore;
  readonly opts: ResolvedPublish;
  readonly pushes: PushRecord[];
  readonly symbolPushes: PushRecord[];
}

function readPackage(
  req: { headers: IncomingHttpHeaders },
  body: Buffer,
): { bytes: Buffer; info: NuspecInfo } | { error: Resp } {
  const bytes = packageFromBody(header(req.headers, 'content-type'), body);
  if (bytes === undefined || bytes.length === 0) return { error: messageResp(400, 'The request body is not a package (malformed multipart or empty).') };
  try {
    const info = readNupkg(bytes);
    if (parseVersion(info.version) === undefined) return { error: messageResp(400, `The package version '${info.version}' is invalid.`) };
    return { bytes, info };
  } catch (err) {
    return { error: messageResp(400, `The package is invalid: ${(err as Error).message}`) };
  }
}

/** Serves one publish request whose body has been read. Mutates the store only on success. */
export function servePublish(state: PublishState, route: PublishRoute, req: { headers: IncomingHttpHeaders }, body: ReadBody): Resp {
  const { opts, store } = state;
  if (header(req.headers, 'x-nuget-apikey') !== opts.apiKey) return messageResp(403, INVALID_KEY_MESSAGE);
  const warning: Record<string, string> = opts.warning !== undefined ? { 'x-nuget-warning': opts.warning } : {};
  const record = (info: NuspecInfo, bytes: Buffer): PushRecord => ({
    id: info.id,
    version: info.version,
    bytes: bytes.length,
    headers: { ...req.headers },
  });

  switch (route.kind) {
    case 'push': {
      if (opts.requireProtocolHeader && !protocolVersionOk(req.headers)) return messageResp(400, PROTOCOL_VERSION_MESSAGE);
      if (body.tooLarge) return messageResp(413, `The package is too large (${body.bytes} bytes; the limit is ${opts.maxBytes}).`);
      const pkg = readPackage(req, body.body);
      if ('error' in pkg) return pkg.error;
      if (store.find(pkg.info.id, pkg.info.version)) {
        return messageResp(409, `A package with ID '${pkg.info.id}' and version '${pkg.info.version}' already exists and cannot be modified.`);
      }
      try {
        store.add(Buffer.from(pkg.bytes)); // a copy: do not pin the whole request body
      } catch (err) {
        return messageResp(400, `The package is invalid: ${(err as Error).message}`);
      }
      state.pushes.push(record(pkg.info, pkg.bytes));
      return emptyResp(201, warning);
    }
    case 'symbols': {
      if (body.tooLarge) return messageResp(413, `The symbol package is too large (${body.bytes} bytes; the limit is ${opts.maxBytes}).`);
      const pkg = readPackage(req, body.body);
      if ('error' in pkg) return pkg.error;
      if (!store.find(pkg.info.id, pkg.info.version)) {
        return messageResp(404, `The package with ID '${pkg.info.id}' and version '${pkg.info.version}' does not exist; push it before its symbols.`);
      }
      state.symbolPushes.push(record(pkg.info, pkg.bytes));
      return emptyResp(201, warning);
    }
    case 'delete':
    case 'relist': {
      const entry = store.find(route.id, route.version);
      if (!entry) return messageResp(404, `A package with id '${route.id}' and version '${route.version}' does not exist.`);
      if (route.kind === 'relist') {
        store.setListed(entry.id, entry.normalized, true);
        return emptyResp(200);
      }
      if (opts.deleteMode === 'delete') store.remove(entry.id, entry.normalized);
      else store.setListed(entry.id, entry.normalized, false);
      return emptyResp(204);
    }
  }
}
