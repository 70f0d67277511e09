// Bench settings: a full run by default, BENCH_QUICK=1 for a smoke run; every knob can be set on its own.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCENARIOS = ['warm', 'herd', 'metadata', 'restore', 'memory', 's3', 's3-clients', 'agents'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Settings {
  quick: boolean;
  /** Repetitions per measurement; figures are medians over them. */
  runs: number;
  /** wrk duration per measurement, seconds. */
  wrkSeconds: number;
  /** A discarded wrk run before the measured ones (JIT, connection set-up, page cache), seconds. */
  warmupSeconds: number;
  wrkThreads: number;
  connections: number;
  herdClients: number;
  herdMB: number;
  herdRateMBps: number;
  /** Upstream latencies (ms) of the three merged upstreams. */
  mergeStallsMs: number[];
  /** Ids measured cold (each only once) per document kind. */
  mergeIds: number;
  restoreGenerated: number;
  restoreRuns: number;
  memoryClients: number;
  memoryMB: number;
  /** Simulated agents at once, one measurement per count (the last is the one the targets are checked on). */
  agentCounts: number[];
  /** Measurement window per agents figure, seconds. */
  agentSeconds: number;
  /** Most connections (requests in flight) per agent: the captured client's concurrency, capped at this. */
  agentConnections: number;
  /** Load generator processes the agents are spread over. */
  agentProcs: number;
  /** Generated packages of the agents' closure (the restore scenario's full one, also in a quick run). */
  agentPackages: number;
  only: ScenarioName[];
  /** Per-scenario hard bound, seconds. */
  timeouts: Record<ScenarioName, number>;
  cpuProf: boolean;
  /** Before each scenario, wait up to this many seconds for the machine to be quiet (0: just measure and warn). */
  waitQuietSeconds: number;
  keepTemp: boolean;
  root: string;
  outDir: string;
  distMain: string;
}

function num(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

export function loadSettings(): Settings {
  const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
  // .bench/dist/bench/lib/settings.js -> project root
  const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
  const onlyRaw = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const o of onlyRaw) {
    if (!(SCENARIOS as readonly string[]).includes(o)) throw new Error(`BENCH_ONLY: unknown scenario ${o} (known: ${SCENARIOS.join(', ')})`);
  }
  const runs = num('BENCH_RUNS', quick ? 1 : 3);
  return {
    quick,
    runs,
    wrkSeconds: num('BENCH_SECONDS', quick ? 2 : 5),
    warmupSeconds: num('BENCH_WARMUP_SECONDS', quick ? 1 : 2),
    wrkThreads: num('BENCH_WRK_THREADS', 2),
    connections: num('BENCH_CONNECTIONS', 64),
    herdClients: num('BENCH_HERD_CLIENTS', 100),
    herdMB: num('BENCH_HERD_MB', 50),
    herdRateMBps: num('BENCH_HERD_RATE_MBPS', 50),
    mergeStallsMs: (process.env.BENCH_MERGE_STALLS ?? '20,40,80').split(',').map((s) => Number(s.trim())),
    mergeIds: num('BENCH_MERGE_IDS', quick ? 8 : 25),
    restoreGenerated: num('BENCH_RESTORE_PACKAGES', quick ? 60 : 188),
    // a restore varies by ±20% from run to run on a shared 2-core machine: more runs for a steadier median
    restoreRuns: num('BENCH_RESTORE_RUNS', quick ? runs : Math.max(runs, 7)),
    memoryClients: num('BENCH_MEMORY_CLIENTS', 20),
    memoryMB: num('BENCH_MEMORY_MB', 200),
    agentCounts: (process.env.BENCH_AGENTS ?? '50,200').split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x > 0),
    agentSeconds: num('BENCH_AGENT_SECONDS', quick ? 8 : 10),
    agentConnections: num('BENCH_AGENT_CONNECTIONS', 16),
    agentProcs: num('BENCH_AGENT_PROCS', availableParallelism()),
    agentPackages: num('BENCH_RESTORE_PACKAGES', 188),
    only: onlyRaw.length ? (onlyRaw as ScenarioName[]) : [...SCENARIOS],
    timeouts: process.env.BENCH_TIMEOUT
      ? Object.fromEntries(SCENARIOS.map((n) => [n, num('BENCH_TIMEOUT', 1)])) as Record<ScenarioName, number>
      : quick
        ? { warm: 300, herd: 120, metadata: 240, restore: 420, memory: 150, s3: 150, 's3-clients': 120, agents: 300 }
        : { warm: 720, herd: 240, metadata: 480, restore: 720, memory: 240, s3: 300, 's3-clients': 400, agents: 600 },
    cpuProf: process.env.BENCH_CPU_PROF === '1',
    waitQuietSeconds: process.env.BENCH_WAIT_QUIET === undefined ? (quick ? 0 : 60) : Number(process.env.BENCH_WAIT_QUIET) || 0,
    keepTemp: process.env.BENCH_KEEP === '1',
    root,
    outDir: resolve(root, '.bench'),
    distMain: resolve(root, 'dist/main.js'),
  };
}
