// 8. Many agents at once: the request sequence of one real `dotnet restore` of the restore scenario's closure
// (~200 packages, empty client folders, --no-http-cache), captured from each server's own access log, replayed by
// 50 and 200 simulated agents at once (bench/agents-client.ts, a process of its own), against a warm nuproxy
// (one worker per core: the target; one worker beside it) and nginx serving the same packages as a static feed.
//
// Replay model: the captured requests in the order the client started them, with at most C in flight per agent,
// C = the most requests the client had in flight at once in nuproxy's capture (capped by BENCH_AGENT_CONNECTIONS;
// nginx answers below its log's millisecond resolution, so its capture shows no overlap: both servers get the same C):
// each agent has C keep-alive connections, and each connection takes the next request of the sequence as soon as
// its previous answer is fully read. So a request never starts before those the client started before it, and
// never more run at once than the client ran; the client's own think time (MSBuild, NuGet's resolver between
// rounds) is left out, which asks more of the server than real agents would. Each server is replayed its own
// capture (nuproxy's sequence reads its service index, nginx's the static one), so paths are exact on both.
// Every status must be the captured one and every body as long as its Content-Length.
import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { runAgents, type AgentsFigures } from '../lib/agents-load.js';
import { nginxRequests, nuproxyRequests, toSequence, type Sequence } from '../lib/capture.js';
import { startNginx } from '../lib/nginx.js';
import { startNuproxy } from '../lib/nuproxy.js';
import { buildStaticFeed, packageSet } from '../lib/packages.js';
import { check, fmt, median, type ScenarioOutput } from '../lib/report.js';
import { restoreOnce, restoreSpecs } from '../lib/restore-closure.js';
import { startUpstream } from '../lib/upstream.js';

type Who = 'nuproxy' | 'nuproxy1' | 'nginx';
const ORDERS: Who[][] = [
  ['nginx', 'nuproxy', 'nuproxy1'],
  ['nuproxy', 'nuproxy1', 'nginx'],
  ['nuproxy1', 'nginx', 'nuproxy'],
];

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const nginxBin = need(ctx, 'nginx');
  const real = need(ctx, 'realPackages');
  need(ctx, 'dotnet');
  const set = await packageSet(s.outDir, `restore-${s.agentPackages}`, restoreSpecs(s.agentPackages));
  const work = await scope.tempDir('agents');
  const up = await startUpstream(scope, [real, set.dir]);
  const staticRoot = join(work, 'static');
  const nginxDir = join(work, 'nginx');
  const nginx = await startNginx(scope, nginxBin, nginxDir, { kind: 'static', locations: [{ prefix: '/v3/', dir: join(staticRoot, 'v3') }], timedLog: true });
  const files = await buildStaticFeed(staticRoot, nginx.url, [real, set.dir]);
  log(`agents: static feed of ${files} packages`);
  const timeoutMs = 300_000;
  const cacheDir = join(work, 'cache');
  const upstreams = [{ name: 'bench', serviceIndex: up.serviceIndexUrl }];
  const proxy1 = await startNuproxy(scope, s, { upstreams, cacheDir, workDir: work, label: 'nuproxy-agents-1' });

  // prime (cold), then capture a warm restore from nuproxy's access log; the same from nginx's after a warm-up
  const primed = await restoreOnce(scope, proxy1.index, timeoutMs);
  log(`agents: primed nuproxy in ${fmt(primed.ms / 1000)} s (${primed.packages} packages)`);
  let from = sizeOf(proxy1.logFile);
  const capProxy = await restoreOnce(scope, proxy1.index, timeoutMs);
  const seqProxy = toSequence(nuproxyRequests(proxy1.logFile, from));
  await restoreOnce(scope, `${nginx.url}v3/index.json`, timeoutMs);
  const accessLog = join(nginxDir, 'access.log');
  from = sizeOf(accessLog);
  const capNginx = await restoreOnce(scope, `${nginx.url}v3/index.json`, timeoutMs);
  const seqNginx = toSequence(nginxRequests(accessLog, from));
  for (const [who, seq, cap] of [['nuproxy', seqProxy, capProxy], ['nginx', seqNginx, capNginx]] as const) {
    log(`agents: captured ${who}: ${seq.requests.length} requests ${JSON.stringify(seq.kinds)}, at most ${seq.maxConcurrency} in flight, dotnet restore ${fmt(cap.ms / 1000)} s (requests ${fmt(seq.wallMs)} ms)`);
  }
  if (capProxy.packages !== capNginx.packages) throw new Error(`restores brought ${capProxy.packages} (nuproxy) and ${capNginx.packages} (nginx) packages`);

  // the target configuration: one worker per core, on the same cache; primed by replays until no request reaches
  // the upstream, then the upstream goes (warm means warm)
  const workers = availableParallelism();
  const proxyN = await startNuproxy(scope, s, { upstreams, cacheDir, workDir: work, label: 'nuproxy-agents-workers', workers });
  // the client's concurrency, seen where answers take long enough to overlap (nginx's log has ms resolution)
  const concurrency = Math.min(Math.max(seqProxy.maxConcurrency, seqNginx.maxConcurrency), s.agentConnections);
  const procs = s.agentProcs;
  for (const [who, url] of [['nuproxy', proxyN.url], ['nuproxy1', proxy1.url]] as const) {
    for (let round = 0; ; round++) {
      await up.resetHits();
      const f = await runAgents(scope, url, seqProxy, { agents: 2 * workers, connections: concurrency, seconds: 1, procs });
      const hits = await up.hits(/./);
      if (f.errors > 0) throw new Error(`agents: priming ${who}: ${f.errors} errors: ${f.errorSamples.join('; ')}`);
      if (hits === 0) break;
      if (round >= 4) throw new Error(`agents: ${who} still sent ${hits} requests upstream after ${round + 1} replays`);
    }
  }
  await up.close();

  const servers: Record<Who, { url: string; seq: Sequence }> = {
    nuproxy: { url: proxyN.url, seq: seqProxy },
    nuproxy1: { url: proxy1.url, seq: seqProxy },
    nginx: { url: nginx.url, seq: seqNginx },
  };
  // one discarded round per server (JIT, page cache), at the smallest agent count
  for (const who of ORDERS[0]!) {
    scope.check();
    await runAgents(scope, servers[who].url, servers[who].seq, { agents: s.agentCounts[0]!, connections: concurrency, seconds: Math.min(3, s.agentSeconds), procs });
  }
  const results = new Map<number, Record<Who, AgentsFigures>[]>(s.agentCounts.map((n) => [n, []]));
  for (let r = 0; r < s.runs; r++) {
    for (const agents of s.agentCounts) {
      const one: Partial<Record<Who, AgentsFigures>> = {};
      for (const who of ORDERS[r % ORDERS.length]!) {
        scope.check();
        const f = await runAgents(scope, servers[who].url, servers[who].seq, { agents, connections: concurrency, seconds: s.agentSeconds, procs });
        one[who] = f;
        log(`agents: run ${r + 1}/${s.runs} ${agents} agents ${who}: ${fmt(f.restoresPerSec)} restores/s, p99 ${fmt(f.p99Ms)} ms, ${fmt(f.requestsPerSec)} req/s, ${f.errors} errors, generator ${fmt(f.generatorCores * 100)}% of a core (${procs} processes)`);
        if (f.errors) log(`agents: ${who} errors: ${f.errorSamples.slice(0, 3).join('; ')}`);
      }
      results.get(agents)!.push(one as Record<Who, AgentsFigures>);
    }
  }

  const label: Record<Who, string> = { nuproxy: `nuproxy (${workers} workers)`, nuproxy1: 'nuproxy (1 worker)', nginx: 'nginx static' };
  const rows: string[][] = [];
  const ratios = new Map<number, { multi: number[]; single: number[] }>();
  for (const [agents, runs] of results) {
    const m = (who: Who, f: (x: AgentsFigures) => number): number => median(runs.map((x) => f(x[who])));
    for (const who of ['nginx', 'nuproxy', 'nuproxy1'] as Who[]) {
      rows.push([
        String(agents),
        label[who],
        fmt(m(who, (x) => x.restoresPerSec), 2),
        fmt(m(who, (x) => x.p50Ms)),
        fmt(m(who, (x) => x.p99Ms)),
        fmt(m(who, (x) => x.requestsPerSec)),
        fmt(m(who, (x) => x.mbPerSec)),
        String(runs.reduce((a, x) => a + x[who].errors, 0)),
        `${fmt(m(who, (x) => x.generatorCores * 100), 0)}%`,
      ]);
    }
    const multi = runs.map((x) => x.nuproxy.restoresPerSec / x.nginx.restoresPerSec);
    const single = runs.map((x) => x.nuproxy1.restoresPerSec / x.nginx.restoresPerSec);
    ratios.set(agents, { multi, single });
    rows.push([String(agents), `ratio nuproxy (${workers} workers) / nginx`, `${fmt(median(multi))}×`, '', '', '', '', '', '']);
    rows.push([String(agents), 'ratio nuproxy (1 worker) / nginx', `${fmt(median(single))}×`, '', '', '', '', '', '']);
  }
  const top = s.agentCounts[s.agentCounts.length - 1]!;
  const topRuns = results.get(top)!;
  const topErrors = topRuns.map((x) => x.nuproxy.errors + x.nuproxy1.errors + x.nginx.errors);
  const kinds = (q: Sequence): string => `${q.kinds.index} index, ${q.kinds.versionList} version lists, ${q.kinds.registration} registration, ${q.kinds.nupkg} nupkg${q.kinds.other ? `, ${q.kinds.other} other` : ''}`;
  return {
    tables: [
      {
        title: `8. Many agents at once: a captured dotnet restore (${primed.packages} packages; nuproxy: ${kinds(seqProxy)}; nginx: ${kinds(seqNginx)}; ≤ ${concurrency} in flight per agent) replayed by N agents for ${s.agentSeconds} s, ${procs} generator processes, median of ${s.runs}`,
        columns: ['Agents', 'Server', 'restores/s', 'p50 ms', 'p99 ms', 'req/s', 'MB/s', 'errors', 'generator CPU'],
        rows,
      },
    ],
    checks: [
      check('Agents', `restores/s nuproxy/nginx at ${top} agents`, ratios.get(top)!.multi, '>=', 0.7),
      check('Agents', `errors at ${top} agents`, topErrors, '==', 0, 'errors'),
    ],
    notes: [
      `generator CPU: the load generator's own CPU use (${procs} processes, in % of one core) during each window; on a machine with ${availableParallelism()} cores shared by server and generator, the figures are a ratio of two CPU-bound systems, not a server's ceiling`,
    ],
    data: {
      workers,
      seconds: s.agentSeconds,
      capture: {
        nuproxy: { requests: seqProxy.requests.length, kinds: seqProxy.kinds, maxConcurrency: seqProxy.maxConcurrency, wallMs: seqProxy.wallMs, restoreMs: capProxy.ms, sequence: seqProxy.requests },
        nginx: { requests: seqNginx.requests.length, kinds: seqNginx.kinds, maxConcurrency: seqNginx.maxConcurrency, wallMs: seqNginx.wallMs, restoreMs: capNginx.ms, sequence: seqNginx.requests },
      },
      runs: Object.fromEntries([...results].map(([n, runs]) => [n, runs.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, { ...v, errorSamples: v.errorSamples.slice(0, 3) }])))])),
      ratios: Object.fromEntries([...ratios]),
    },
  };
}

export const agentsScenario: Scenario = { name: 'agents', title: 'Many agents', run };
