/**
 * One error type for the whole proxy. Layers throw NuproxyError with a stable `code`; only the HTTP edge
 * (src/http/errors.ts) maps codes to statuses, so nothing below it decides what a client sees.
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'CONFLICT'
  | 'NOT_FOUND'
  | 'RANGE_NOT_SATISFIABLE'
  | 'UPSTREAM_UNREACHABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_BAD_RESPONSE'
  | 'UPSTREAM_STATUS'
  | 'UPSTREAM_HOST_NOT_ALLOWED'
  | 'INTEGRITY'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'BLOCKED_BY_POLICY'
  | 'TOO_MANY_REQUESTS'
  | 'READ_ONLY'
  | 'PAYLOAD_TOO_LARGE'
  | 'CONFIG_INVALID'
  | 'SHUTTING_DOWN'
  | 'INTERNAL';

export class NuproxyError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NuproxyError';
    this.code = code;
    this.details = details;
  }
}

export function isNuproxyError(err: unknown, code?: ErrorCode): err is NuproxyError {
  return err instanceof NuproxyError && (code === undefined || err.code === code);
}

/** True for errors that mean "the upstream could not give an answer" (as opposed to "absent"). */
export function isUpstreamFailure(err: unknown): err is NuproxyError {
  return (
    err instanceof NuproxyError &&
    (err.code === 'UPSTREAM_UNREACHABLE' ||
      err.code === 'UPSTREAM_TIMEOUT' ||
      err.code === 'UPSTREAM_BAD_RESPONSE' ||
      err.code === 'UPSTREAM_STATUS' ||
      err.code === 'INTEGRITY')
  );
}
