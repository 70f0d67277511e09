import { pino, type Logger, type DestinationStream } from 'pino';
import { write, writeSync } from 'node:fs';

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

/**
 * Something that replaces secrets in a text (the SecretSet of src/upstream/secrets.ts is one). Declared here, the
 * module every layer may import, so that the HTTP edge can redact what it sends without knowing the upstreams.
 */
export interface Redactor {
  readonly empty: boolean;
  redact(text: string): string;
}

/** The redactors a root logger applies to each finished line (shared with its children). */
const REDACTORS = Symbol('nuproxy.log.redactors');

/** The message of the one access line per request (http/respond.ts logRequest). */
export const ACCESS_MSG = 'request';
/**
 * How an access line of a request answered without error ends (pino writes `msg` last). Such a line holds only
 * the method, the client's path, status, timing, cache outcome and configured upstream names, never upstream
 * text, so it is not scanned for secrets: that keeps the scan off every cache hit. Access lines of failed
 * requests ("request failed", with the error) are scanned like every other line.
 */
const ACCESS_LINE_END = `"msg":"${ACCESS_MSG}"}\n`;

/**
 * The root logger. Redaction is configured once here; everything else receives child loggers. Field redaction
 * (REDACT_PATHS) covers the known places of secrets; keepSecretsOut adds the configured secrets' values, which
 * are cut out of every finished line wherever they are (an error message quoting an upstream's text).
 */
export function createLogger(opts: LogOptions): Logger {
  const redactors: Redactor[] = [];
  const errors: string[] = [];
  const logger = pino(
    {
      level: opts.level,
      base: { name: 'nuproxy' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // no configured secret (the usual case): one length check per line
      hooks: {
        streamWrite: (line) => {
          const out = redactors.length === 0 || line.endsWith(ACCESS_LINE_END) ? line : redactLine(line, redactors);
          // warn, error and fatal lines ({"level":40 / 50 / 60: upstream failures warn) are kept for the
          // dashboard, as written: secrets already cut out. One character test on every other line.
          if (out.charCodeAt(9) >= 52 && out.startsWith('{"level":')) keepError(errors, out);
          return out;
        },
      },
    },
    opts.destination,
  );
  Object.defineProperty(logger, REDACTORS, { value: redactors });
  Object.defineProperty(logger, ERRORS, { value: errors });
  return logger;
}

/** The last error lines a root logger wrote (newest last), for the dashboard. */
const ERRORS = Symbol('nuproxy.log.errors');
const MAX_ERRORS = 50;
const MAX_ERROR_LINE = 2_000;

function keepError(ring: string[], line: string): void {
  if (ring.length >= MAX_ERRORS) ring.shift();
  ring.push(line.length > MAX_ERROR_LINE ? line.slice(0, MAX_ERROR_LINE) : line);
}

/**
 * Keeps a failed answer (a 5xx, logged at info as an access line) among the recent errors: the HTTP edge calls
 * it only for those, so the access lines of every other request cost nothing here.
 */
export function rememberFailure(logger: Logger, entry: Record<string, unknown>): void {
  const l = logger as unknown as Record<symbol, unknown>;
  const ring = l[ERRORS] as string[] | undefined;
  if (!ring) return;
  const line = JSON.stringify({ level: 40, time: new Date().toISOString(), ...entry, msg: 'request answered with an error' });
  keepError(ring, redactLine(line, (l[REDACTORS] as Redactor[] | undefined) ?? []));
}

/** The last ~50 warn, error and fatal log lines of a logger made by createLogger, parsed (newest first). */
export function recentErrors(logger: Logger): Record<string, unknown>[] {
  const ring = (logger as unknown as Record<symbol, string[] | undefined>)[ERRORS] ?? [];
  const out: Record<string, unknown>[] = [];
  for (let i = ring.length - 1; i >= 0; i--) {
    try {
      out.push(JSON.parse(ring[i]!) as Record<string, unknown>);
    } catch {
      out.push({ msg: ring[i]!.slice(0, 200) }); // cut at MAX_ERROR_LINE: shown as text
    }
  }
  return out;
}

function redactLine(line: string, redactors: readonly Redactor[]): string {
  let out = line;
  for (const r of redactors) out = r.redact(out);
  return out;
}

/**
 * Makes a logger made by createLogger (and every child of it, before or after) cut `secrets` out of each line
 * it writes. The composition root calls it with the configured secrets as soon as it knows them.
 */
export function keepSecretsOut(logger: Logger, secrets: Redactor): void {
  const list = (logger as unknown as Record<symbol, Redactor[] | undefined>)[REDACTORS];
  if (!list) throw new Error('keepSecretsOut: the logger was not made by createLogger');
  if (!secrets.empty && !list.includes(secrets)) list.push(secrets);
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

export interface LineDestination extends DestinationStream {
  /** Starts writing what is buffered (asynchronously). */
  flush(): void;
  /** Writes everything buffered before returning (process exit). */
  flushSync(): void;
}

/**
 * Where the server's log lines go: an in-memory list of lines written to `fd` in large asynchronous writes.
 * pino's own sonic-boom measured 5 µs per access line here against 3 µs for this (it measures the byte length
 * of its whole pending buffer on every line), and the access line is written once per request.
 *
 * `maxWrite` bounds one write() to whole lines: 4096 (PIPE_BUF) when several processes share the same pipe, so
 * their lines never interleave. Lines beyond `maxQueued` bytes waiting for a slow reader are dropped and
 * counted, rather than growing memory without bound.
 */
export function createLineDestination(fd: number, opts: { maxWrite?: number; maxQueued?: number } = {}): LineDestination {
  const maxWrite = opts.maxWrite ?? 64 * 1024;
  const maxQueued = opts.maxQueued ?? 64 * 1024 * 1024;
  let lines: string[] = [];
  let pendingChars = 0;
  const queue: Buffer[] = [];
  let queuedBytes = 0;
  let writing = false;
  let dropped = 0;

  /** Moves the pending lines into write-sized buffers of whole lines. */
  const seal = (): void => {
    if (lines.length === 0) return;
    let batch: string[] = [];
    let size = 0;
    const push = (): void => {
      if (!batch.length) return;
      const b = Buffer.from(batch.join(''));
      queue.push(b);
      queuedBytes += b.length;
      batch = [];
      size = 0;
    };
    for (const line of lines) {
      const n = Buffer.byteLength(line);
      if (size + n > maxWrite) push();
      batch.push(line);
      size += n;
    }
    push();
    lines = [];
    pendingChars = 0;
  };
  const pump = (): void => {
    if (writing) return;
    const buf = queue[0];
    if (!buf) return;
    writing = true;
    write(fd, buf, 0, buf.length, null, (err, n) => {
      writing = false;
      if (err) {
        // a non-blocking pipe that is full: try again shortly; anything else: the bytes are lost
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(pump, 10).unref();
          return;
        }
        n = buf.length;
      }
      if (n < buf.length) queue[0] = buf.subarray(n);
      else queue.shift();
      queuedBytes -= n;
      pump();
    });
  };
  const flush = (): void => {
    seal();
    pump();
  };
  return {
    write(line: string) {
      if (queuedBytes + pendingChars > maxQueued) {
        dropped++;
        return true;
      }
      if (dropped > 0) {
        lines.push(`${JSON.stringify({ level: 40, time: new Date().toISOString(), msg: 'log lines dropped: the log reader was too slow', dropped })}\n`);
        dropped = 0;
      }
      lines.push(line);
      pendingChars += line.length;
      if (pendingChars >= maxWrite) flush();
      return true;
    },
    flush,
    flushSync() {
      seal();
      // what an asynchronous write has already taken is written by it; the rest goes now, in order
      const start = writing ? 1 : 0;
      for (const buf of queue.splice(start)) {
        let off = 0;
        while (off < buf.length) {
          try {
            off += writeSync(fd, buf, off, buf.length - off);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') break;
          }
        }
      }
    },
  };
}
