import type { Context } from 'hono';
import { NuproxyError, type ErrorCode } from '../errors.js';
import type { Redactor } from '../log.js';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  CONFLICT: 409,
  NOT_FOUND: 404,
  RANGE_NOT_SATISFIABLE: 416,
  UPSTREAM_UNREACHABLE: 502,
  UPSTREAM_TIMEOUT: 504,
  UPSTREAM_BAD_RESPONSE: 502,
  UPSTREAM_STATUS: 502,
  UPSTREAM_HOST_NOT_ALLOWED: 502,
  INTEGRITY: 502,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  BLOCKED_BY_POLICY: 404,
  TOO_MANY_REQUESTS: 429,
  READ_ONLY: 405,
  PAYLOAD_TOO_LARGE: 413,
  CONFIG_INVALID: 500,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
};

export interface ErrorPayload {
  status: number;
  code: ErrorCode;
  body: Record<string, unknown>;
  /** Not a NuproxyError: a bug or an unforeseen failure, logged with its stack. */
  unexpected: boolean;
  /**
   * Headers the status needs: a 401's challenge (so the NuGet client sends its credentials), a 429's Retry-After,
   * the rule of a version the policy blocks (X-Nuproxy-Policy).
   */
  headers?: Record<string, string>;
  /**
   * The reason phrase, when it says more than the status's own: a blocked version's message (the NuGet client
   * prints the status line of a failed download, never its body: nuget.org puts its messages there too).
   */
  statusText?: string;
}

/** The challenge of a 401: Basic, which NuGet.Config's packageSourceCredentials and credential providers answer. */
export const WWW_AUTHENTICATE = 'Basic realm="nuproxy"';

/**
 * The one place where error codes become HTTP statuses. Bodies are JSON and never carry secrets: a message may
 * quote an upstream's text (a service index's version, a header value), so `secrets` are cut out of it.
 */
export function errorPayload(err: unknown, secrets?: Redactor): ErrorPayload {
  const e = err instanceof NuproxyError ? err : new NuproxyError('INTERNAL', 'internal error');
  const status = STATUS[e.code];
  const body: Record<string, unknown> = { error: e.code.toLowerCase(), message: secrets ? secrets.redact(e.message) : e.message };
  if (typeof e.details.upstream === 'string') body.upstream = e.details.upstream;
  const p: ErrorPayload = { status, code: e.code, body, unexpected: status >= 500 && !(err instanceof NuproxyError) };
  if (e.code === 'UNAUTHORIZED') p.headers = { 'www-authenticate': typeof e.details.challenge === 'string' ? e.details.challenge : WWW_AUTHENTICATE };
  else if (e.code === 'TOO_MANY_REQUESTS') p.headers = { 'retry-after': String(e.details.retryAfter ?? 60) };
  else if (e.code === 'BLOCKED_BY_POLICY') {
    body.rule = e.details.rule;
    const line = reasonPhrase(body.message as string);
    // the NuGet client prints X-NuGet-Warning (and, for a failed download, the reason phrase), never the body
    p.headers = { 'x-nuproxy-policy': String(e.details.rule), 'x-nuget-warning': line };
    p.statusText = line;
  }
  return p;
}

/** A message as a reason phrase: printable ASCII only (the status line allows no more), bounded. */
function reasonPhrase(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** errorPayload as a framework response (the routes outside the read path). */
export function errorResponse(c: Context, err: unknown, secrets?: Redactor): Response {
  const p = errorPayload(err, secrets);
  c.set('errorCode', p.code);
  if (p.unexpected) c.set('error', err);
  return c.json(p.body, p.status as 400, p.headers);
}

export function badRequest(message: string, details: Record<string, unknown> = {}): NuproxyError {
  return new NuproxyError('BAD_REQUEST', message, details);
}

export function notFound(message = 'not found'): NuproxyError {
  return new NuproxyError('NOT_FOUND', message);
}
