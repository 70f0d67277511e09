// Runs bench/agents-client.js (many agents replaying a captured restore, in a process of its own) and sums up.
import { fileURLToPath } from 'node:url';
import type { AgentsArgs, AgentsResult } from '../agents-client.js';
import type { Sequence } from './capture.js';
import { run, type Scope } from './proc.js';

const CLIENT = fileURLToPath(new URL('../agents-client.js', import.meta.url));

export interface AgentsFigures {
  agents: number;
  connections: number;
  restoresPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerSec: number;
  mbPerSec: number;
  restores: number;
  failedRestores: number;
  errors: number;
  errorSamples: string[];
  /** The generator's CPU use during the window, in cores (1 = one core busy all the time). */
  generatorCores: number;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!;
}

export async function runAgents(scope: Scope, url: string, seq: Sequence, o: { agents: number; connections: number; seconds: number }): Promise<AgentsFigures> {
  const timeoutMs = o.seconds * 1000 + 120_000;
  const args: AgentsArgs = {
    url,
    paths: seq.requests.map((r) => r.path),
    statuses: seq.requests.map((r) => r.status),
    agents: o.agents,
    connections: o.connections,
    seconds: o.seconds,
    timeoutMs,
  };
  const r = await run(scope, process.execPath, [CLIENT, JSON.stringify(args)], { timeoutMs: timeoutMs + 15_000 });
  if (r.code !== 0) throw new Error(`agents-client exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  const x = JSON.parse(r.stdout.trim().split('\n').pop()!) as AgentsResult;
  const sec = x.windowMs / 1000;
  return {
    agents: o.agents,
    connections: o.connections,
    restoresPerSec: x.restores / sec,
    p50Ms: percentile(x.restoreMs, 50),
    p99Ms: percentile(x.restoreMs, 99),
    requestsPerSec: x.requests / sec,
    mbPerSec: x.bytes / 1e6 / sec,
    restores: x.restores,
    failedRestores: x.failedRestores,
    errors: x.errors,
    errorSamples: x.errorSamples,
    generatorCores: x.cpuMs / x.windowMs,
  };
}
