// Hostile answers for package files (install them on a hostile upstream from ./server.ts with `on(path, handler)`):
// bodies that are not what they claim, packages that carry the request's Authorization value, announced lengths
// far over any limit, endless and slow bodies, packages whose nuspec names another package. Each handler that
// keeps a connection open records when the proxy lets go of it (`Watch`), so a test can wait for that instead of
// sleeping.
import type { ServerResponse } from 'node:http';
import { strToU8, zipSync, type Zippable } from 'fflate';
import { makeNupkg, makeNuspecXml, pseudoRandomBytes, type NupkgSpec } from '../nupkg.js';
import { HOSTILE_PATHS, type HostileHandler } from './server.js';

/** The path of a package file on the hostile upstream (what the proxy asks for `lowerId`/`lowerVersion`). */
export function flatPath(lowerId: string, lowerVersion: string, file: 'nupkg' | 'nuspec' = 'nupkg'): string {
  return `${HOSTILE_PATHS.flat}${lowerId}/${lowerVersion}/${file === 'nupkg' ? `${lowerId}.${lowerVersion}.nupkg` : `${lowerId}.nuspec`}`;
}

/** Pattern of every version list on the hostile upstream (install with `on(VERSION_LISTS, everyIdHas(...))`). */
export const VERSION_LISTS = /^\/v3-flatcontainer\/[^/]+\/index\.json$/;

/** Every id has these versions (so the proxy resolves any package request to this upstream). */
export function everyIdHas(versions: string[]): HostileHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ versions }));
  };
}

/** A whole body with its Content-Length. */
export function serveBytes(bytes: Uint8Array, contentType = 'application/octet-stream'): HostileHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': String(bytes.length) });
    res.end(bytes);
  };
}

/** A package with extra entries stored uncompressed (so their bytes appear as they are in the .nupkg). */
export function nupkgWith(spec: NupkgSpec, stored: Record<string, Uint8Array>): Uint8Array {
  const files: Zippable = { [`${spec.id}.nuspec`]: [strToU8(makeNuspecXml(spec)), { level: 6 }] };
  for (const [name, bytes] of Object.entries(stored)) files[name] = [bytes, { level: 0 }];
  return zipSync(files, { mtime: new Date(2024, 0, 1) });
}

/** Records what happened to the responses a handler keeps open. */
export interface Watch {
  /** Responses begun. */
  started: number;
  /** Of those, how many the other side has closed (the proxy let go of the upstream connection). */
  closed: number;
  /** Body bytes written in all. */
  bytes: number;
}

function watched(res: ServerResponse, w: Watch): void {
  w.started++;
  res.once('close', () => w.closed++);
}

/**
 * A 200 of `size` bytes of text, not a zip, with no HTML content type to give it away. Large on purpose (over
 * the size up to which nuproxy answers only verified packages): only the check of its first bytes can refuse it
 * before nuproxy would start streaming it.
 */
export function notAZip(size: number): HostileHandler {
  const bytes = Buffer.alloc(size, 'this is not a zip archive; ');
  return serveBytes(bytes);
}

/**
 * A package holding the request's Authorization value in a stored entry, after `padBefore` bytes of other
 * stored data. `split`: the body is written in two writes that cut the value in half (the proxy may see the
 * seam inside one chunk or between two).
 */
export function echoAuthorization(spec: NupkgSpec, opts: { padBefore?: number } = {}): HostileHandler {
  return async (req, res) => {
    const auth = String(req.headers.authorization ?? 'none');
    const stored: Record<string, Uint8Array> = {};
    if (opts.padBefore) stored['content/a-pad.bin'] = pseudoRandomBytes(opts.padBefore, 'pad');
    stored['content/z-echo.txt'] = strToU8(`the request said: ${auth}\n`);
    const bytes = Buffer.from(nupkgWith(spec, stored));
    const token = auth.replace(/^\S+\s+/, '');
    const at = bytes.indexOf(token);
    const cut = at >= 0 ? at + Math.floor(token.length / 2) : bytes.length;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
    await new Promise<void>((r) => res.write(bytes.subarray(0, cut), () => r()));
    res.end(bytes.subarray(cut));
  };
}

/** Writes `chunk` again and again as fast as the connection takes it (no Content-Length), until it is closed. */
export function endless(first: Uint8Array, w: Watch, chunk = 64 * 1024): HostileHandler {
  return (_req, res) => {
    watched(res, w);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const filler = Buffer.alloc(chunk, 0x41);
    let open = true;
    res.once('close', () => (open = false));
    const pump = (): void => {
      while (open && res.write(filler)) w.bytes += filler.length;
      if (open) res.once('drain', pump);
    };
    res.write(first);
    pump();
  };
}

/** Announces a Content-Length (say 10 GB), sends the first bytes and then nothing: the connection stays open. */
export function announces(length: number, first: Uint8Array, w: Watch): HostileHandler {
  return (req, res) => {
    watched(res, w);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(length) });
    if (req.method === 'HEAD') res.end();
    else res.write(first);
  };
}

/**
 * A body that never ends and barely moves: `first`, then `bytesPerTick` every `tickMs`, for as long as the
 * connection stays open (an upstream that keeps a download, and its pool slot, busy forever).
 */
export function trickle(first: Uint8Array, w: Watch, bytesPerTick = 16, tickMs = 50): HostileHandler {
  return (_req, res) => {
    watched(res, w);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(first);
    const timer = setInterval(() => {
      res.write(Buffer.alloc(bytesPerTick, 0x42));
      w.bytes += bytesPerTick;
    }, tickMs);
    res.once('close', () => clearInterval(timer));
  };
}

/** A zip's first bytes (a local file header), for bodies that must get past the first-bytes check. */
export const ZIP_START = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00]);

/** A complete, valid package whose nuspec says `id`/`version`, whatever the request was for. */
export function identity(id: string, version: string): HostileHandler {
  return serveBytes(makeNupkg({ id, version, description: `claims to be ${id} ${version}` }));
}

/** A standalone .nuspec that says `id`/`version`, whatever the request was for. */
export function nuspecClaiming(id: string, version: string): HostileHandler {
  return serveBytes(strToU8(makeNuspecXml({ id, version })), 'application/xml');
}
