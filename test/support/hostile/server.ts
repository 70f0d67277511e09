// A hostile NuGet V3 upstream: a real HTTP server on 127.0.0.1 port 0 whose service index points at itself and
// whose every other answer is whatever a test installs with `on(path, handler)`: bombs, huge or deeply nested
// documents, echoes of the request headers, redirects to other addresses, endless slow bodies, packages with the
// wrong identity. The cases themselves live beside this file (one module per kind of attack); this module only
// serves them and records what was asked.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type HostileHandler = (req: IncomingMessage, res: ServerResponse, ctx: { origin: string; signal: AbortSignal }) => void | Promise<void>;

export interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface HostileUpstream {
  readonly origin: string;
  readonly serviceIndexUrl: string;
  /** Every request, in order (service index included). */
  readonly requests: HostileRequest[];
  /** Requests whose path (without query) matches. */
  hits(match: string | RegExp): number;
  /** Installs the answer for a path (exact, without query) or a pattern; later calls win over earlier ones. */
  on(match: string | RegExp, handler: HostileHandler): void;
  /** Sockets open right now (a test can check that the proxy let go of them). */
  openSockets(): number;
  close(): Promise<void>;
}

/** The resources the service index names, all on this server. */
export const HOSTILE_PATHS = {
  flat: '/v3-flatcontainer/',
  registration: '/v3/registration5-gz-semver2/',
  search: '/query',
  autocomplete: '/autocomplete',
  publish: '/api/v2/package',
} as const;

export interface HostileOptions {
  /** Leave out SearchQueryService/SearchAutocompleteService (a flat-only feed). */
  noSearch?: boolean;
  /** Advertise PackagePublish/2.0.0 at HOSTILE_PATHS.publish. */
  publish?: boolean;
}

export async function startHostileUpstream(opts: HostileOptions = {}): Promise<HostileUpstream> {
  const handlers: { match: string | RegExp; handler: HostileHandler }[] = [];
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  const abort = new AbortController();
  let origin = '';

  const serviceIndex = (): string => {
    const resources: { '@id': string; '@type': string }[] = [
      { '@id': `${origin}${HOSTILE_PATHS.flat}`, '@type': 'PackageBaseAddress/3.0.0' },
      { '@id': `${origin}${HOSTILE_PATHS.registration}`, '@type': 'RegistrationsBaseUrl/3.6.0' },
    ];
    if (!opts.noSearch) {
      resources.push({ '@id': `${origin}${HOSTILE_PATHS.search}`, '@type': 'SearchQueryService/3.5.0' });
      resources.push({ '@id': `${origin}${HOSTILE_PATHS.autocomplete}`, '@type': 'SearchAutocompleteService/3.5.0' });
    }
    if (opts.publish) resources.push({ '@id': `${origin}${HOSTILE_PATHS.publish}`, '@type': 'PackagePublish/2.0.0' });
    return JSON.stringify({ version: '3.0.0', resources });
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    res.on('error', () => undefined);
    if (path === '/v3/index.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(serviceIndex());
      return;
    }
    for (let i = handlers.length - 1; i >= 0; i--) {
      const { match, handler } = handlers[i]!;
      if (typeof match === 'string' ? match === path : match.test(path)) {
        Promise.resolve(handler(req, res, { origin, signal: abort.signal })).catch(() => res.destroy());
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    serviceIndexUrl: `${origin}/v3/index.json`,
    requests,
    hits: (match) => requests.filter((r) => {
      const p = r.path.split('?')[0]!;
      return typeof match === 'string' ? p === match : match.test(p);
    }).length,
    on: (match, handler) => void handlers.push({ match, handler }),
    openSockets: () => sockets.size,
    close: async () => {
      abort.abort();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Resident set size of a process in bytes (Linux /proc), for "memory back to where it was" checks. */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
