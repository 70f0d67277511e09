import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Header and field names whose values are secrets wherever they appear in a log object. */
const REDACT_PATHS = [
  'headers.authorization',
  'headers["x-nuget-apikey"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers["x-nuget-apikey"]',
  'req.headers.cookie',
  'auth.password',
  'auth.token',
  'auth.value',
  'password',
  'token',
  'apiKey',
];

export interface LogOptions {
  level: string;
  destination?: DestinationStream;
}

/** The root logger. Redaction is configured once here; everything else receives child loggers. */
export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { name: 'nuproxy' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

/** Removes userinfo and query strings that may carry credentials from a URL before it is logged or echoed. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const key of [...u.searchParams.keys()]) {
      if (/key|token|secret|password|sig/i.test(key)) u.searchParams.set(key, 'redacted');
    }
    return u.toString();
  } catch {
    return '[unparsable url]';
  }
}
