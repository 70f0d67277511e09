// 2. Herd: 100 clients ask at once for one uncached 50 MB package from an upstream throttled to a fixed rate.
// nuproxy vs nginx (proxy_cache + proxy_cache_lock) in front of the same upstream; each run starts both cold.
import { join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { getOk } from '../lib/http.js';
import { herd, type HerdResult } from '../lib/load.js';
import { startNginx } from '../lib/nginx.js';
import { startNuproxy } from '../lib/nuproxy.js';
import { flatPath, packageSet } from '../lib/packages.js';
import { check, fmt, median, type ScenarioOutput } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';

interface One extends HerdResult {
  fetches: number;
}

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const nginxBin = need(ctx, 'nginx');
  log('herd: generating the package');
  const set = await packageSet(s.outDir, 'herd', [{ id: 'Bench.Herd', version: '1.0.0', padBytes: s.herdMB * 1_000_000 }]);
  const ref = set.refs[0]!;
  const up = await startUpstream(scope, [set.dir]);
  const nupkgRe = /\.nupkg$/;
  const rate = s.herdRateMBps * 1e6;
  await up.setFault(nupkgRe, { kind: 'throttle', bytesPerSecond: rate });
  const expectedSeconds = ref.size / rate;
  const timeoutMs = Math.round(expectedSeconds * 1000 * 10 + 60_000);
  const work = await scope.tempDir('herd');

  const runs: { nuproxy: One; nginx: One }[] = [];
  for (let r = 0; r < s.runs; r++) {
    const order = r % 2 === 0 ? (['nuproxy', 'nginx'] as const) : (['nginx', 'nuproxy'] as const);
    const pair: Partial<{ nuproxy: One; nginx: One }> = {};
    for (const who of order) {
      scope.check();
      let url: string;
      let stop: () => Promise<void>;
      if (who === 'nuproxy') {
        const p = await startNuproxy(scope, s, {
          upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }],
          cacheDir: join(work, `cache-${r}`),
          workDir: work,
          label: `nuproxy-herd-${r}`,
        });
        await getOk(p.index); // the service index is warm; the package is not
        url = `${p.url}v3/flat/${flatPath(ref)}`;
        stop = p.stop;
      } else {
        const n = await startNginx(scope, nginxBin, join(work, `nginx-${r}`), { kind: 'cache', upstream: up.origin });
        url = `${n.url}v3-flatcontainer/${flatPath(ref)}`;
        stop = n.stop;
      }
      await up.resetHits();
      const h = await herd(scope, url, s.herdClients, ref.size, timeoutMs);
      const fetches = await up.hits(nupkgRe);
      await stop();
      pair[who] = { ...h, fetches };
      log(
        `herd: run ${r + 1}/${s.runs} ${who}: ${fetches} upstream fetch(es), first ${fmt(h.firstMs)} ms, last ${fmt(h.lastMs)} ms` +
          (h.errors.length ? `, ${h.errors.length} client errors (${h.errors[0]})` : ''),
      );
    }
    runs.push(pair as { nuproxy: One; nginx: One });
  }

  const m = (who: 'nuproxy' | 'nginx', f: (o: One) => number): number => median(runs.map((p) => f(p[who])));
  const spread = (o: One): number => o.lastMs / o.firstMs;
  const rows = (['nuproxy', 'nginx'] as const).map((who) => [
    who === 'nginx' ? 'nginx proxy_cache + lock' : 'nuproxy',
    runs.map((p) => String(p[who].fetches)).join(' / '),
    fmt(m(who, (o) => o.firstMs)),
    fmt(m(who, (o) => o.lastMs)),
    `${fmt(m(who, spread))}×`,
    fmt(m(who, (o) => median(o.results.map((x) => x.ttfbMs)))),
    String(runs.reduce((a, p) => a + p[who].errors.length, 0)),
  ]);
  const nuFetches = runs.map((p) => p.nuproxy.fetches);
  const checks = [
    check('Herd', 'nuproxy upstream fetches', nuFetches, '==', 1, 'fetch'),
    check('Herd', 'nuproxy last/first client TTLB', runs.map((p) => spread(p.nuproxy)), '<=', 1.1),
    check('Herd', 'fetches nuproxy/nginx', runs.map((p) => p.nuproxy.fetches / p.nginx.fetches), '<=', 1),
    check('Herd', 'spread nuproxy/nginx (last/first)', runs.map((p) => spread(p.nuproxy) / spread(p.nginx)), '<', 1),
  ];
  const lastRatio = runs.map((p) => p.nuproxy.lastMs / p.nginx.lastMs);
  // any run with a wrong fetch count fails the "exactly 1" target, whatever the median
  checks[0]!.pass = nuFetches.every((f) => f === 1);
  return {
    tables: [
      {
        title:
          `2. Herd: ${s.herdClients} clients at once, one uncached ${fmt(ref.size / 1e6)} MB package, upstream throttled to ` +
          `${s.herdRateMBps} MB/s (≈ ${fmt(expectedSeconds)} s), median of ${s.runs}`,
        columns: ['Server', 'upstream fetches (per run)', 'first TTLB ms', 'last TTLB ms', 'last/first', 'median TTFB ms', 'client errors'],
        rows,
      },
    ],
    checks,
    notes: [
      `last client done: nuproxy/nginx = ${fmt(median(lastRatio))}× (per run ${lastRatio.map((x) => fmt(x)).join(' / ')}); ` +
        `${fmt((s.herdClients * ref.size) / 1e6)} MB go to the clients in all, so past the upstream's ${fmt(expectedSeconds)} s ` +
        'the herd measures how fast each server pushes bytes to 100 sockets',
    ],
    data: {
      lastRatio,
      bytes: ref.size,
      rateBytesPerSec: rate,
      runs: runs.map((p) => ({
        nuproxy: { fetches: p.nuproxy.fetches, firstMs: p.nuproxy.firstMs, lastMs: p.nuproxy.lastMs, errors: p.nuproxy.errors, ttlbMs: p.nuproxy.results.map((x) => Math.round(x.ttlbMs)) },
        nginx: { fetches: p.nginx.fetches, firstMs: p.nginx.firstMs, lastMs: p.nginx.lastMs, errors: p.nginx.errors, ttlbMs: p.nginx.results.map((x) => Math.round(x.ttlbMs)) },
      })),
    },
  };
}

export const herdScenario: Scenario = { name: 'herd', title: 'Herd', run };
