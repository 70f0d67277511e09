import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono, type Context } from 'hono';
import { getRequestListener, RequestError, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Feed } from '../feed/feed.js';
import type { Logger, Redactor } from '../log.js';
import { badRequest, errorPayload, errorResponse, notFound } from './errors.js';
import { checkRawPath, parseId, parseVersionParam } from './input.js';
import { publicBase, type BaseOptions } from './public-base.js';
import { createReadRoutes } from './read-routes.js';
import { logRequest, logWhenDone, outcomeOf, recordRequest, writeError, type Exchange } from './respond.js';
import { withoutSecrets } from './redact.js';
import type { IdTally } from './id-tally.js';
import { NuproxyError } from '../errors.js';
import { noMetrics, type Metrics, type RequestKind } from '../metrics/metrics.js';
import type { Authenticator } from '../access/authenticator.js';
import type { Permission, Principal } from '../access/principal.js';
import { access, refuseAfterDelay } from './access.js';

export interface HttpOptions extends BaseOptions {
  logger: Logger;
  /** The configured secrets: cut out of error bodies and of the JSON answers that quote upstream errors. */
  secrets: Redactor;
  /** The render cache's share of the memory budget (config cache.memoryMaxMB). */
  renderCacheBytes: number;
  /** Readiness details (metadata store, upstreams); `ready: false` answers 503. */
  readiness: () => { ready: boolean; [k: string]: unknown };
  /** Where each request's figures go (none without). */
  metrics?: Metrics;
  /** The figures in Prometheus' text format for GET /metrics (with workers: every worker's); no route without. */
  scrapeMetrics?: () => Promise<{ contentType: string; body: string }>;
  /** Requests and bytes per id, counted by the read routes (the admin summary's top ids). */
  tally?: IdTally;
  /**
   * Route groups the composition root builds and hands in (the admin API under /admin, the dashboard under /ui):
   * framework routes, off the read path; this layer does not know what they are.
   */
  mounts?: { path: string; app: Hono<any> }[];
  /** Access control (access/); undefined: off, nothing is checked. */
  auth?: Authenticator | undefined;
  /** publish.keyMode: in mapped mode a push's X-NuGet-ApiKey is a nuproxy token, in passthrough the upstream's. */
  publishKeyMode?: 'passthrough' | 'mapped';
  /** metrics.access: "token" puts /metrics behind the metrics (or admin) permission. */
  metricsAccess?: 'anonymous' | 'token';
}

/** The metrics' kind of a path the framework answers (not a hot path: a few string tests). */
function frameworkKind(path: string): RequestKind {
  if (path.startsWith('/health/')) return 'health';
  if (path.startsWith('/v3/package') || path.startsWith('/v3/symbolpackage')) return 'publish';
  if (path.startsWith('/explain/')) return 'explain';
  if (path === '/metrics') return 'metrics';
  return 'other';
}

type Vars = {
  Variables: { cache?: string; upstream?: string; partial?: string[]; errorCode?: string; error?: unknown; base: string; principal?: Principal; token?: string };
  Bindings: HttpBindings;
};


/**
 * Node's request listener: the read routes (read-routes.ts) answer on Node's objects directly, everything else
 * (health, publishing, explain) goes through the framework app below. A request target the framework cannot
 * take (a raw backslash, which it would turn into "/", or one it cannot parse at all) is refused here with the
 * JSON 400 and an access line, like every other malformed path: the framework's own answer is an empty 400
 * that nothing logs.
 */
export function createRequestListener(feed: Feed, opts: HttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const read = createReadRoutes(feed, opts);
  const fetch = createHttpApp(feed, opts).fetch;
  const metrics = opts.metrics ?? noMetrics;
  const refuse = (x: Exchange, err: unknown): void => {
    // a body nobody will read stays on the connection: it must not be taken for the next request
    if (x.req.headers['content-length'] !== undefined || x.req.headers['transfer-encoding'] !== undefined) x.res.shouldKeepAlive = false;
    logWhenDone(opts.logger, x, metrics);
    writeError(x, err, opts.secrets);
  };
  return (req, res) => {
    if (read(req, res)) return;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const x: Exchange = { req, res, started: performance.now(), path: q < 0 ? url : url.slice(0, q), kind: 'other', bytesSent: 0, id: undefined };
    try {
      // the raw request target: URL parsing would already have resolved "%2e%2e", dot segments and "\\"
      checkRawPath(x.path);
    } catch (err) {
      return refuse(x, err);
    }
    const framework = getRequestListener(fetch, {
      // the framework could not make a request of it (an unparsable target or Host): answered and logged here
      errorHandler: (err) => void refuse(x, err instanceof RequestError ? badRequest(`malformed request: ${err.message}`) : err),
    });
    void framework(req, res);
  };
}

/** Thin routes: validate input, ask the feed, render. Errors become statuses only in errors.ts. */
export function createHttpApp(feed: Feed, opts: HttpOptions): Hono<Vars> {
  const app = new Hono<Vars>();
  const log = opts.logger;
  const secrets = opts.secrets;
  const metrics = opts.metrics ?? noMetrics;

  app.use('*', async (c, next) => {
    const started = performance.now();
    const outgoing = c.env?.outgoing;
    const done = (): void => {
      const path = c.req.path;
      // closed before it was finished: the client went away (the body's size is not counted here)
      const outcome = outgoing ? outcomeOf(outgoing) : { status: c.res.status, aborted: false };
      const cache = c.get('cache');
      const ms = logRequest(log, {
        method: c.req.method,
        path,
        ...outcome,
        started,
        cache,
        upstream: c.get('upstream'),
        partial: c.get('partial'),
        errorCode: c.get('errorCode'),
        error: c.get('error'),
        token: c.get('token'),
      });
      recordRequest(metrics, frameworkKind(path), outcome.status, ms, 0, cache);
    };
    // logged once the response is over, sent or cut off; listened for from the start, since a client may leave
    // while the upstream is still being asked (its response would then look finished when it is ended)
    if (outgoing) outgoing.once('close', done);
    try {
      // (the raw request target was checked by createRequestListener, before the framework parsed it)
      await next();
    } catch (err) {
      c.res = errorResponse(c, err, secrets);
    }
    // answered before the request body was read (a refused or oversize push): the rest of the body is still on
    // the connection, so it must not carry another request
    const incoming = c.env?.incoming;
    if (incoming && !incoming.complete && !outgoing?.headersSent) c.res.headers.set('connection', 'close');
    if (!outgoing) done();
  });
  app.onError((err, c) => errorResponse(c, err, secrets));
  app.notFound((c) => errorResponse(c, notFound(`no such resource: ${c.req.path}`), secrets));

  const base = (c: Context<Vars>): string => publicBase((name) => c.req.header(name), opts);

  // Access control on the framework's routes (the read routes check their own): who asks, and whether they may.
  const auth = opts.auth;
  const needs = (need: Permission, apiKeyIsOurs = true) => async (c: Context<Vars>, next: () => Promise<void>) => {
    const incoming = c.env?.incoming;
    if (auth && incoming) {
      const a = access(auth, incoming, need, { apiKeyIsOurs });
      if ('refuse' in a) {
        // a known token without the permission: its refused push (or admin action) is logged under its name
        if (a.who) c.set('token', a.who.name);
        return refuseAfterDelay(a);
      }
      c.set('principal', a.principal);
      if (!a.principal.anonymous) c.set('token', a.principal.name);
    }
    await next();
  };

  app.get('/', (c) => c.json({ name: 'nuproxy', serviceIndex: `${base(c)}v3/index.json` }));
  app.get('/health/live', (c) => c.json({ live: true }));
  app.get('/health/ready', (c) => {
    // the upstreams' last errors are upstream text
    const r = withoutSecrets(opts.readiness(), secrets);
    return c.json(r, r.ready ? 200 : 503);
  });

  // The figures, in Prometheus' text format: this one route (issue #15 puts its own access setting here).
  const scrape = opts.scrapeMetrics;
  if (scrape) {
    const guard = opts.metricsAccess === 'token' ? needs('metrics') : async (_c: Context<Vars>, next: () => Promise<void>) => next();
    app.get('/metrics', guard, async (c) => {
      let m;
      try {
        m = await scrape();
      } catch (err) {
        throw new NuproxyError('INTERNAL', `metrics unavailable: ${(err as Error).message}`, {}, err);
      }
      return c.body(m.body, 200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
    });
  }

  // Publishing (protocol notes §5): the client PUTs to `{PackagePublish}/`, DELETEs and POSTs `{id}/{version}`.
  const publishAnswer = (c: Context<Vars>, a: { status: number; statusText?: string; headers: Record<string, string | string[]>; body: Buffer }): Response => {
    c.set('upstream', feed.writableName ?? '');
    const res = c.env?.outgoing;
    const incoming = c.env?.incoming;
    const headers: Record<string, string | string[]> = { ...a.headers, 'content-length': String(a.body.length) };
    if (incoming && !incoming.complete) headers.connection = 'close';
    if (!res) return new Response(a.body.length ? new Uint8Array(a.body) : null, { status: a.status });
    // written directly: the client prints the upstream's reason phrase (nuget.org puts its messages there);
    // the publisher has made it printable and cut the secrets out of it
    if (a.statusText) res.writeHead(a.status, a.statusText, headers);
    else res.writeHead(a.status, headers);
    res.end(a.body);
    return RESPONSE_ALREADY_SENT;
  };
  // in passthrough mode the X-NuGet-ApiKey is the upstream's (relayed as is): only Basic or Bearer names the token
  const pusher = needs('push', opts.publishKeyMode === 'mapped');
  /**
   * A publish route behind the push check. nuproxy's own refusal (401, 403, 400, 413, …) says why in its reason
   * phrase too, like the upstreams' refusals relayed: `dotnet nuget push` prints only that ("… 403 (<reason>)"),
   * never the JSON body.
   */
  const publishing = (handler: (c: Context<Vars>) => Promise<Response>) => async (c: Context<Vars>): Promise<Response> => {
    let res: Response | undefined;
    try {
      await pusher(c, async () => {
        res = await handler(c);
      });
      return res ?? c.body(null, 500);
    } catch (err) {
      return publishRefusal(c, err);
    }
  };
  const publishRefusal = (c: Context<Vars>, err: unknown): Response => {
    const p = errorPayload(err, secrets);
    c.set('errorCode', p.code);
    if (p.unexpected) c.set('error', err);
    const res = c.env?.outgoing;
    if (!res || res.headersSent) return errorResponse(c, err, secrets);
    const body = Buffer.from(JSON.stringify(p.body));
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length), ...p.headers };
    if (c.env?.incoming && !c.env.incoming.complete) headers.connection = 'close';
    // printable ASCII only; the message is nuproxy's own, with the configured secrets already cut out
    const reason = p.unexpected ? '' : String(p.body.message).replace(/[^\t\x20-\x7e]/g, '').slice(0, 300);
    if (reason) res.writeHead(p.status, reason, headers);
    else res.writeHead(p.status, headers);
    res.end(body);
    return RESPONSE_ALREADY_SENT;
  };
  const push = (kind: 'package' | 'symbols') => async (c: Context<Vars>) => {
    const incoming = c.env?.incoming;
    if (!incoming) throw new Error('pushes need the Node server bindings');
    // a token limited to some ids: the publisher reads the pushed id first and sends nothing upstream outside them
    const scope = c.get('principal')?.scope;
    const allowId = scope ? (lowerId: string) => scope.allows(lowerId) : undefined;
    return publishAnswer(c, await feed.publisher.push(kind, incoming.headers, incoming, allowId));
  };
  for (const path of ['/v3/package', '/v3/package/']) app.put(path, publishing(push('package')));
  for (const path of ['/v3/symbolpackage', '/v3/symbolpackage/']) app.put(path, publishing(push('symbols')));
  const deleteOrRelist = (method: 'DELETE' | 'POST') => async (c: Context<Vars>) => {
    const rawId = c.req.param('id') ?? '';
    const rawVersion = c.req.param('version') ?? '';
    const lid = parseId(rawId);
    parseVersionParam(rawVersion);
    const who = c.get('principal');
    if (who?.scope && !who.scope.allows(lid)) throw new NuproxyError('FORBIDDEN', `token ${who.name} may not publish ${rawId}: it is outside the token's scopes`);
    return publishAnswer(c, await feed.publisher.deleteOrRelist(method, rawId, rawVersion, c.env?.incoming?.headers ?? {}));
  };
  app.delete('/v3/package/:id/:version', publishing(deleteOrRelist('DELETE')));
  app.post('/v3/package/:id/:version', publishing(deleteOrRelist('POST')));

  // quotes each upstream's error message, which is upstream text; an id outside the token's scope: not found
  app.get('/explain/:id', needs('read'), async (c) => {
    const id = parseId(c.req.param('id') ?? '');
    const scope = c.get('principal')?.scope;
    if (scope && !scope.allows(id)) throw notFound('package not found');
    return c.json(withoutSecrets(await feed.explain(id), secrets));
  });

  for (const m of opts.mounts ?? []) app.route(m.path, m.app);

  return app;
}
