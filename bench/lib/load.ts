// Runs bench/load-client.js (N simultaneous downloads in a separate process) and returns its per-client figures.
import { fileURLToPath } from 'node:url';
import { run, type Scope } from './proc.js';

export interface ClientResult {
  ttfbMs: number;
  ttlbMs: number;
  bytes: number;
  status: number;
  cache?: string;
  error?: string;
}

export interface HerdResult {
  results: ClientResult[];
  firstMs: number;
  lastMs: number;
  errors: string[];
}

const CLIENT = fileURLToPath(new URL('../load-client.js', import.meta.url));

export async function herd(scope: Scope, url: string, clients: number, expectBytes: number, timeoutMs: number): Promise<HerdResult> {
  const r = await run(scope, process.execPath, [CLIENT, JSON.stringify({ url, clients, timeoutMs, expectBytes })], {
    timeoutMs: timeoutMs + 15_000,
  });
  if (r.code !== 0) throw new Error(`load-client exited ${r.code}:\n${r.stderr}`);
  const { results } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { results: ClientResult[] };
  const done = results.map((x) => x.ttlbMs).sort((a, b) => a - b);
  const errors = results.filter((x) => x.error).map((x) => x.error!);
  return { results, firstMs: done[0]!, lastMs: done[done.length - 1]!, errors };
}
