// 1. Warm packages: the same .nupkg files served by nuproxy from its cache, by nginx (sendfile, open_file_cache)
// from the very same folder (nuproxy's cache dir) and by a bare node:http server from memory (Node's ceiling),
// 64 connections, wrk. nuproxy with one worker, one worker per core, and those workers with each feature of the
// other issues on (warm/servers.ts), all interleaved in the same runs; tables and targets in warm/tables.ts.
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { packageSet } from '../lib/packages.js';
import { fmt, type ScenarioOutput } from '../lib/report.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { FEATURE_MAX_BYTES, startWarmServers, type Who } from './warm/servers.js';
import { warmTables, type Runs } from './warm/tables.js';

// At 64 connections one round of 50 MB responses is 3.2 GB: the big size gets a longer measurement, so that every
// connection completes several responses and req/s and p99 mean something.
export const SIZES = [
  { label: '10 KB', bytes: 10_000, minSeconds: 0 },
  { label: '1 MB', bytes: 1_000_000, minSeconds: 0 },
  { label: '50 MB', bytes: 50_000_000, minSeconds: 15 },
];
// zip/nuspec overhead of a generated package, so the file is close to the nominal size
const OVERHEAD = 1100;
const CORE: Who[] = ['nginx', 'bare', 'nuproxy', 'nuproxyTok', 'nuproxy1'];
const FEATURES: Who[] = ['nuproxyCool', 'nuproxyMax', 'nuproxyAll'];

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const wrk = need(ctx, 'wrk');
  need(ctx, 'nginx');
  const specs = SIZES.map((z) => ({ id: `Bench.Warm.S${z.bytes}`, version: '1.0.0', padBytes: Math.max(0, z.bytes - OVERHEAD) }));
  log('warm: generating packages');
  const set = await packageSet(s.outDir, 'warm', specs);
  const work = await scope.tempDir('warm');
  const sv = await startWarmServers(ctx, set.dir, set.refs, work);
  // who is measured at each size: the feature rows (but the token's) only up to 1 MB, to keep the time bounded
  const whoAt = (i: number): Who[] => (SIZES[i]!.bytes <= FEATURE_MAX_BYTES ? [...CORE, ...FEATURES] : CORE);
  const measure = (who: Who, i: number, seconds: number): Promise<WrkResult> =>
    runWrk(scope, s, wrk, sv.base[who] + sv.paths[i]!, { workDir: work, seconds, headers: sv.headers(who) });

  // one discarded run per server and size: JIT-compiled hot paths, page cache, like a server that has been up a while
  for (const [i, z] of SIZES.entries()) {
    for (const who of whoAt(i)) {
      scope.check();
      const w = await measure(who, i, s.warmupSeconds);
      log(`warm: warm-up ${z.label} ${who}: ${fmt(w.requestsPerSec)} req/s (discarded)`);
    }
  }
  await sv.up.resetHits();
  const results: Runs[] = SIZES.map(() => []);
  for (let r = 0; r < s.runs; r++) {
    for (const [i, z] of SIZES.entries()) {
      const list = whoAt(i);
      // each run starts with another server, and the order turns: every server goes first in turn
      const k = (r * 3 + i) % list.length;
      const order = [...list.slice(k), ...list.slice(0, k)];
      const one: Partial<Record<Who, WrkResult>> = {};
      for (const who of order) {
        scope.check();
        const w = await measure(who, i, Math.max(s.wrkSeconds, s.quick ? z.minSeconds / 2 : z.minSeconds));
        if (w.errors > 0) log(`warm: ${who} ${z.label}: ${w.errors} errors`);
        one[who] = w;
        log(`warm: run ${r + 1}/${s.runs} ${z.label} ${who}: ${fmt(w.requestsPerSec)} req/s, ${fmt(w.bytesPerSec / 1e6)} MB/s, p99 ${fmt(w.p99Ms)} ms`);
      }
      results[i]!.push(one);
    }
  }
  // warm means warm: only the cooldown gate's registration reads may reach the upstream (it stays up for them)
  const upstream = await sv.up.requests();
  await sv.up.close();
  const out = warmTables(s, SIZES, set.refs, sv.workers, results);
  const kinds = [...new Set(upstream.map((r) => r.replace(/^GET \/([^/]+\/).*$/, '$1')))];
  out.notes.push(`upstream requests during the measurements: ${upstream.length}${upstream.length ? ` (${kinds.join(', ')})` : ''}`);
  out.data.upstreamRequests = upstream;
  return out;
}

export const warmScenario: Scenario = { name: 'warm', title: 'Warm packages', run };
