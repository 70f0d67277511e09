import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { NuproxyError } from '../errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { safeUrl, type Logger } from '../log.js';
import type { ResolvedAuth } from '../config/load.js';
import type { UpstreamConfig } from '../config/schema.js';
import type { SecretSet } from './secrets.js';

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
  /** Offline mode: no connection is ever opened. */
  offline?: boolean;
  /** What one response may cost (config upstreams[].limits); defaults from the schema when absent. */
  limits?: UpstreamConfig['limits'];
  /** Origins package downloads may be redirected to (config upstreams[].redirects.allow). */
  redirectAllow?: readonly string[];
  /** Every configured secret: none may leave nuproxy in a body or header. */
  secrets?: SecretSet;
}

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
 * HTTP to ONE upstream feed: a keep-alive undici Agent, timeouts, retries with backoff for idempotent requests,
 * auth, and redirects followed here without carrying credentials to another host. Requests are only made to
 * hosts the upstream's own service index names (plus redirect targets, which never get credentials).
 */
export class UpstreamHttp {
  private readonly agent: Agent;
  private readonly allowedOrigins = new Set<string>();
  private readonly log: Logger;
  readonly breaker: CircuitBreaker;

  constructor(private readonly opts: UpstreamHttpOptions) {
    this.agent = new Agent({
      connect: { timeout: opts.timeouts.connect },
      headersTimeout: opts.timeouts.headers,
      bodyTimeout: opts.timeouts.body,
      keepAliveTimeout: 30_000,
      connections: 32,
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

  /** Offline mode and the circuit breaker: may this upstream be asked now? */
  private admit(url: string): void {
    if (this.opts.offline) {
      throw new NuproxyError('UPSTREAM_UNREACHABLE', `offline mode: upstream ${this.opts.name} is never asked`, { upstream: this.opts.name, url: safeUrl(url) });
    }
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
    init: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; retry?: boolean } = {},
  ): Promise<UpstreamResponse> {
    if (!this.isAllowed(url)) {
      throw new NuproxyError('UPSTREAM_HOST_NOT_ALLOWED', `upstream ${this.opts.name} referred to a host outside its service index`, {
        upstream: this.opts.name,
        url: safeUrl(url),
      });
    }
    this.admit(url);
    try {
      const res = await this.requestWithRetries(url, init);
      if (res.status >= 500) this.breaker.failure(new Error(`status ${res.status}`));
      else this.breaker.success();
      return res;
    } catch (err) {
      this.breaker.failure(err);
      throw err;
    }
  }

  private async requestWithRetries(
    url: string,
    init: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; retry?: boolean },
  ): Promise<UpstreamResponse> {
    const attempts = init.retry === false ? 1 : this.opts.retries + 1;
    let lastErr: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(backoff(attempt, this.opts.retryDelayMs ?? 200));
      try {
        const res = await this.followRedirects(url, init.method ?? 'GET', init.headers ?? {});
        if (RETRYABLE_STATUS.has(res.status) && attempt < attempts - 1) {
          await res.body.dump().catch(() => undefined);
          this.log.debug({ url: safeUrl(url), status: res.status, attempt }, 'retrying upstream request');
          continue;
        }
        return res;
      } catch (err) {
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
    this.admit(url);
    const u = new URL(url);
    try {
      const res = await this.agent.request({
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

  private async followRedirects(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<UpstreamResponse> {
    let current = new URL(url);
    const firstOrigin = current.origin;
    for (let hop = 0; ; hop++) {
      const sameHost = current.origin === firstOrigin || this.allowedOrigins.has(current.origin);
      const res = await this.agent.request({
        origin: current.origin,
        path: current.pathname + current.search,
        method,
        headers: { 'user-agent': this.opts.userAgent, ...headers, ...(sameHost ? this.authHeaders() : {}) },
      });
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump().catch(() => undefined);
        if (hop >= MAX_REDIRECTS) {
          throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.opts.name} redirected too many times`, { url: safeUrl(url) });
        }
        const next = new URL(location, current);
        if (current.protocol === 'https:' && next.protocol !== 'https:') {
          throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.opts.name} redirected from https to http`, { url: safeUrl(url) });
        }
        current = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url: current.toString() };
    }
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

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
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
