// A real HTTP NuGet V3 feed for integration / e2e tests, serving .nupkg files the way nuget.org does
// (see test/support/upstream/* for the documents). Real sockets on 127.0.0.1, no mocks.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sendResp, sendWithFault, type Fault } from './upstream/faults.js';
import { route, type VulnerabilityData } from './upstream/feed.js';
import {
  matchPublish,
  readBody,
  resolvePublish,
  servePublish,
  SYMBOL_PUBLISH_PATH,
  type PublishAttempt,
  type PublishOptions,
  type PublishRoute,
  type PushRecord,
  type ReadBody,
} from './upstream/publish.js';
import { conditional, notFound, type Resp } from './upstream/responses.js';
import { PackageStore } from './upstream/store.js';
import type { LeafMeta } from './upstream/registration.js';
import { lowerNormalizedVersion } from '../../src/protocol/version.js';

export type { Fault } from './upstream/faults.js';
export type { LeafMeta } from './upstream/registration.js';
export type { PublishAttempt, PublishOptions, PushRecord } from './upstream/publish.js';
export { INVALID_KEY_MESSAGE, PROTOCOL_VERSION_MESSAGE, SYMBOL_PUBLISH_PATH } from './upstream/publish.js';
export { BLOB_NOT_FOUND_XML } from './upstream/responses.js';

export type UpstreamAuth =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string }
  | { kind: 'header'; name: string; value: string };

export interface TestUpstreamOptions {
  /** .nupkg bytes. */
  packages?: Uint8Array[];
  /** Folders scanned recursively for *.nupkg (not *.symbols.nupkg / *.snupkg); global-packages layout works. */
  packageDirs?: string[];
  /** 'Id@version' entries that are unlisted (case-insensitive, any version spelling). */
  unlisted?: string[];
  auth?: UpstreamAuth;
  /** Registration pages are inlined while a package has <= this many versions (default 127, like nuget.org). */
  inlineThreshold?: number;
  /** Leaves per registration page (default 64). */
  pageSize?: number;
  /** False: a flat-only feed (static or file server): the index names no search or autocomplete (default true). */
  search?: boolean;
  /** Keyed by lowercase id; when present the index advertises VulnerabilityInfo/6.7.0. */
  vulnerabilities?: VulnerabilityData;
  /**
   * Enables publishing: the index advertises PackagePublish/2.0.0 (and SymbolPackagePublish/4.9.0 unless
   * symbols: false), and PUT {path}[/], DELETE/POST {path}/{ID}/{VERSION}, PUT /api/v2/symbolpackage[/] are served.
   * Faults apply to these routes too: a 'status' fault answers without touching the store, the others apply the
   * push/delete and then mangle or delay the response (so a retried push after a reset gets 409, like nuget.org).
   */
  publish?: PublishOptions;
  /**
   * What registration leaves say beyond the nuspec, by "Id@version" (any case, any version spelling): a published
   * date (else 2024-01-01), licenseExpression / licenseUrl, advisories (supply-chain policy tests, issue #16).
   */
  leafMeta?: Record<string, LeafMeta>;
}

export interface RecordedRequest {
  method: string;
  /** Path with query, as sent. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface TestUpstream {
  readonly origin: string;
  readonly serviceIndexUrl: string;
  readonly requests: RecordedRequest[];
  /** Requests whose path (without query) equals the string, or matches the RegExp (tried on the path without and with query). */
  hits(match: string | RegExp): number;
  resetHits(): void;
  addPackage(bytes: Uint8Array, opts?: { listed?: boolean }): { lowerId: string; lowerVersion: string };
  setListed(id: string, version: string, listed: boolean): void;
  /** Matching paths (without query) get the fault for `times` requests (default: until cleared with undefined). */
  setFault(match: string | RegExp, fault: Fault | undefined, times?: number): void;
  /** Accepted package pushes (201), in order. */
  readonly pushes: PushRecord[];
  /** Accepted symbol package pushes (201), in order. */
  readonly symbolPushes: PushRecord[];
  /** Every request to a publish route, accepted or not, whole or cut off, in order of arrival. */
  readonly publishAttempts: PublishAttempt[];
  /** Listed state of a package (id and version in any case / spelling), undefined when the feed does not have it. */
  isListed(id: string, version: string): boolean | undefined;
  close(): Promise<void>;
}

type Matcher = string | RegExp;

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function matches(m: Matcher, fullPath: string): boolean {
  const p = pathOnly(fullPath);
  if (typeof m === 'string') return p === m;
  m.lastIndex = 0;
  if (m.test(p)) return true;
  m.lastIndex = 0;
  return p !== fullPath && m.test(fullPath);
}

function sameMatcher(a: Matcher, b: Matcher): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.source === b.source && a.flags === b.flags;
}

function decodedPathname(url: URL): string {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    return url.pathname;
  }
}

function authorized(auth: UpstreamAuth, req: IncomingMessage): boolean {
  const h = req.headers.authorization ?? '';
  switch (auth.kind) {
    case 'basic': {
      const m = /^basic\s+(\S+)$/i.exec(h);
      return m !== null && Buffer.from(m[1]!, 'base64').toString('utf8') === `${auth.username}:${auth.password}`;
    }
    case 'bearer': {
      const m = /^bearer\s+(\S+)$/i.exec(h);
      return m !== null && m[1] === auth.token;
    }
    case 'header':
      return req.headers[auth.name.toLowerCase()] === auth.value;
  }
}

function unauthorized(auth: UpstreamAuth): Resp {
  return {
    status: 401,
    headers: {
      'content-type': 'application/json',
      'www-authenticate': auth.kind === 'bearer' ? 'Bearer realm="test-upstream"' : 'Basic realm="test-upstream"',
    },
    body: Buffer.from(JSON.stringify({ error: 'unauthorized', message: 'Credentials are required.' })),
  };
}

function leafMetaMap(meta: Record<string, LeafMeta> | undefined): Map<string, LeafMeta> | undefined {
  if (!meta) return undefined;
  const out = new Map<string, LeafMeta>();
  for (const [key, m] of Object.entries(meta)) {
    const at = key.lastIndexOf('@');
    const version = lowerNormalizedVersion(key.slice(at + 1));
    if (at <= 0 || !version) throw new Error(`leafMeta key ${key}: not "Id@version"`);
    out.set(`${key.slice(0, at).toLowerCase()}@${version}`, m);
  }
  return out;
}

export async function startTestUpstream(opts: TestUpstreamOptions = {}): Promise<TestUpstream> {
  const store = new PackageStore(opts.unlisted ?? []);
  for (const dir of opts.packageDirs ?? []) store.addDir(dir);
  for (const bytes of opts.packages ?? []) store.add(bytes);

  const requests: RecordedRequest[] = [];
  const publish = opts.publish ? resolvePublish(opts.publish) : undefined;
  const pushes: PushRecord[] = [];
  const symbolPushes: PushRecord[] = [];
  const publishAttempts: PublishAttempt[] = [];
  const faults: { match: Matcher; fault: Fault; remaining: number }[] = [];
  const sockets = new Set<Socket>();
  const closing = new AbortController();

  const takeFault = (fullPath: string): Fault | undefined => {
    for (let i = faults.length - 1; i >= 0; i--) {
      const f = faults[i]!;
      if (!matches(f.match, fullPath)) continue;
      if (--f.remaining <= 0) faults.splice(i, 1);
      return f.fault;
    }
    return undefined;
  };

  const serve = (req: IncomingMessage): Resp => {
    if (opts.auth && !authorized(opts.auth, req)) return unauthorized(opts.auth);
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const r = route(ctx, decodedPathname(url), url.searchParams);
    return conditional(req.headers, r) ?? r;
  };

  const servePublished = (req: IncomingMessage, pub: PublishRoute, body: ReadBody): Resp => {
    if (opts.auth && !authorized(opts.auth, req)) return unauthorized(opts.auth);
    return servePublish({ store, opts: publish!, pushes, symbolPushes }, pub, req, body);
  };

  const respond = (req: IncomingMessage, res: ServerResponse, fault: Fault | undefined, real: () => Resp): void => {
    if (!fault) {
      sendResp(req, res, real());
      return;
    }
    const ac = new AbortController();
    const abort = (): void => ac.abort();
    res.once('close', abort);
    closing.signal.addEventListener('abort', abort, { once: true });
    sendWithFault(req, res, fault, real, ac.signal)
      .catch(() => res.destroy())
      .finally(() => closing.signal.removeEventListener('abort', abort));
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const fullPath = req.url ?? '/';
    requests.push({ method: req.method ?? 'GET', path: fullPath, headers: { ...req.headers } });
    const fault = takeFault(fullPath);
    const pub = publish
      ? matchPublish(publish, req.method ?? 'GET', decodedPathname(new URL(fullPath, 'http://127.0.0.1')))
      : undefined;
    if (!pub) {
      // Drain any request body; only publish routes need it.
      req.resume();
      respond(req, res, fault, () => serve(req));
      return;
    }
    const attempt: PublishAttempt = { kind: pub.kind, method: req.method ?? 'GET', path: fullPath, headers: { ...req.headers }, bytes: 0, body: 'receiving' };
    publishAttempts.push(attempt);
    readBody(req, publish!.maxBytes, (n) => (attempt.bytes = n)).then(
      (body) => {
        attempt.body = 'complete';
        respond(req, res, fault, () => {
          const r = servePublished(req, pub, body);
          attempt.status = r.status;
          return r;
        });
      },
      () => {
        attempt.body = 'cut';
        res.destroy();
      },
    );
  };

  const server = createServer({ keepAliveTimeout: 10_000 }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ctx = {
    origin,
    store,
    inlineThreshold: opts.inlineThreshold ?? 127,
    pageSize: opts.pageSize ?? 64,
    leafMeta: leafMetaMap(opts.leafMeta),
    vulnerabilities: opts.vulnerabilities,
    search: opts.search !== false,
    publish: publish ? { path: publish.path, symbolsPath: publish.symbols ? SYMBOL_PUBLISH_PATH : undefined } : undefined,
  };

  return {
    origin,
    serviceIndexUrl: `${origin}/v3/index.json`,
    requests,
    hits: (match) => requests.filter((r) => matches(match, r.path)).length,
    resetHits: () => {
      requests.length = 0;
    },
    addPackage: (bytes, o) => {
      const e = store.add(bytes, o?.listed);
      return { lowerId: e.lowerId, lowerVersion: e.lowerVersion };
    },
    setListed: (id, version, listed) => store.setListed(id, version, listed),
    setFault: (match, fault, times) => {
      const i = faults.findIndex((f) => sameMatcher(f.match, match));
      if (i >= 0) faults.splice(i, 1);
      if (fault) faults.push({ match, fault, remaining: times ?? Number.POSITIVE_INFINITY });
    },
    pushes,
    symbolPushes,
    publishAttempts,
    isListed: (id, version) => store.find(id, version)?.listed,
    close: async () => {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
