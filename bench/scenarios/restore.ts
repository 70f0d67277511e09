// 4. Restore: `dotnet restore` of a project with a large dependency closure (the machine's real packages plus
// generated ones, ~200 packages), empty client folders every time, through (a) a warm nuproxy, (b) nginx serving a
// static V3 feed of the same packages, (c) a cold nuproxy in front of the test upstream, (d) the test upstream,
// (e) a cold nuproxy with the S3 backend (storage.kind s3, an s3rver bucket in a process of its own, a fresh
// key prefix and cache dir each run), (f) a cold cache in a process that has already served a disjoint closure of
// the same shape (a long-running instance meeting new packages: its JIT warm, its cache cold for these).
import { join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { buildStaticFeed, packageSet } from '../lib/packages.js';
import { startNginx } from '../lib/nginx.js';
import { startNuproxy } from '../lib/nuproxy.js';
import { startS3Server } from '../lib/s3proc.js';
import { cpuSecondsOf } from '../lib/machine.js';
import { check, fmt, median, type ScenarioOutput } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';
import { restoreOnce, restoreSpecs } from '../lib/restore-closure.js';
import { S3RVER_KEY, S3RVER_SECRET } from '../../test/support/s3.js';

type Variant = 'a' | 'b' | 'c' | 'd' | 'e' | 'f';
const LABELS: Record<Variant, string> = {
  a: '(a) warm nuproxy',
  b: '(b) nginx static V3 feed',
  c: '(c) cold nuproxy → test upstream',
  d: '(d) test upstream directly',
  e: '(e) cold nuproxy, S3 backend → test upstream',
  f: '(f) cold cache, process warm (served another closure first) → test upstream',
};

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const nginxBin = need(ctx, 'nginx');
  const real = need(ctx, 'realPackages');
  need(ctx, 'dotnet');
  log(`restore: generating ${s.restoreGenerated} packages (x3 versions)`);
  const set = await packageSet(s.outDir, `restore-${s.restoreGenerated}`, restoreSpecs(s.restoreGenerated));
  const work = await scope.tempDir('restore');
  const prime = await packageSet(s.outDir, `prime-${s.restoreGenerated}`, restoreSpecs(s.restoreGenerated, 'Bench.Prime'));
  const up = await startUpstream(scope, [real, set.dir, prime.dir]);
  const staticRoot = join(work, 'static');
  const nginx = await startNginx(scope, nginxBin, join(work, 'nginx'), { kind: 'static', locations: [{ prefix: '/v3/', dir: join(staticRoot, 'v3') }] });
  const files = await buildStaticFeed(staticRoot, nginx.url, [real, set.dir]);
  log(`restore: static feed of ${files} packages`);
  const timeoutMs = 300_000;
  const bucket = await startS3Server(scope, 'bench-restore');
  process.env.BENCH_S3_KEY = S3RVER_KEY;
  process.env.BENCH_S3_SECRET = S3RVER_SECRET;
  const s3Storage = (prefix: string): Record<string, unknown> => ({
    kind: 's3',
    s3: { endpoint: bucket.endpoint, bucket: bucket.bucket, region: 'us-east-1', prefix, forcePathStyle: true, accessKeyIdEnv: 'BENCH_S3_KEY', secretAccessKeyEnv: 'BENCH_S3_SECRET' },
  });
  const warmProxy = await startNuproxy(scope, s, {
    upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }],
    cacheDir: join(work, 'cache-warm'),
    workDir: work,
    label: 'nuproxy-restore-warm',
  });
  // prime the warm proxy, and let dotnet warm its own caches (SDK resolution, MSBuild) on the static feed
  const primed = await restoreOnce(scope, warmProxy.index, timeoutMs);
  log(`restore: primed the warm nuproxy in ${fmt(primed.ms / 1000)} s (${primed.packages} packages)`);
  const first = await restoreOnce(scope, `${nginx.url}v3/index.json`, timeoutMs);
  log(`restore: warm-up restore from nginx in ${fmt(first.ms / 1000)} s (${first.packages} packages)`);

  const times: Record<Variant, number[]> = { a: [], b: [], c: [], d: [], e: [], f: [] };
  const counts: Record<Variant, number[]> = { a: [], b: [], c: [], d: [], e: [], f: [] };
  // CPU seconds per cold restore: nuproxy's (c, e) and the bucket server's (e), which share the two cores with dotnet
  const cpu = { c: [] as number[], e: [] as number[], f: [] as number[], s3: [] as number[] };
  const rotations: Variant[][] = [
    ['a', 'b', 'c', 'd', 'e', 'f'],
    ['f', 'e', 'd', 'c', 'b', 'a'],
    ['b', 'a', 'f', 'e', 'd', 'c'],
    ['d', 'f', 'e', 'a', 'c', 'b'],
  ];
  for (let r = 0; r < s.restoreRuns; r++) {
    for (const v of rotations[r % rotations.length]!) {
      scope.check();
      let res: { ms: number; packages: number };
      if (v === 'c' || v === 'e' || v === 'f') {
        const cold = await startNuproxy(scope, s, {
          upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }],
          cacheDir: join(work, `cache-cold-${v}-${r}`),
          workDir: work,
          label: `nuproxy-restore-cold-${v}-${r}`,
          ...(v === 'e' ? { storage: s3Storage(`cold-${r}/`) } : {}),
        });
        if (v === 'f') await restoreOnce(scope, cold.index, timeoutMs, 'Bench.Prime');
        const cpu0 = [cpuSecondsOf(cold.pid), cpuSecondsOf(bucket.pid)];
        res = await restoreOnce(scope, cold.index, timeoutMs);
        cpu[v].push(cpuSecondsOf(cold.pid) - cpu0[0]!);
        if (v === 'e') cpu.s3.push(cpuSecondsOf(bucket.pid) - cpu0[1]!);
        await cold.stop();
      } else {
        const source = v === 'a' ? warmProxy.index : v === 'b' ? `${nginx.url}v3/index.json` : up.serviceIndexUrl;
        res = await restoreOnce(scope, source, timeoutMs);
      }
      times[v].push(res.ms);
      counts[v].push(res.packages);
      log(`restore: run ${r + 1}/${s.restoreRuns} ${LABELS[v]}: ${fmt(res.ms / 1000)} s, ${res.packages} packages`);
    }
  }
  const allCounts = new Set(Object.values(counts).flat());
  if (allCounts.size !== 1) throw new Error(`restores brought different numbers of packages: ${JSON.stringify(counts)}`);
  const ab = times.a.map((a, i) => a / times.b[i]!);
  const cd = times.c.map((c, i) => c / times.d[i]!);
  const ed = times.e.map((e, i) => e / times.d[i]!);
  const fd = times.f.map((f, i) => f / times.d[i]!);
  const rows = (['a', 'b', 'c', 'd', 'e', 'f'] as Variant[]).map((v) => [
    LABELS[v],
    fmt(median(times[v]) / 1000, 2),
    times[v].map((t) => fmt(t / 1000, 2)).join(' / '),
  ]);
  rows.push(['ratio a/b (warm nuproxy / nginx static)', `${fmt(median(ab))}×`, ab.map((x) => fmt(x)).join(' / ')]);
  rows.push(['ratio c/d (cold nuproxy / upstream directly)', `${fmt(median(cd))}×`, cd.map((x) => fmt(x)).join(' / ')]);
  rows.push(['ratio e/d (cold nuproxy, S3 / upstream directly)', `${fmt(median(ed))}×`, ed.map((x) => fmt(x)).join(' / ')]);
  rows.push(['ratio f/d (cold cache, warm process / upstream directly)', `${fmt(median(fd))}×`, fd.map((x) => fmt(x)).join(' / ')]);
  return {
    tables: [
      {
        title: `4. Restore: dotnet restore, ${[...allCounts][0]} packages in the closure, empty client folders each time, median of ${s.restoreRuns}`,
        columns: ['Source', 'wall s', 'runs'],
        rows,
      },
    ],
    checks: [
      check('Restore', 'warm nuproxy / nginx static (a/b)', ab, '<=', 1.1),
      check('Restore', 'cold nuproxy / upstream directly (c/d)', cd, '<=', 1.1),
      check('Restore', 'cold restore S3 / upstream', ed, '<=', 1.1),
    ],
    notes: [
      `CPU per cold restore (median): nuproxy ${fmt(median(cpu.c), 2)} s on the disk (c), ${fmt(median(cpu.f), 2)} s in a process that had served another closure (f), nuproxy ${fmt(median(cpu.e), 2)} s with the S3 backend (e), the bucket server (s3rver, on the same cores) ${fmt(median(cpu.s3), 2)} s in (e)`,
    ],
    data: { packages: [...allCounts][0], generated: s.restoreGenerated, timesMs: times, ratios: { ab, cd, ed, fd }, cpuSeconds: cpu },
  };
}

export const restoreScenario: Scenario = { name: 'restore', title: 'Restore', run };
