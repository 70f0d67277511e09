// Hostile publish endpoints: an upstream (or a proxy in front of it) that echoes the request it was sent, the
// credentials nuproxy adds included, into every part of its answer a client could see: the reason phrase, the
// Content-Type and X-NuGet-Warning headers, and the body. Installed on a hostile upstream started with
// `publish: true`; the service index with SymbolPackagePublish is served at ECHO_INDEX_WITH_SYMBOLS.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { HOSTILE_PATHS, type HostileUpstream } from './server.js';

/** A service index that also advertises SymbolPackagePublish (point an upstream's serviceIndex here). */
export const ECHO_INDEX_WITH_SYMBOLS = '/echo/index.json';
export const ECHO_SYMBOLS_PATH = '/api/v2/symbolpackage';

/** The statuses the echo answers with (a push accepted, a symbol push refused, a delete not found, a relist done). */
export const ECHO_STATUS = { push: 201, symbols: 409, delete: 404, relist: 200 } as const;

function firstHeader(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : (v ?? '');
}

/** The request head as the upstream received it: request line and every header, as raw text. */
function requestHead(req: IncomingMessage): string {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  return lines.join('\r\n');
}

/**
 * The credential headers nuproxy may have added, echoed in a reason phrase or header (no CR/LF in them); a Basic
 * header decoded too, as a feed that says which user and password it refused would.
 */
function credentials(req: IncomingMessage, extraHeader?: string): string {
  const auth = firstHeader(req, 'authorization');
  const parts = [`auth=${auth}`, `key=${firstHeader(req, 'x-nuget-apikey')}`];
  const basic = /^Basic (\S+)$/i.exec(auth);
  if (basic) parts.push(`decoded=${Buffer.from(basic[1]!, 'base64').toString('latin1').replace(/[^\x20-\x7e]/g, '?')}`);
  if (extraHeader) parts.push(`${extraHeader}=${firstHeader(req, extraHeader.toLowerCase())}`);
  return parts.join(' ');
}

export interface EchoOptions {
  /** The name of a custom auth header to echo too (header auth). */
  extraHeader?: string;
  /** Send the body gzip-compressed (Content-Encoding: gzip), though nobody asked for it. */
  gzip?: boolean;
}

function echo(status: number, { extraHeader, gzip }: EchoOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // the whole request is read first, as a real feed does before accepting a push
    req.resume();
    req.on('end', () => {
      const creds = credentials(req, extraHeader);
      const text = JSON.stringify({ echoed: requestHead(req), headers: req.headers, credentials: creds }, null, 1) + `\n${requestHead(req)}\n${creds}\n`;
      const body = gzip ? gzipSync(text) : Buffer.from(text);
      res.writeHead(status, `Echo ${creds}`, {
        'content-type': `application/json; charset=utf-8; echo="${creds.replace(/"/g, '')}"`,
        'x-nuget-warning': `Your request: ${creds}`,
        'content-length': body.length,
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      });
      res.end(body);
    });
  };
}

/** Makes the hostile upstream's publish endpoints (push, symbol push, delete, relist) echo their requests. */
export function installPublishEcho(up: HostileUpstream, opts: EchoOptions = {}): void {
  up.on(ECHO_INDEX_WITH_SYMBOLS, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        version: '3.0.0',
        resources: [
          { '@id': `${up.origin}${HOSTILE_PATHS.flat}`, '@type': 'PackageBaseAddress/3.0.0' },
          { '@id': `${up.origin}${HOSTILE_PATHS.registration}`, '@type': 'RegistrationsBaseUrl/3.6.0' },
          { '@id': `${up.origin}${HOSTILE_PATHS.publish}`, '@type': 'PackagePublish/2.0.0' },
          { '@id': `${up.origin}${ECHO_SYMBOLS_PATH}`, '@type': 'SymbolPackagePublish/4.9.0' },
        ],
      }),
    );
  });
  const push = echo(ECHO_STATUS.push, opts);
  const symbols = echo(ECHO_STATUS.symbols, opts);
  const del = echo(ECHO_STATUS.delete, opts);
  const relist = echo(ECHO_STATUS.relist, opts);
  up.on(new RegExp(`^${HOSTILE_PATHS.publish}/?$`), push);
  up.on(new RegExp(`^${ECHO_SYMBOLS_PATH}/?$`), symbols);
  up.on(new RegExp(`^${HOSTILE_PATHS.publish}/[^/]+/[^/]+$`), (req, res) => (req.method === 'DELETE' ? del : relist)(req, res));
}

/**
 * A service index whose `version` is the Authorization and X-NuGet-ApiKey headers it was fetched with: its
 * text ends up in nuproxy's error message ("service index version … is not 3.x"), so in error bodies and logs.
 */
export function installEchoingServiceIndex(up: HostileUpstream, path: string, extraHeader?: string): void {
  up.on(path, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ version: credentials(req, extraHeader), resources: [] }));
  });
}
