import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Feed, DocAnswer } from '../feed/feed.js';
import type { PackageHandle } from '../feed/packages.js';
import type { Logger } from '../log.js';
import { errorResponse, notFound, badRequest } from './errors.js';
import { checkRawPath, parseId, parseVersionParam, rawQueryOf } from './input.js';
import { publicBase, type BaseOptions } from './public-base.js';
import { RenderCache } from './render-cache.js';
import { etagOf, fileStream, parseRange, pipeTo } from './send-file.js';

export interface HttpOptions extends BaseOptions {
  logger: Logger;
  /** Readiness details (metadata store, upstreams); `ready: false` answers 503. */
  readiness: () => { ready: boolean; [k: string]: unknown };
}

type Vars = {
  Variables: { cache?: string; upstream?: string; partial?: string[]; errorCode?: string; error?: unknown; base: string };
  Bindings: HttpBindings;
};

const JSON_TYPE = 'application/json; charset=utf-8';
const HIVE = /^[a-z0-9-]{1,32}$/;
const VULN_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const TAG_JSON = /^([0-9a-f]{16})\.json$/;

/** A request header read straight from Node's request (Hono's c.req.header builds a whole Request first). */
function header(c: Context<Vars>, name: string): string | undefined {
  const incoming = c.env?.incoming;
  if (!incoming) return c.req.header(name);
  const v = incoming.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Headers of a stored file, computed once per file (they never change: the files are immutable). */
const fileHeaderCache = new WeakMap<object, Record<string, string>>();
function fileHeaders(info: Parameters<typeof etagOf>[0]): Record<string, string> {
  let h = fileHeaderCache.get(info);
  if (!h) {
    h = { etag: etagOf(info), 'accept-ranges': 'bytes', 'last-modified': new Date(info.mtimeMs).toUTCString(), 'cache-control': 'public, max-age=31536000, immutable' };
    fileHeaderCache.set(info, h);
  }
  return h;
}

/** Thin routes: validate input, ask the feed, render. Errors become statuses only in errors.ts. */
export function createHttpApp(feed: Feed, opts: HttpOptions): Hono<Vars> {
  const app = new Hono<Vars>();
  const log = opts.logger;
  const renders = new RenderCache(64 * 1024 * 1024);

  app.use('*', async (c, next) => {
    const started = performance.now();
    const outgoing = c.env?.outgoing;
    const done = (): void => {
      const status = outgoing ? outgoing.statusCode : c.res.status;
      const entry = {
        method: c.req.method,
        path: c.req.path,
        status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        cache: c.get('cache'),
        upstream: c.get('upstream'),
        ...(c.get('partial') ? { partial: c.get('partial') } : {}),
        ...(c.get('errorCode') ? { error: c.get('errorCode') } : {}),
      };
      const err = c.get('error');
      if (err) log.error({ ...entry, err }, 'request failed');
      else log.info(entry, 'request');
    };
    try {
      // the raw request target: URL parsing would already have resolved "%2e%2e" and dot segments
      checkRawPath((c.env?.incoming?.url ?? new URL(c.req.url).pathname).split('?')[0]!);
      await next();
    } catch (err) {
      c.res = errorResponse(c, err);
    }
    // answered before the request body was read (a refused or oversize push): the rest of the body is still on
    // the connection, so it must not carry another request
    const incoming = c.env?.incoming;
    if (incoming && !incoming.complete && !outgoing?.headersSent) c.res.headers.set('connection', 'close');
    if (outgoing && !outgoing.writableFinished) outgoing.once('close', done);
    else done();
  });
  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) => errorResponse(c, notFound(`no such resource: ${c.req.path}`)));

  const base = (c: Context<Vars>): string => publicBase(c.req.raw.headers, opts);

  const sendDoc = (c: Context<Vars>, doc: DocAnswer | undefined, what: string): Response => {
    if (!doc) throw notFound(`${what} not found`);
    c.set('cache', doc.outcome);
    const upstreams = doc.upstreams.join(', ');
    if (upstreams) c.set('upstream', upstreams);
    if (doc.partial.length) c.set('partial', doc.partial);
    const accepts = /\bgzip\b/i.test(header(c, 'accept-encoding') ?? '');
    const useGzip = doc.gzip && accepts;
    const r = renders.get(doc.key, doc.version, base(c), () => doc.body, useGzip);
    const headers: Record<string, string> = {
      'content-type': JSON_TYPE,
      etag: r.etag,
      'x-nuproxy-cache': doc.outcome,
      ...(upstreams ? { 'x-nuproxy-upstream': upstreams } : {}),
      // built without these upstreams (they failed): not cached as an answer, and said so
      ...(doc.partial.length ? { 'x-nuproxy-partial': doc.partial.join(', ') } : {}),
      ...(doc.outcome === 'stale' ? { warning: '110 - "Response is Stale"', 'x-nuproxy-stale': 'true' } : {}),
      ...(doc.gzip ? { vary: 'Accept-Encoding' } : {}),
    };
    if (header(c, 'if-none-match') === r.etag) return c.body(null, 304, headers);
    const body = useGzip ? r.gzip! : r.body;
    if (useGzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = String(body.length);
    if (c.req.method === 'HEAD') return c.body(null, 200, headers);
    return c.body(new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.length), 200, headers);
  };

  const sendPackage = (c: Context<Vars>, handle: PackageHandle | undefined, contentType: string): Response => {
    if (!handle) throw notFound('package not found');
    c.set('cache', handle.outcome);
    const head = c.req.method === 'HEAD';
    const common: Record<string, string> = { 'content-type': contentType, 'x-nuproxy-cache': handle.outcome };
    // Bodies go straight to Node's response (no Web stream in between). HEAD answers through Hono, which
    // routes HEAD to GET handlers and drops the body itself.
    const send = (status: number, headers: Record<string, string>, body?: () => Readable, bytes?: Buffer): Response => {
      const res = c.env?.outgoing;
      if (head || (!body && !bytes)) return c.body(null, status as 200, headers);
      if (bytes && res) {
        res.writeHead(status, headers);
        res.end(bytes);
        return RESPONSE_ALREADY_SENT;
      }
      if (!body) return c.body(new Uint8Array(bytes!), status as 200, headers);
      if (!res) return c.body(Readable.toWeb(body()) as ReadableStream<Uint8Array>, status as 200, headers);
      pipeTo(res, status, headers, body());
      return RESPONSE_ALREADY_SENT;
    };
    if (handle.kind === 'file' && handle.upstream) {
      c.set('upstream', handle.upstream);
      common['x-nuproxy-upstream'] = handle.upstream;
    }
    if (handle.kind !== 'file') {
      c.set('upstream', handle.upstream);
      common['x-nuproxy-upstream'] = handle.upstream;
      if (handle.length !== undefined) common['content-length'] = String(handle.length);
      if (handle.kind === 'head' || head) {
        if (handle.kind === 'stream') handle.stream.destroy();
        return send(200, common);
      }
      const stream = handle.stream;
      return send(200, common, () => stream);
    }
    const { info } = handle;
    const fh = fileHeaders(info);
    const etag = fh.etag!;
    Object.assign(common, fh);
    if (header(c, 'if-none-match') === etag) return send(304, common);
    const ifRange = header(c, 'if-range');
    const range = ifRange && ifRange !== etag ? undefined : parseRange(header(c, 'range'), info.size);
    if (range === 'unsatisfiable') return send(416, { ...common, 'content-range': `bytes */${info.size}`, 'content-length': '0' });
    const bytes = handle.bytes;
    if (range) {
      const headers = { ...common, 'content-range': `bytes ${range.start}-${range.end}/${info.size}`, 'content-length': String(range.end - range.start + 1) };
      return bytes ? send(206, headers, undefined, bytes.subarray(range.start, range.end + 1)) : send(206, headers, () => fileStream(info, range));
    }
    return bytes ? send(200, { ...common, 'content-length': String(info.size) }, undefined, bytes) : send(200, { ...common, 'content-length': String(info.size) }, () => fileStream(info));
  };

  app.get('/', (c) => c.json({ name: 'nuproxy', serviceIndex: `${base(c)}v3/index.json` }));
  app.get('/health/live', (c) => c.json({ live: true }));
  app.get('/health/ready', (c) => {
    const r = opts.readiness();
    return c.json(r, r.ready ? 200 : 503);
  });

  app.get('/v3/index.json', async (c) => sendDoc(c, await feed.serviceIndex(), 'service index'));

  app.get('/v3/flat/:id/index.json', async (c) => sendDoc(c, await feed.versions(parseId(c.req.param('id'))), 'package'));

  app.get('/v3/flat/:id/:version/:file', async (c) => {
    const rawId = c.req.param('id');
    const rawVersion = c.req.param('version');
    const file = c.req.param('file').toLowerCase();
    const lid = parseId(rawId);
    const lver = parseVersionParam(rawVersion);
    const method = c.req.method === 'HEAD' ? 'HEAD' : 'GET';
    const nupkgNames = [`${lid}.${lver}.nupkg`, `${rawId}.${rawVersion}.nupkg`.toLowerCase()];
    if (nupkgNames.includes(file)) {
      return sendPackage(c, await feed.openPackage(lid, lver, 'nupkg', method), 'application/octet-stream');
    }
    if (file === `${lid}.nuspec`) return sendPackage(c, await feed.openPackage(lid, lver, 'nuspec', method), 'text/xml; charset=utf-8');
    throw badRequest('file name does not match the package id and version', { file: file.slice(0, 120) });
  });

  const hiveParam = (c: Context<Vars>): string => {
    const hive = c.req.param('hive') ?? '';
    if (!HIVE.test(hive)) throw badRequest('invalid registration hive');
    return hive;
  };

  app.get('/v3/registration/:hive/:id/index.json', async (c) =>
    sendDoc(c, await feed.registrationIndex(hiveParam(c), parseId(c.req.param('id'))), 'registration'),
  );
  app.get('/v3/registration/:hive/:id/page/:lower/:upper', async (c) => {
    const upperFile = c.req.param('upper');
    if (!upperFile.toLowerCase().endsWith('.json')) throw notFound();
    const lower = parseVersionParam(c.req.param('lower'));
    const upper = parseVersionParam(upperFile.slice(0, -5));
    return sendDoc(c, await feed.registrationPage(hiveParam(c), parseId(c.req.param('id')), lower, upper), 'registration page');
  });
  app.get('/v3/registration/:hive/:id/:leaf', async (c) => {
    const leaf = c.req.param('leaf');
    if (!leaf.toLowerCase().endsWith('.json')) throw notFound();
    const lver = parseVersionParam(leaf.slice(0, -5));
    return sendDoc(c, await feed.registrationLeaf(hiveParam(c), parseId(c.req.param('id')), lver), 'registration leaf');
  });

  app.get('/v3/query', async (c) => sendDoc(c, await feed.search(rawQueryOf(c.req.url)), 'search'));
  app.get('/v3/autocomplete', async (c) => sendDoc(c, await feed.autocomplete(rawQueryOf(c.req.url)), 'autocomplete'));

  app.get('/v3/vulnerabilities/index.json', async (c) => sendDoc(c, await feed.vulnerabilities(), 'vulnerability index'));
  app.get('/v3/vulnerabilities/:name/:file', async (c) => {
    const name = c.req.param('name');
    const m = TAG_JSON.exec(c.req.param('file'));
    if (!VULN_NAME.test(name) || !m) throw badRequest('invalid vulnerability page');
    return sendDoc(c, await feed.vulnerabilityPage(name, m[1]!), 'vulnerability page');
  });

  // Publishing (protocol notes §5): the client PUTs to `{PackagePublish}/`, DELETEs and POSTs `{id}/{version}`.
  const publishAnswer = (c: Context<Vars>, a: { status: number; statusText?: string; headers: Record<string, string | string[]>; body: Buffer }): Response => {
    c.set('upstream', feed.writableName ?? '');
    const res = c.env?.outgoing;
    const incoming = c.env?.incoming;
    const headers: Record<string, string | string[]> = { ...a.headers, 'content-length': String(a.body.length) };
    if (incoming && !incoming.complete) headers.connection = 'close';
    if (!res) return new Response(a.body.length ? new Uint8Array(a.body) : null, { status: a.status });
    // written directly: the client prints the upstream's reason phrase (nuget.org puts its messages there)
    if (a.statusText) res.writeHead(a.status, a.statusText.replace(/[^\t\x20-\x7e]/g, ''), headers);
    else res.writeHead(a.status, headers);
    res.end(a.body);
    return RESPONSE_ALREADY_SENT;
  };
  const push = (kind: 'package' | 'symbols') => async (c: Context<Vars>) => {
    const incoming = c.env?.incoming;
    if (!incoming) throw new Error('pushes need the Node server bindings');
    return publishAnswer(c, await feed.publisher.push(kind, incoming.headers, incoming));
  };
  for (const path of ['/v3/package', '/v3/package/']) app.put(path, push('package'));
  for (const path of ['/v3/symbolpackage', '/v3/symbolpackage/']) app.put(path, push('symbols'));
  const deleteOrRelist = (method: 'DELETE' | 'POST') => async (c: Context<Vars>) => {
    const rawId = c.req.param('id') ?? '';
    const rawVersion = c.req.param('version') ?? '';
    parseId(rawId);
    parseVersionParam(rawVersion);
    return publishAnswer(c, await feed.publisher.deleteOrRelist(method, rawId, rawVersion, c.env?.incoming?.headers ?? {}));
  };
  app.delete('/v3/package/:id/:version', deleteOrRelist('DELETE'));
  app.post('/v3/package/:id/:version', deleteOrRelist('POST'));

  app.get('/explain/:id', async (c) => c.json(await feed.explain(parseId(c.req.param('id')))));

  return app;
}
