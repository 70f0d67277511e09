// Hostile redirects for the hostile upstream (server.ts): to other addresses and ports, chains of hops, and an
// https feed that redirects to http. The targets are real servers (another hostile upstream on another port, one
// on [::1]) that record what reached them, so a test can show that nuproxy never asked them.
import { execFileSync } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HOSTILE_PATHS, type HostileHandler, type HostileRequest } from './server.js';

/** Answers with a redirect to `location` (absolute, or built from the request's own origin). */
export function redirectTo(location: string | ((origin: string) => string), status = 302): HostileHandler {
  return (_req, res, { origin }) => {
    res.writeHead(status, { location: typeof location === 'string' ? location : location(origin), 'content-length': '0' });
    res.end();
  };
}

/**
 * A chain of redirects on the server's own origin: `/hop/{n}/{rest}` redirects to `/hop/{n-1}/{rest}`, and
 * `/hop/0/{rest}` to `/{rest}`. Install on /^\/hop\//; a request for `/hop/{n}/x` takes n + 1 redirects.
 */
export const hopChain: HostileHandler = (req, res) => {
  const m = /^\/hop\/(\d+)\/(.*)$/.exec((req.url ?? '').split('?')[0]!);
  if (!m) {
    res.writeHead(400).end();
    return;
  }
  const n = Number(m[1]);
  res.writeHead(302, { location: n === 0 ? `/${m[2]}` : `/hop/${n - 1}/${m[2]}`, 'content-length': '0' });
  res.end();
};

/** A marker no real answer contains: found in an answer or in Redis, it proves a redirect target was served. */
export const TARGET_MARKER = '9.9.9-served-by-the-redirect-target';

/** The body a redirect target answers for a version list (with TARGET_MARKER). */
export const TARGET_VERSIONS = JSON.stringify({ versions: ['1.0.0', TARGET_MARKER] });

export interface TlsFeed {
  readonly origin: string;
  readonly serviceIndexUrl: string;
  /** PEM of the feed's self-signed certificate, for NODE_EXTRA_CA_CERTS. */
  readonly caFile: string;
  readonly requests: HostileRequest[];
  on(path: string, handler: (req: IncomingMessage, res: ServerResponse, origin: string) => void): void;
  close(): Promise<void>;
}

/**
 * An https NuGet feed on 127.0.0.1 port 0 with a self-signed certificate made by openssl in `dir`: its service
 * index names its own flat container; other paths answer what `on` installs (404 otherwise).
 */
export async function startTlsFeed(dir: string): Promise<TlsFeed> {
  const key = join(dir, 'feed.key');
  const cert = join(dir, 'feed.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const handlers = new Map<string, (req: IncomingMessage, res: ServerResponse, origin: string) => void>();
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  let origin = '';
  const server = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    if (path === '/v3/index.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: '3.0.0', resources: [{ '@id': `${origin}${HOSTILE_PATHS.flat}`, '@type': 'PackageBaseAddress/3.0.0' }] }));
      return;
    }
    const h = handlers.get(path);
    if (h) return h(req, res, origin);
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    serviceIndexUrl: `${origin}/v3/index.json`,
    caFile: cert,
    requests,
    on: (path, handler) => void handlers.set(path, handler),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface RedirectTarget {
  readonly origin: string;
  /** Every request that reached this target. */
  readonly requests: HostileRequest[];
  /** Answers `body` for `path` (other paths: TARGET_VERSIONS). */
  serve(path: string, body: Uint8Array, contentType?: string): void;
  close(): Promise<void>;
}

/** Where a hostile upstream redirects to: a real http server on `host` (127.0.0.1 or ::1), port 0. */
export async function startTarget(host = '127.0.0.1'): Promise<RedirectTarget> {
  const { createServer } = await import('node:http');
  const requests: HostileRequest[] = [];
  const bodies = new Map<string, { body: Uint8Array; type: string }>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    const b = bodies.get((req.url ?? '/').split('?')[0]!);
    res.writeHead(200, { 'content-type': b?.type ?? 'application/json', 'content-length': String(b ? b.body.length : Buffer.byteLength(TARGET_VERSIONS)) });
    res.end(b ? Buffer.from(b.body) : TARGET_VERSIONS);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    requests,
    serve: (path, body, type = 'application/octet-stream') => void bodies.set(path, { body, type }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
