import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Feed } from '../feed/feed.js';
import type { Logger, Redactor } from '../log.js';
import { badRequest, notFound } from './errors.js';
import { checkRawPath, parseId, parseVersionParam, rawQueryOf } from './input.js';
import { publicBase, type BaseOptions } from './public-base.js';
import { RenderCache } from './render-cache.js';
import { header, logWhenDone, sendDoc, sendPackage, writeError, type Exchange } from './respond.js';
import type { IdTally } from './id-tally.js';
import { noMetrics, type Metrics, type RequestKind } from '../metrics/metrics.js';
import type { Authenticator } from '../access/authenticator.js';
import type { Principal } from '../access/principal.js';
import { access, later } from './access.js';

const HIVE = /^[a-z0-9-]{1,32}$/;
const VULN_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const TAG_JSON = /^([0-9a-f]{16})\.json$/;
/** The 404 of a package nobody serves (respond.ts sendPackage): a scoped token's out-of-scope id gets the same. */
const PACKAGE_NOT_FOUND = 'package not found';
/** On the read routes an X-NuGet-ApiKey can only be a nuproxy token (nothing is relayed upstream from here). */
const API_KEY_IS_OURS = { apiKeyIsOurs: true };

export interface ReadRouteOptions extends BaseOptions {
  logger: Logger;
  /** The configured secrets, cut out of error answers. */
  secrets: Redactor;
  /** The render cache's share of the memory budget (config cache.memoryMaxMB). */
  renderCacheBytes: number;
  /** Where each request's figures go (none without). */
  metrics?: Metrics;
  /** Requests and bytes per id (the admin summary's top ids); none without. */
  tally?: IdTally;
  /**
   * Who may read (access/): every route but the service index needs `read`, and a token's scope hides the ids
   * outside it. Undefined when access control is off (anonymous reads, no tokens): nothing is checked.
   */
  auth?: Authenticator | undefined;
}

/**
 * A route's work: it answers on the exchange (throwing turns into the JSON error answer). `who`: the request's
 * principal when access control is on.
 */
type Handler = (x: Exchange, seg: string[], query: string, who: Principal | undefined) => Promise<void> | void;

/** Whether `who` may not see the id: then the answer is exactly an absent id's. */
const hidden = (who: Principal | undefined, lowerId: string): boolean => who?.scope !== undefined && !who.scope.allows(lowerId);

/**
 * The read routes of the V3 feed (service index, flat container, registration, search, autocomplete,
 * vulnerabilities) on Node's own request and response: these carry every restore, and a framework's request
 * and response objects cost as much per request as everything else together (measured: warm 10 KB package
 * hits 22k req/s through the framework, 37k without it). Returns false for anything it does not route
 * (other methods, other paths): the caller hands those to the framework.
 */
export function createReadRoutes(feed: Feed, opts: ReadRouteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const log = opts.logger;
  const secrets = opts.secrets;
  const metrics = opts.metrics ?? noMetrics;
  const auth = opts.auth;
  const renders = new RenderCache(opts.renderCacheBytes);
  // the public base per Host header (a handful of values: each one is checked once, then reused)
  const bases = new Map<string, string>();
  const baseOf = (req: IncomingMessage): string => {
    if (opts.publicUrl) return publicBase(() => undefined, opts);
    const key = opts.trustForwardedHeaders
      ? `${req.headers.host}\n${req.headers['x-forwarded-proto']}\n${req.headers['x-forwarded-host']}\n${req.headers['x-forwarded-prefix']}`
      : (req.headers.host ?? '');
    let b = bases.get(key);
    if (b === undefined) {
      b = publicBase((name) => header(req, name), opts);
      if (bases.size >= 256) bases.clear();
      bases.set(key, b);
    }
    return b;
  };
  const param = (raw: string): string => (raw.includes('%') ? decodeURIComponent(raw) : raw);
  const hiveOf = (raw: string): string => {
    const hive = param(raw);
    if (!HIVE.test(hive)) throw badRequest('invalid registration hive');
    return hive;
  };

  const flat: Handler = async (x, seg, _q, who) => {
    // seg: ['v3', 'flat', id, 'index.json'] or ['v3', 'flat', id, version, file]
    if (seg.length === 4) {
      if (seg[3] !== 'index.json') throw notFound(`no such resource: ${x.path}`);
      const id = parseId(param(seg[2]!));
      x.id = id;
      return sendDoc(x, hidden(who, id) ? undefined : await feed.versions(id), 'package', renders, baseOf(x.req));
    }
    const rawId = param(seg[2]!);
    const rawVersion = param(seg[3]!);
    const file = param(seg[4]!).toLowerCase();
    const lid = parseId(rawId);
    x.id = lid;
    const lver = parseVersionParam(rawVersion);
    if (hidden(who, lid)) throw notFound(PACKAGE_NOT_FOUND);
    const method = x.req.method === 'HEAD' ? 'HEAD' : 'GET';
    // x.res: a download this client waits for learns when it leaves (and may then be abandoned)
    if (file === `${lid}.${lver}.nupkg` || file === `${rawId}.${rawVersion}.nupkg`.toLowerCase()) {
      return sendPackage(x, await feed.openPackage(lid, lver, 'nupkg', method, x.res), 'application/octet-stream');
    }
    if (file === `${lid}.nuspec`) {
      x.kind = 'nuspec';
      return sendPackage(x, await feed.openPackage(lid, lver, 'nuspec', method, x.res), 'text/xml; charset=utf-8');
    }
    throw badRequest('file name does not match the package id and version', { file: file.slice(0, 120) });
  };

  const registration: Handler = async (x, seg, _q, who) => {
    // ['v3', 'registration', hive, id, 'index.json' | leaf] or [..., 'page', lower, upper]
    const hive = hiveOf(seg[2]!);
    const lid = parseId(param(seg[3]!));
    // out of the token's scope: the answer an absent id gets, after the same input checks
    const shown = !hidden(who, lid);
    if (seg.length === 5 && seg[4] === 'index.json') {
      return sendDoc(x, shown ? await feed.registrationIndex(hive, lid) : undefined, 'registration', renders, baseOf(x.req));
    }
    if (seg.length === 5) {
      const leaf = param(seg[4]!);
      if (!leaf.toLowerCase().endsWith('.json')) throw notFound(`no such resource: ${x.path}`);
      const lver = parseVersionParam(leaf.slice(0, -5));
      return sendDoc(x, shown ? await feed.registrationLeaf(hive, lid, lver) : undefined, 'registration leaf', renders, baseOf(x.req));
    }
    const upperFile = param(seg[6]!);
    if (!upperFile.toLowerCase().endsWith('.json')) throw notFound(`no such resource: ${x.path}`);
    const lower = parseVersionParam(param(seg[5]!));
    const upper = parseVersionParam(upperFile.slice(0, -5));
    return sendDoc(x, shown ? await feed.registrationPage(hive, lid, lower, upper) : undefined, 'registration page', renders, baseOf(x.req));
  };

  const vulnerabilities: Handler = async (x, seg, _q, who) => {
    if (seg.length === 3) {
      if (seg[2] !== 'index.json') throw notFound(`no such resource: ${x.path}`);
      return sendDoc(x, await feed.vulnerabilities(), 'vulnerability index', renders, baseOf(x.req));
    }
    const name = param(seg[2]!);
    const m = TAG_JSON.exec(param(seg[3]!));
    if (!VULN_NAME.test(name) || !m) throw badRequest('invalid vulnerability page');
    return sendDoc(x, await feed.vulnerabilityPage(name, m[1]!, who?.scope), 'vulnerability page', renders, baseOf(x.req));
  };

  /** Which handler answers a path (split on "/", without the leading empty segment), if any. */
  const route = (seg: string[]): Handler | undefined => {
    if (seg[0] !== 'v3') return undefined;
    const n = seg.length;
    switch (seg[1]) {
      case 'index.json':
        return n === 2 ? async (x) => sendDoc(x, await feed.serviceIndex(), 'service index', renders, baseOf(x.req)) : undefined;
      case 'flat':
        return n === 4 || n === 5 ? flat : undefined;
      case 'registration':
        return n === 5 || (n === 7 && seg[4] === 'page') ? registration : undefined;
      case 'query':
        return n === 2 ? async (x, _s, q, who) => sendDoc(x, await feed.search(q, who?.scope), 'search', renders, baseOf(x.req)) : undefined;
      case 'autocomplete':
        return n === 2 ? async (x, _s, q, who) => sendDoc(x, await feed.autocomplete(q, who?.scope), 'autocomplete', renders, baseOf(x.req)) : undefined;
      case 'vulnerabilities':
        return n === 3 || n === 4 ? vulnerabilities : undefined;
      default:
        return undefined;
    }
  };

  /** The metrics' kind of a routed path (a .nuspec is told apart by its handler). */
  const kindOf = (seg: string[]): RequestKind => {
    switch (seg[1]) {
      case 'index.json':
        return 'service_index';
      case 'flat':
        return seg.length === 4 ? 'versions' : 'package';
      case 'registration':
        return 'registration';
      case 'query':
        return 'search';
      case 'autocomplete':
        return 'autocomplete';
      default:
        return 'vulnerabilities';
    }
  };

  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const seg = path.split('/');
    if (seg[0] !== '' || seg.length < 3) return false;
    seg.shift();
    const handler = route(seg);
    if (!handler) return false;
    const x: Exchange = { req, res, started: performance.now(), path, kind: kindOf(seg), bytesSent: 0, id: undefined };
    // a GET that carries a body (nothing here reads one): answer, then close rather than read it all
    if ((req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined) {
      res.shouldKeepAlive = false;
    }
    logWhenDone(log, x, metrics, opts.tally);
    try {
      // the raw request target: URL parsing would already have resolved "%2e%2e" and dot segments
      checkRawPath(path);
      let who: Principal | undefined;
      if (auth) {
        // the service index needs no token: the client discovers the feed, then authenticates where it must
        const a = access(auth, req, x.kind === 'service_index' ? undefined : 'read', API_KEY_IS_OURS);
        if ('refuse' in a) {
          // (a client that left meanwhile is logged as such: nothing is written to it)
          later(a.delayMs, () => void (x.res.destroyed || writeError(x, a.refuse, secrets)));
          return true;
        }
        who = a.principal;
        if (!who.anonymous) x.token = who.name;
      }
      const query = q < 0 ? '' : rawQueryOf(url);
      const p = handler(x, seg, query, who);
      if (p) p.catch((err: unknown) => writeError(x, err, secrets));
    } catch (err) {
      writeError(x, err, secrets);
    }
    return true;
  };
}
