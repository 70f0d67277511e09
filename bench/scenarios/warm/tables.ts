// The warm scenario's tables and targets from its runs (every ratio taken within a run, then the median).
import { FEATURE_LABELS } from '../../lib/features.js';
import type { PackageRef } from '../../lib/packages.js';
import { check, fmt, median, type Check, type ScenarioOutput, type Table } from '../../lib/report.js';
import type { Settings } from '../../lib/settings.js';
import type { WrkResult } from '../../lib/wrk.js';
import { FEATURE_MAX_BYTES, FEATURE_OF, type Who } from './servers.js';

/** One run of one size: a wrk result per server measured. */
export type Runs = Partial<Record<Who, WrkResult>>[];

export function warmTables(
  s: Settings,
  sizes: { label: string; bytes: number }[],
  refs: PackageRef[],
  workers: number,
  results: Runs[],
): ScenarioOutput {
  const rows: string[][] = [];
  const singleRows: string[][] = [];
  const tokenRows: string[][] = [];
  const bareRows: string[][] = [];
  const featureRows: string[][] = [];
  const checks: Check[] = [];
  const data: Record<string, unknown> = {};
  const rps = (w: WrkResult): number => w.requestsPerSec;
  const mbs = (w: WrkResult): number => w.bytesPerSec / 1e6;
  for (const [i, z] of sizes.entries()) {
    const runs = results[i]!;
    const m = (who: Who, f: (w: WrkResult) => number): number => median(runs.map((p) => (p[who] ? f(p[who]) : NaN)));
    const ratios = (a: Who, b: Who, f: (w: WrkResult) => number): number[] => runs.map((p) => (p[a] && p[b] ? f(p[a]) / f(p[b]) : NaN));
    const x = (a: Who, b: Who, f: (w: WrkResult) => number): string => `${fmt(median(ratios(a, b, f)))}×`;
    const errs = (...who: Who[]): string => String(runs.reduce((a, p) => a + who.reduce((b, w) => b + (p[w]?.errors ?? 0), 0), 0));
    rows.push([
      `${z.label} (${fmt(refs[i]!.size / 1000)} kB)`,
      fmt(m('nginx', rps)),
      fmt(m('nuproxy', rps)),
      x('nuproxy', 'nginx', rps),
      fmt(m('nginx', mbs)),
      fmt(m('nuproxy', mbs)),
      x('nuproxy', 'nginx', mbs),
      fmt(m('nginx', (w) => w.p99Ms)),
      fmt(m('nuproxy', (w) => w.p99Ms)),
      x('nuproxy', 'nginx', (w) => w.p99Ms),
      errs('nuproxy', 'nginx'),
    ]);
    singleRows.push([z.label, fmt(m('nuproxy1', rps)), x('nuproxy1', 'nginx', rps), fmt(m('nuproxy1', mbs)), x('nuproxy1', 'nginx', mbs), fmt(m('nuproxy1', (w) => w.p99Ms)), errs('nuproxy1')]);
    tokenRows.push([z.label, fmt(m('nuproxyTok', rps)), x('nuproxyTok', 'nginx', rps), x('nuproxyTok', 'nuproxy', rps), fmt(m('nuproxyTok', mbs)), x('nuproxyTok', 'nginx', mbs), fmt(m('nuproxyTok', (w) => w.p99Ms)), errs('nuproxyTok')]);
    bareRows.push([
      z.label,
      fmt(m('bare', rps)),
      fmt(m('bare', mbs)),
      fmt(m('bare', (w) => w.p99Ms)),
      x('nuproxy1', 'bare', rps),
      x('nuproxy1', 'bare', mbs),
      x('nuproxy', 'bare', rps),
      x('nuproxy', 'bare', mbs),
      x('bare', 'nginx', rps),
      errs('bare'),
    ]);
    if (z.bytes <= FEATURE_MAX_BYTES) {
      for (const who of ['nuproxyCool', 'nuproxyMax', 'nuproxyAll'] as const) {
        featureRows.push([
          `${FEATURE_LABELS[FEATURE_OF[who]!]}: ${z.label}`,
          fmt(m(who, rps)),
          x(who, 'nginx', rps),
          x(who, 'nuproxy', rps),
          fmt(m(who, mbs)),
          x(who, 'nginx', mbs),
          x(who, 'nuproxy', mbs),
          fmt(m(who, (w) => w.p99Ms)),
          errs(who),
        ]);
      }
    }
    if (z.bytes <= 10_000) {
      checks.push(check('Warm', `${z.label} req/s nuproxy/nginx`, ratios('nuproxy', 'nginx', rps), '>=', 0.5));
      checks.push(check('Warm', `${z.label} req/s nuproxy(1 worker)/bare node`, ratios('nuproxy1', 'bare', rps), '>=', 0.7));
    } else {
      checks.push(check('Warm', `${z.label} MB/s nuproxy/nginx`, ratios('nuproxy', 'nginx', mbs), '>=', 0.9));
      checks.push(check('Warm', `${z.label} MB/s nuproxy(1 worker)/bare node`, ratios('nuproxy1', 'bare', mbs), '>=', 0.7));
    }
    data[z.label] = {
      bytes: refs[i]!.size,
      runs: runs.map((p) => Object.fromEntries(Object.entries(p).map(([who, w]) => [who, { ...w, raw: undefined }]))),
      ratios: {
        requestsPerSec: ratios('nuproxy', 'nginx', rps),
        bytesPerSec: ratios('nuproxy', 'nginx', mbs),
        p99: ratios('nuproxy', 'nginx', (w) => w.p99Ms),
        singleToBareRequestsPerSec: ratios('nuproxy1', 'bare', rps),
        singleToBareBytesPerSec: ratios('nuproxy1', 'bare', mbs),
      },
    };
  }
  const tables: Table[] = [
    {
      title: `1. Warm packages: wrk -t${s.wrkThreads} -c${s.connections} -d${s.wrkSeconds}s (50 MB: ${Math.ceil(Math.max(s.wrkSeconds, s.quick ? 7.5 : 15))}s), after a ${s.warmupSeconds}s warm-up each, median of ${s.runs} (MB = 10^6 bytes)`,
      columns: ['Size', 'nginx req/s', `nuproxy (${workers} workers) req/s`, 'ratio', 'nginx MB/s', 'nuproxy MB/s', 'ratio', 'nginx p99 ms', 'nuproxy p99 ms', 'ratio', 'errors'],
      rows,
    },
    {
      title: `1b. The same with nuproxy's default, one worker process (ratios to nginx in the same runs)`,
      columns: ['Size', 'req/s', 'ratio', 'MB/s', 'ratio', 'p99 ms', 'errors'],
      rows: singleRows,
    },
    {
      title: `1c. The same ${workers} workers with access.anonymous false and a token (HTTP Basic) on every request: ratios to nginx and to the open feed in the same runs`,
      columns: ['Size', 'req/s', 'ratio to nginx', 'ratio to open', 'MB/s', 'ratio to nginx', 'p99 ms', 'errors'],
      rows: tokenRows,
    },
    {
      title: `1d. Node's ceiling: a bare node:http server (one process) answering the same bytes from memory, in the same runs; nuproxy (1 worker) and nuproxy (${workers} workers) over it`,
      columns: ['Size', 'bare req/s', 'bare MB/s', 'bare p99 ms', '1 worker/bare req/s', '1 worker/bare MB/s', `${workers} workers/bare req/s`, `${workers} workers/bare MB/s`, 'bare/nginx req/s', 'errors'],
      rows: bareRows,
    },
    {
      title: `1e. Feature costs: the same ${workers} workers with a cooldown policy, cache.maxSize, and both with the token (sizes up to 1 MB only, to bound the time): ratios to nginx and to the open feed in the same runs`,
      columns: ['Feature: size', 'req/s', 'req/s to nginx', 'req/s to open', 'MB/s', 'MB/s to nginx', 'MB/s to open', 'p99 ms', 'errors'],
      rows: featureRows,
    },
  ];
  return { tables, checks, notes: [], data: { ...data, workers } };
}
