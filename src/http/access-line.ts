import { pino, type Logger } from 'pino';

/**
 * The access line of a request answered without error, written straight to the logger's destination: the
 * same bytes pino would write (`{"level":30,"time":"…"` + the logger's bindings + the fields + `"msg"` last),
 * without pino's general path (its serializers, the redaction of field paths, its time function) on every
 * request. Measured: ~2 µs per line through pino.info against ~0.4 µs here, on a warm hit of ~18 µs.
 *
 * Only for flat fields whose values are the proxy's own (method, the client's path, status, timing, cache
 * outcome, configured upstream and token names: no secret can be in a field path pino would redact, and access
 * lines are not scanned for secrets either way, see log.ts). A logger not made by pino (no stream) or below
 * info is left to pino: false.
 */
export type AccessValue = string | number | boolean | readonly string[] | undefined;

const { streamSym, chindingsSym } = pino.symbols;

let lastMs = 0;
let lastIso = '';
/** pino's isoTime, computed once per millisecond (a busy server writes many lines in each). */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

export function writeAccessLine(log: Logger, fields: Record<string, AccessValue>, msg: string): boolean {
  if (!log.isLevelEnabled('info')) return true; // nothing to write, as pino would write nothing
  const l = log as unknown as Record<symbol, unknown>;
  const stream = l[streamSym] as { write(s: string): unknown } | undefined;
  const bindings = l[chindingsSym];
  if (!stream || typeof bindings !== 'string') return false;
  let line = `{"level":30,"time":"${isoNow()}"${bindings}`;
  for (const key in fields) {
    const v = fields[key];
    if (v === undefined) continue; // as JSON.stringify (and pino) leave undefined out
    line += `,"${key}":${typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null') : JSON.stringify(v)}`;
  }
  stream.write(`${line},"msg":${JSON.stringify(msg)}}\n`);
  return true;
}
