// 5. Memory: peak RSS of nuproxy while 20 clients download a 200 MB package, cold (the download from the upstream
// is shared while it arrives) and warm (from the cache). A fresh process for each measurement; the peak is the
// kernel's high-water mark (VmHWM), with the RSS also sampled every 20 ms.
import { join } from 'node:path';
import type { Ctx, Scenario } from '../lib/context.js';
import { getOk } from '../lib/http.js';
import { herd } from '../lib/load.js';
import { rssOf, startNuproxy } from '../lib/nuproxy.js';
import { flatPath, packageSet } from '../lib/packages.js';
import { check, fmt, median, type ScenarioOutput } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';

const MB = 1e6;

interface Sample {
  idleRss: number;
  peakRss: number;
  sampledPeak: number;
  seconds: number;
  errors: number;
  fetches: number;
}

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  log(`memory: generating the ${s.memoryMB} MB package`);
  const set = await packageSet(s.outDir, 'memory', [{ id: 'Bench.Memory', version: '1.0.0', padBytes: s.memoryMB * 1_000_000 }]);
  const ref = set.refs[0]!;
  const up = await startUpstream(scope, [set.dir]);
  const work = await scope.tempDir('memory');
  const results: { cold: Sample; warm: Sample }[] = [];
  for (let r = 0; r < s.runs; r++) {
    const cacheDir = join(work, `cache-${r}`);
    const pair: Partial<{ cold: Sample; warm: Sample }> = {};
    for (const phase of ['cold', 'warm'] as const) {
      scope.check();
      const proxy = await startNuproxy(scope, s, {
        upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }],
        cacheDir,
        workDir: work,
        label: `nuproxy-memory-${phase}-${r}`,
      });
      await getOk(proxy.index);
      const idle = rssOf(proxy.pid)!;
      let sampledPeak = idle.rss;
      const timer = setInterval(() => {
        const m = rssOf(proxy.pid);
        if (m && m.rss > sampledPeak) sampledPeak = m.rss;
      }, 20);
      await up.resetHits();
      const started = performance.now();
      let h;
      try {
        h = await herd(scope, `${proxy.url}v3/flat/${flatPath(ref)}`, s.memoryClients, ref.size, 300_000);
      } finally {
        clearInterval(timer);
      }
      const seconds = (performance.now() - started) / 1000;
      const end = rssOf(proxy.pid)!;
      const fetches = await up.hits(/\.nupkg$/);
      await proxy.stop();
      const sample: Sample = { idleRss: idle.rss, peakRss: end.hwm, sampledPeak, seconds, errors: h.errors.length, fetches };
      pair[phase] = sample;
      log(
        `memory: run ${r + 1}/${s.runs} ${phase}: idle ${fmt(idle.rss / MB)} MB, peak ${fmt(end.hwm / MB)} MB, ` +
          `${fmt(seconds)} s, ${fetches} upstream fetch(es)${h.errors.length ? `, ${h.errors.length} client errors (${h.errors[0]})` : ''}`,
      );
      if (h.errors.length) throw new Error(`memory ${phase}: clients failed: ${h.errors[0]}`);
    }
    results.push(pair as { cold: Sample; warm: Sample });
  }
  const rows = (['cold', 'warm'] as const).map((phase) => {
    const l = results.map((x) => x[phase]);
    return [
      phase,
      fmt(median(l.map((x) => x.idleRss / MB))),
      fmt(median(l.map((x) => x.peakRss / MB))),
      fmt(median(l.map((x) => (x.peakRss - x.idleRss) / MB))),
      fmt(median(l.map((x) => x.seconds))),
      fmt(median(l.map((x) => (s.memoryClients * ref.size) / MB / x.seconds))),
    ];
  });
  return {
    tables: [
      {
        title: `5. Memory: nuproxy RSS while ${s.memoryClients} clients download a ${fmt(ref.size / MB)} MB package (fresh process each, median of ${s.runs}; MB = 10^6 bytes)`,
        columns: ['Cache', 'idle RSS MB', 'peak RSS MB', 'peak - idle MB', 'all done s', 'total MB/s'],
        rows,
      },
    ],
    checks: (['cold', 'warm'] as const).map((phase) => check('Memory', `peak RSS, ${phase}`, results.map((x) => x[phase].peakRss / MB), '<', 200, 'MB')),
    notes: [],
    data: { bytes: ref.size, clients: s.memoryClients, runs: results },
  };
}

export const memoryScenario: Scenario = { name: 'memory', title: 'Memory', run };
