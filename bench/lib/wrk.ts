// wrk -t2 -c64 -dNs --latency, parsed: requests/s, bytes/s, p99 latency, errors.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type Scope } from './proc.js';
import type { Settings } from './settings.js';

export interface WrkResult {
  requestsPerSec: number;
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Socket errors (connect/read/write/timeout) plus non-2xx/3xx responses. */
  errors: number;
  raw: string;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function timeMs(v: string, unit: string): number {
  const f = TIME_UNITS[unit];
  if (f === undefined) throw new Error(`wrk: unknown time unit ${unit}`);
  return Number(v) * f;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const tps = /Transfer\/sec:\s+([\d.]+)([KMGT]?B)/.exec(out);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(out);
  const p50 = /^\s*50%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (!rps || !tps || !p99 || !p50 || !total) throw new Error(`cannot parse wrk output:\n${out}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return {
    requestsPerSec: Number(rps[1]),
    bytesPerSec: Number(tps[1]) * SIZE_UNITS[tps[2]!]!,
    p50Ms: timeMs(p50[1]!, p50[2]!),
    p99Ms: timeMs(p99[1]!, p99[2]!),
    requests: Number(total[1]),
    errors,
    raw: out,
  };
}

let scriptN = 0;

/**
 * One wrk measurement of `url`. With `paths`, a Lua script cycles through them (one server, many documents).
 * `headers` are sent with every request.
 */
export async function runWrk(
  scope: Scope,
  s: Settings,
  wrkBin: string,
  url: string,
  opts: { paths?: string[]; headers?: Record<string, string>; workDir: string; seconds?: number },
): Promise<WrkResult> {
  const seconds = Math.ceil(opts.seconds ?? s.wrkSeconds);
  const args = [`-t${s.wrkThreads}`, `-c${s.connections}`, `-d${seconds}s`, '--latency', '--timeout', '60s'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.paths?.length) {
    const script = join(opts.workDir, `wrk-${++scriptN}.lua`);
    const list = opts.paths.map((p) => `  ${JSON.stringify(p)},`).join('\n');
    await writeFile(
      script,
      `local paths = {\n${list}\n}\nlocal i = math.random(#paths)\nrequest = function()\n  i = i + 1\n  if i > #paths then i = 1 end\n  return wrk.format(nil, paths[i])\nend\n`,
    );
    args.push('-s', script);
  }
  args.push(url);
  const r = await run(scope, wrkBin, args, { timeoutMs: (seconds + 90) * 1000 });
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return parseWrk(r.stdout);
}
