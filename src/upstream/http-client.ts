// (Over 300 lines: the one owner of a request's life upstream: pools, timeouts, retries, circuit,
// redirects and secrets; split, one request would be spread over files.)
import type { LookupFunction } from 'node:net';
import { Agent, buildConnector, errors as undiciErrors, type Dispatcher } from 'undici';
import { NuproxyError } from '../errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { safeUrl, type Logger } from '../log.js';
import type { ResolvedAuth } from '../config/load.js';
import { DEFAULT_REDIRECT_ORIGINS, type UpstreamConfig } from '../config/schema.js';
import type { SecretSet } from './secrets.js';
import { ADDRESS_REFUSED, addressCheckingConnector, RedirectAllowList } from './redirect-policy.js';
import { withPausedEndGuard } from './paused-end-guard.js';
import type { UpstreamFailure, UpstreamMeter } from '../metrics/metrics.js';

export interface UpstreamHttpOptions {
  name: string;
  timeouts: { connect: number; headers: number; body: number };
  retries: number;
  auth?: ResolvedAuth;
  userAgent: string;
  logger: Logger;
  /** Base delay for retry backoff in ms (tests shorten it). */
  retryDelayMs?: number;
  circuit?: { failures: number; cooldownMs: number };
  /** What one response may cost (config upstreams[].limits); defaults from the schema when absent. */
  limits?: UpstreamConfig['limits'];
  /** Origins package downloads may be redirected to (config upstreams[].redirects.allow). */
  redirectAllow?: readonly string[];
  /** Every configured secret: none may leave nuproxy in a body or header. */
  secrets?: SecretSet;
  /** How names of wildcard-allowed redirect targets are resolved (dns.lookup; tests resolve names of their own). */
  lookup?: LookupFunction;
  /** This upstream's figures (requests, failures, latency, bytes fetched); none recorded without it. */
  meter?: UpstreamMeter;
}

/**
 * What a request is for. Metadata and package bytes have their own connection pools (32 slow downloads must not
 * hold up a version list) and their own redirect rules (only package downloads may leave the upstream's origins).
 */
export type RequestKind = 'metadata' | 'package';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string; // after redirects
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const MAX_REDIRECTS = 5;

/**
 * HTTP to ONE upstream feed: two keep-alive undici Agents (metadata, package bytes), timeouts, retries with backoff
 * for idempotent requests, auth, and redirects followed here without carrying credentials to another origin.
 * Requests are only made to origins the upstream's own service index names, plus, for package downloads only,
 * redirect targets allowed by upstreams[].redirects.allow (see redirect-policy.ts), which never get credentials.
 */
export class UpstreamHttp {
  private readonly metadataAgent: Agent;
  private readonly packageAgent: Agent;
  private readonly allowedOrigins = new Set<string>();
  private readonly redirectAllow: RedirectAllowList;
  private readonly log: Logger;
  readonly breaker: CircuitBreaker;

  constructor(private readonly opts: UpstreamHttpOptions) {
    const pool = {
      headersTimeout: opts.timeouts.headers,
      bodyTimeout: opts.timeouts.body,
      keepAliveTimeout: 30_000,
      connections: 32,
    };
    this.redirectAllow = new RedirectAllowList(opts.redirectAllow ?? DEFAULT_REDIRECT_ORIGINS);
    // both pools' sockets carry the guard against undici's crash on a paused body (see paused-end-guard.ts)
    this.metadataAgent = new Agent({
      ...pool,
      connect: withPausedEndGuard(buildConnector({ timeout: opts.timeouts.connect, allowHalfOpen: true, ...(opts.lookup ? { lookup: opts.lookup } : {}) })),
    });
    // package downloads may be redirected off the upstream's origins: those connections check their address
    this.packageAgent = new Agent({
      ...pool,
      connect: withPausedEndGuard(addressCheckingConnector({
        timeout: opts.timeouts.connect,
        ...(opts.lookup ? { lookup: opts.lookup } : {}),
        trusted: (origin) => this.allowedOrigins.has(origin.origin) || this.redirectAllow.match(origin) === 'exact',
      })),
    });
    this.log = opts.logger.child({ upstream: opts.name });
    this.breaker = new CircuitBreaker(opts.name, {
      failures: opts.circuit?.failures ?? 5,
      cooldownMs: opts.circuit?.cooldownMs ?? 30_000,
      onChange: (state, d) => {
        if (state === 'open') this.log.warn({ circuit: state, failures: d.failures, err: d.lastError }, 'upstream circuit opened: not asking it for a while');
        else this.log.info({ circuit: state }, state === 'closed' ? 'upstream circuit closed: upstream answers again' : 'upstream circuit half-open: probing');
      },
    });
  }

  /** The circuit breaker: may this upstream be asked now? (Offline mode builds no client at all.) */
  private admit(): void {
    this.breaker.enter();
  }

  allowOrigin(url: string): void {
    try {
      this.allowedOrigins.add(new URL(url).origin);
    } catch {
      // not a URL: nothing to allow
    }
  }

  isAllowed(url: string): boolean {
    try {
      return this.allowedOrigins.has(new URL(url).origin);
    } catch {
      return false;
    }
  }

  async request(
    url: string,
    init: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; retry?: boolean; kind?: RequestKind } = {},
  ): Promise<UpstreamResponse> {
    if (!this.isAllowed(url)) {
      throw new NuproxyError('UPSTREAM_HOST_NOT_ALLOWED', `upstream ${this.opts.name} referred to a host outside its service index`, {
        upstream: this.opts.name,
        url: safeUrl(url),
      });
    }
    const meter = this.opts.meter;
    const pool = init.kind ?? 'metadata';
    try {
      this.admit();
    } catch (err) {
      meter?.failure(pool, 'circuit_open');
      throw err;
    }
    const started = performance.now();
    try {
      const res = await this.requestWithRetries(url, init);
      meter?.request(pool, res.status, (performance.now() - started) / 1000);
      if (res.status >= 500) {
        meter?.failure(pool, 'status_5xx');
        this.breaker.failure(new Error(`status ${res.status}`));
      } else this.breaker.success();
      return res;
    } catch (err) {
      meter?.failure(pool, failureOf(err));
      this.breaker.failure(err);
      throw err;
    }
  }

  private async requestWithRetries(
    url: string,
    init: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; retry?: boolean; kind?: RequestKind },
  ): Promise<UpstreamResponse> {
    const attempts = init.retry === false ? 1 : this.opts.retries + 1;
    let lastErr: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(backoff(attempt, this.opts.retryDelayMs ?? 200));
      try {
        const res = await this.followRedirects(url, init.method ?? 'GET', init.headers ?? {}, init.kind ?? 'metadata');
        if (RETRYABLE_STATUS.has(res.status) && attempt < attempts - 1) {
          await res.body.dump().catch(() => undefined);
          this.log.debug({ url: safeUrl(url), status: res.status, attempt }, 'retrying upstream request');
          continue;
        }
        return res;
      } catch (err) {
        // a refused redirect is the upstream's answer, not a transient failure: asking again gets it again
        if (err instanceof NuproxyError) throw err;
        lastErr = err;
        if (attempt < attempts - 1) this.log.debug({ url: safeUrl(url), err: (err as Error).message, attempt }, 'retrying upstream request');
      }
    }
    throw toUpstreamError(lastErr, this.opts.name, url);
  }

  /**
   * One non-idempotent request (push, delete, relist): no retries (a retried PUT whose first response was lost
   * would meet 409), no redirects (a streamed body cannot be sent twice). The body streams through; the answer
   * is read whole (it is small: a status message).
   */
  async send(
    url: string,
    init: { method: 'PUT' | 'DELETE' | 'POST'; headers: Record<string, string>; body?: import('node:stream').Readable; timeoutMs: number; signal?: AbortSignal },
  ): Promise<{ status: number; statusText?: string; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    if (!this.isAllowed(url)) {
      throw new NuproxyError('UPSTREAM_HOST_NOT_ALLOWED', `upstream ${this.opts.name} referred to a host outside its service index`, { upstream: this.opts.name, url: safeUrl(url) });
    }
    this.admit();
    const u = new URL(url);
    try {
      // a push is a long transfer like a download: it shares the package pool, never holding up metadata
      const res = await this.packageAgent.request({
        origin: u.origin,
        path: u.pathname + u.search,
        method: init.method,
        // the push's own X-NuGet-ApiKey wins over a read key configured as header auth
        headers: { 'user-agent': this.opts.userAgent, ...this.authHeaders(), ...init.headers },
        body: init.body ?? null,
        headersTimeout: init.timeoutMs,
        bodyTimeout: init.timeoutMs,
        ...(init.signal ? { signal: init.signal } : {}),
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size <= 1024 * 1024) chunks.push(chunk as Buffer);
      }
      // undici reports the reason phrase as statusText (not in its types)
      const statusText = (res as { statusText?: unknown }).statusText;
      if (res.statusCode >= 500) this.breaker.failure(new Error(`status ${res.statusCode}`));
      else this.breaker.success();
      return { status: res.statusCode, ...(typeof statusText === 'string' ? { statusText } : {}), headers: res.headers, body: Buffer.concat(chunks) };
    } catch (err) {
      // aborted by the caller (an oversize push, a client gone): no fault of the upstream's, so not a failure
      if (init.signal?.aborted) this.breaker.abandoned();
      else this.breaker.failure(err);
      throw toUpstreamError(err, this.opts.name, url);
    }
  }

  /**
   * Follows at most MAX_REDIRECTS redirects, never from https to http. Metadata stays on the upstream's own
   * origins; a package download may go to an origin redirects.allow matches. Only the upstream's own origins get
   * its credentials.
   */
  private async followRedirects(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, kind: RequestKind): Promise<UpstreamResponse> {
    const agent = kind === 'package' ? this.packageAgent : this.metadataAgent;
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      const own = this.allowedOrigins.has(current.origin);
      let res: Dispatcher.ResponseData;
      try {
        res = await agent.request({
          origin: current.origin,
          path: current.pathname + current.search,
          method,
          headers: { 'user-agent': this.opts.userAgent, ...headers, ...(own ? this.authHeaders() : {}) },
        });
      } catch (err) {
        if ((err as { code?: unknown }).code === ADDRESS_REFUSED) {
          const target = this.opts.secrets ? this.opts.secrets.redact(current.origin) : current.origin;
          this.log.warn({ url: safeUrl(url), target, address: (err as { address?: unknown }).address }, 'refused a redirect to a loopback, private or link-local address');
          throw this.refused(url, `redirected a package download to ${current.origin}, whose address is loopback, private or link-local (allowed only when that exact origin is in redirects.allow)`);
        }
        throw err;
      }
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump().catch(() => undefined);
        if (hop >= MAX_REDIRECTS) {
          throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.opts.name} redirected more than ${MAX_REDIRECTS} times`, { upstream: this.opts.name, url: safeUrl(url) });
        }
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.opts.name} redirected to an invalid URL`, { upstream: this.opts.name, url: safeUrl(url) });
        }
        if (current.protocol === 'https:' && next.protocol !== 'https:') {
          throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.opts.name} redirected from https to ${next.protocol.replace(/:$/, '')}`, { upstream: this.opts.name, url: safeUrl(url) });
        }
        if (!this.allowedOrigins.has(next.origin)) {
          if (kind === 'metadata') {
            throw this.refused(url, `redirected a metadata request to ${next.origin}, outside its service index (metadata comes from the upstream's own origins only; if the feed moved there, configure its new serviceIndex)`);
          }
          if (this.redirectAllow.match(next) === undefined) throw this.refused(url, `redirected a package download to ${next.origin}, which redirects.allow does not list`);
        }
        current = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url: current.toString() };
    }
  }

  /** The error for a redirect not followed; the target is the upstream's text, so it is kept free of secrets. */
  private refused(url: string, what: string): NuproxyError {
    const message = `upstream ${this.opts.name} ${what}: refused`;
    return new NuproxyError('UPSTREAM_HOST_NOT_ALLOWED', this.opts.secrets ? this.opts.secrets.redact(message) : message, { upstream: this.opts.name, url: safeUrl(url) });
  }

  private authHeaders(): Record<string, string> {
    const a = this.opts.auth;
    if (!a) return {};
    switch (a.type) {
      case 'basic':
        return { authorization: 'Basic ' + Buffer.from(`${a.username}:${a.password}`).toString('base64') };
      case 'bearer':
        return { authorization: `Bearer ${a.token}` };
      case 'header':
        return { [a.header.toLowerCase()]: a.value };
    }
  }

  /** Closes the connection pools once their requests are done; `abandon`: at once, failing the requests under way. */
  async close({ abandon = false }: { abandon?: boolean } = {}): Promise<void> {
    const end = (a: Agent): Promise<void> => (abandon ? a.destroy() : a.close()).catch(() => undefined);
    await Promise.all([end(this.metadataAgent), end(this.packageAgent)]);
  }
}

/** The metrics' reason for a failed request: from its error code, never its text. */
function failureOf(err: unknown): UpstreamFailure {
  switch (err instanceof NuproxyError ? err.code : undefined) {
    case 'UPSTREAM_TIMEOUT':
      return 'timeout';
    case 'UPSTREAM_UNREACHABLE':
      return 'unreachable';
    case 'UPSTREAM_BAD_RESPONSE':
      return 'bad_response';
    case 'UPSTREAM_HOST_NOT_ALLOWED':
      return 'not_allowed';
    default:
      return 'other';
  }
}

function backoff(attempt: number, base: number): number {
  return base * 2 ** (attempt - 1) + Math.floor(Math.random() * base * 0.5);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Maps transport errors to coded errors; messages never include credentials or query strings. */
export function toUpstreamError(err: unknown, upstream: string, url: string): NuproxyError {
  if (err instanceof NuproxyError) return err;
  const details = { upstream, url: safeUrl(url) };
  if (
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new NuproxyError('UPSTREAM_TIMEOUT', `upstream ${upstream} timed out`, details, err);
  }
  const code = (err as { code?: string } | undefined)?.code;
  return new NuproxyError('UPSTREAM_UNREACHABLE', `upstream ${upstream} is unreachable${code ? ` (${code})` : ''}`, details, err);
}
