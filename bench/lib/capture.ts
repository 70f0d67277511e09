// A real client's request sequence, read from a server's access log: nuproxy's pino lines (msg "request":
// ISO `time` written at the end, `durationMs`, `path`, `status`) or nginx's `timed` format
// (`$msec $request_time $status $request_uri`, see nginx.ts). Start = end - duration, ordered by start.
import { readFileSync } from 'node:fs';

export interface CapturedRequest {
  path: string;
  status: number;
  /** ms from the first request's start */
  startMs: number;
  durationMs: number;
}

export type RequestKind = 'index' | 'versionList' | 'registration' | 'nupkg' | 'other';

export interface Sequence {
  requests: CapturedRequest[];
  /** Most requests in flight at once. */
  maxConcurrency: number;
  /** First start to last end, ms. */
  wallMs: number;
  kinds: Record<RequestKind, number>;
}

export function kindOf(path: string): RequestKind {
  if (/\/v3\/index\.json$/.test(path)) return 'index';
  if (/\.nupkg$/.test(path)) return 'nupkg';
  if (/\/registration[^/]*\//.test(path)) return 'registration';
  if (/\/index\.json$/.test(path)) return 'versionList';
  return 'other';
}

/** The access-log lines written after `fromByte` (the log's size before the captured restore). */
export function nuproxyRequests(logFile: string, fromByte: number): { path: string; status: number; endMs: number; durationMs: number }[] {
  const text = readFileSync(logFile).subarray(fromByte).toString('utf8');
  const out: { path: string; status: number; endMs: number; durationMs: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    let j: { msg?: unknown; time?: unknown; durationMs?: unknown; path?: unknown; status?: unknown; method?: unknown };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    if (j.msg !== 'request' || j.method !== 'GET' || typeof j.path !== 'string') continue;
    out.push({ path: j.path, status: Number(j.status), endMs: Date.parse(String(j.time)), durationMs: Number(j.durationMs) });
  }
  return out;
}

export function nginxRequests(logFile: string, fromByte: number): { path: string; status: number; endMs: number; durationMs: number }[] {
  const text = readFileSync(logFile).subarray(fromByte).toString('utf8');
  const out: { path: string; status: number; endMs: number; durationMs: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+) (\d+\.\d+) (\d{3}) (\S+)$/.exec(line.trim());
    if (!m) continue;
    out.push({ path: m[4]!, status: Number(m[3]), endMs: Number(m[1]) * 1000, durationMs: Number(m[2]) * 1000 });
  }
  return out;
}

export function toSequence(raw: { path: string; status: number; endMs: number; durationMs: number }[]): Sequence {
  if (raw.length === 0) throw new Error('the captured restore made no request');
  const withStart = raw.map((r) => ({ ...r, start: r.endMs - r.durationMs })).sort((a, b) => a.start - b.start || a.endMs - b.endMs);
  const t0 = withStart[0]!.start;
  const requests = withStart.map((r) => ({ path: r.path, status: r.status, startMs: Math.round((r.start - t0) * 10) / 10, durationMs: r.durationMs }));
  // sweep: +1 at each start, -1 at each end (an end at the same instant as a start comes first)
  const events = requests.flatMap((r) => [
    { t: r.startMs, d: 1 },
    { t: r.startMs + r.durationMs, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let cur = 0;
  let maxConcurrency = 0;
  for (const e of events) {
    cur += e.d;
    if (cur > maxConcurrency) maxConcurrency = cur;
  }
  const kinds: Record<RequestKind, number> = { index: 0, versionList: 0, registration: 0, nupkg: 0, other: 0 };
  for (const r of requests) kinds[kindOf(r.path)]++;
  const wallMs = Math.max(...requests.map((r) => r.startMs + r.durationMs));
  return { requests, maxConcurrency: Math.max(1, maxConcurrency), wallMs, kinds };
}
