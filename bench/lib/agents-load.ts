// Runs bench/agents-client.js (many agents replaying a captured restore) in `procs` processes of their own (one
// JavaScript process cannot generate more than about one core's worth of requests), started together, and sums up.
import { fileURLToPath } from 'node:url';
import type { AgentsArgs, AgentsResult } from '../agents-client.js';
import type { Sequence } from './capture.js';
import { capture, stopChild, type Scope } from './proc.js';

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
  /** The generator processes' CPU use during the window, in cores (1 = one core busy all the time). */
  generatorCores: number;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!;
}

export async function runAgents(
  scope: Scope,
  url: string,
  seq: Sequence,
  o: { agents: number; connections: number; seconds: number; procs: number },
): Promise<AgentsFigures> {
  const timeoutMs = o.seconds * 1000 + 120_000;
  const procs = Math.max(1, Math.min(o.procs, o.agents));
  const children = Array.from({ length: procs }, (_, k) => {
    const args: AgentsArgs = {
      url,
      paths: seq.requests.map((r) => r.path),
      statuses: seq.requests.map((r) => r.status),
      agents: Math.floor(o.agents / procs) + (k < o.agents % procs ? 1 : 0),
      connections: o.connections,
      seconds: o.seconds,
      timeoutMs,
    };
    const child = scope.spawn(process.execPath, [CLIENT, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const errOut = capture(child);
    let out = '';
    child.stdout!.setEncoding('utf8');
    const ready = new Promise<void>((resolve) => {
      child.stdout!.on('data', (d: string) => {
        out += d;
        if (out.startsWith('ready\n')) resolve();
      });
    });
    const done = new Promise<AgentsResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => {
        const last = out.trim().split('\n').pop() ?? '';
        if (code !== 0 || !last.startsWith('{')) return reject(new Error(`agents-client exited ${code}:\n${errOut().slice(-3000)}`));
        resolve(JSON.parse(last) as AgentsResult);
      });
    });
    done.catch(() => undefined);
    return { child, ready, done };
  });
  const timer = setTimeout(() => {
    for (const c of children) void stopChild(c.child, 'SIGKILL', 0);
  }, timeoutMs + 15_000);
  try {
    await Promise.race([Promise.all(children.map((c) => c.ready)), Promise.all(children.map((c) => c.done))]);
    for (const c of children) c.child.stdin!.end('go\n');
    const xs = await Promise.all(children.map((c) => c.done));
    const sec = Math.max(...xs.map((x) => x.windowMs)) / 1000;
    const sum = (f: (x: AgentsResult) => number): number => xs.reduce((a, x) => a + f(x), 0);
    const restoreMs = xs.flatMap((x) => x.restoreMs);
    return {
      agents: o.agents,
      connections: o.connections,
      restoresPerSec: sum((x) => x.restores + x.partialRestores) / sec,
      p50Ms: percentile(restoreMs, 50),
      p99Ms: percentile(restoreMs, 99),
      requestsPerSec: sum((x) => x.requests) / sec,
      mbPerSec: sum((x) => x.bytes) / 1e6 / sec,
      restores: sum((x) => x.restores),
      failedRestores: sum((x) => x.failedRestores),
      errors: sum((x) => x.errors),
      errorSamples: xs.flatMap((x) => x.errorSamples).slice(0, 10),
      generatorCores: sum((x) => x.cpuMs) / 1000 / sec,
    };
  } finally {
    clearTimeout(timer);
  }
}
