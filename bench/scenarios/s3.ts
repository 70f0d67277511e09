// 6. The S3 backend against the disk backend, in the same run: cold misses (upstream -> client while the bytes go
// up to the bucket, or to the disk) and warm hits (small packages from each instance's memory tier, larger ones
// from the bucket or the disk), plus an instance that never saw a package serving it from the bucket, and one with
// the local disk tier on (storage.localTier) serving it from its tier, filled by its first read. The bucket
// is s3rver (test/support/s3.ts) in this process, on loopback: a real S3-compatible server, not a fast one, so
// the ratios say what the backend costs over a local object store, not over AWS.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { getOk, header, sha256 } from '../lib/http.js';
import { startNuproxy, type NuproxyProc } from '../lib/nuproxy.js';
import { flatPath, packageSet } from '../lib/packages.js';
import { check, fmt, median, type ScenarioOutput } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3 } from '../../test/support/s3.js';

const SIZES = [
  { label: '10 KB', bytes: 10_000 },
  { label: '1 MB', bytes: 1_000_000 },
  { label: '20 MB', bytes: 20_000_000 },
];
const OVERHEAD = 1100;

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const wrk = need(ctx, 'wrk');
  // one package per size and run for the cold misses, one per size for the warm rows
  const specs = SIZES.flatMap((z) => Array.from({ length: s.runs + 1 }, (_, r) => ({ id: `Bench.S3.S${z.bytes}.R${r}`, version: '1.0.0', padBytes: Math.max(0, z.bytes - OVERHEAD) })));
  log('s3: generating packages');
  const set = await packageSet(s.outDir, 's3', specs);
  const up = await startUpstream(scope, [set.dir]);
  const bucket = await startS3('bench-nupkgs');
  scope.onClose(() => bucket.close());
  process.env.BENCH_S3_KEY = S3RVER_KEY;
  process.env.BENCH_S3_SECRET = S3RVER_SECRET;
  const work = await scope.tempDir('s3');
  const storage = { kind: 's3', s3: { endpoint: bucket.endpoint, bucket: bucket.bucket, region: 'us-east-1', prefix: '', forcePathStyle: true, accessKeyIdEnv: 'BENCH_S3_KEY', secretAccessKeyEnv: 'BENCH_S3_SECRET' } };
  const upstreams = [{ name: 'bench', serviceIndex: up.serviceIndexUrl }];
  const disk = await startNuproxy(scope, s, { upstreams, cacheDir: join(work, 'disk'), workDir: work, label: 'nuproxy-s3-disk' });
  const s3 = await startNuproxy(scope, s, { upstreams, cacheDir: join(work, 's3a'), workDir: work, label: 'nuproxy-s3-bucket', storage });

  const ref = (z: number, r: number): (typeof set.refs)[number] => set.refs[z * (s.runs + 1) + r]!;
  const path = (z: number, r: number): string => `v3/flat/${flatPath(ref(z, r))}`;
  const timedMiss = async (p: NuproxyProc, z: number, r: number): Promise<number> => {
    const want = sha256(await readFile(ref(z, r).file));
    const t = performance.now();
    const got = await getOk(p.url + path(z, r));
    const ms = performance.now() - t;
    if (sha256(got.body) !== want) throw new Error(`${p.logFile}: other bytes for ${ref(z, r).id}`);
    return ms;
  };

  // cold: each run a package neither instance has, asked of both (alternating who goes first)
  const cold: { disk: number; s3: number }[][] = SIZES.map(() => []);
  for (let r = 0; r < s.runs; r++) {
    for (const [z, zs] of SIZES.entries()) {
      scope.check();
      const first = r % 2 === 0 ? 'disk' : 's3';
      const a = await timedMiss(first === 'disk' ? disk : s3, z, r);
      const b = await timedMiss(first === 'disk' ? s3 : disk, z, r);
      const pair = first === 'disk' ? { disk: a, s3: b } : { disk: b, s3: a };
      cold[z]!.push(pair);
      log(`s3: cold run ${r + 1}/${s.runs} ${zs.label}: disk ${fmt(pair.disk)} ms, bucket ${fmt(pair.s3)} ms`);
    }
  }

  // warm: the last package of each size, in both instances' caches; a second bucket instance that never saw it
  const w = s.runs;
  for (const z of SIZES.keys()) {
    await timedMiss(disk, z, w);
    await timedMiss(s3, z, w);
  }
  const fresh = await startNuproxy(scope, s, { upstreams, cacheDir: join(work, 's3b'), workDir: work, label: 'nuproxy-s3-fresh', storage });
  // the local tier on: its first read of each package comes from the bucket and fills its copy in the background
  const tierDir = join(work, 's3c');
  const tier = await startNuproxy(scope, s, { upstreams, cacheDir: tierDir, workDir: work, label: 'nuproxy-s3-tier', storage: { ...storage, localTier: { maxSize: '1GB' } } });
  const all = /./;
  const hitsBefore = await up.hits(all);
  for (const p of [fresh, tier]) {
    for (const z of SIZES.keys()) {
      const got = await getOk(p.url + path(z, w));
      if (got.body.length !== ref(z, w).size || header(got, 'x-nuproxy-cache') !== 'hit') throw new Error(`${p.logFile}: ${ref(z, w).id} was not served from the bucket`);
    }
  }
  if ((await up.hits(all)) !== hitsBefore) throw new Error('an instance that never saw the packages asked the upstream');
  await up.close();
  for (const z of SIZES.keys()) {
    const copy = join(tierDir, 's3-local', 'packages', ...flatPath(ref(z, w)).split('/'));
    const deadline = Date.now() + 30_000;
    while (!(await access(copy).then(() => true, () => false))) {
      if (Date.now() > deadline) throw new Error(`the local tier did not fill ${copy}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const who = { disk, s3, fresh, tier } as const;
  for (const [z, zs] of SIZES.entries()) {
    for (const [name, p] of Object.entries(who)) {
      const x = await runWrk(scope, s, wrk, p.url + path(z, w), { workDir: work, seconds: s.warmupSeconds });
      log(`s3: warm-up ${zs.label} ${name}: ${fmt(x.requestsPerSec)} req/s (discarded)`);
    }
  }
  type Trio = { disk: WrkResult; s3: WrkResult; fresh: WrkResult; tier: WrkResult };
  const warm: Trio[][] = SIZES.map(() => []);
  const NAMES = ['disk', 's3', 'fresh', 'tier'] as const;
  for (let r = 0; r < s.runs; r++) {
    for (const [z, zs] of SIZES.entries()) {
      scope.check();
      const trio: Partial<Trio> = {};
      for (const name of [...NAMES.slice(r % NAMES.length), ...NAMES.slice(0, r % NAMES.length)]) {
        const x = await runWrk(scope, s, wrk, who[name].url + path(z, w), { workDir: work, seconds: s.wrkSeconds });
        trio[name] = x;
        log(`s3: warm run ${r + 1}/${s.runs} ${zs.label} ${name}: ${fmt(x.requestsPerSec)} req/s, ${fmt(x.bytesPerSec / 1e6)} MB/s, p99 ${fmt(x.p99Ms)} ms`);
      }
      warm[z]!.push(trio as Trio);
    }
  }

  const coldRows = SIZES.map((zs, z) => {
    const runs = cold[z]!;
    return [zs.label, fmt(median(runs.map((p) => p.disk))), fmt(median(runs.map((p) => p.s3))), `${fmt(median(runs.map((p) => p.s3 / p.disk)))}×`];
  });
  const warmRows = SIZES.map((zs, z) => {
    const runs = warm[z]!;
    const m = (n: keyof Trio, f: (x: WrkResult) => number): number => median(runs.map((t) => f(t[n])));
    const ratio = (n: keyof Trio): string => `${fmt(median(runs.map((t) => t[n].bytesPerSec / t.disk.bytesPerSec)))}×`;
    return [zs.label, fmt(m('disk', (x) => x.bytesPerSec / 1e6)), fmt(m('s3', (x) => x.bytesPerSec / 1e6)), ratio('s3'), fmt(m('fresh', (x) => x.bytesPerSec / 1e6)), ratio('fresh'), fmt(m('tier', (x) => x.bytesPerSec / 1e6)), ratio('tier'), fmt(m('s3', (x) => x.p99Ms)), fmt(m('tier', (x) => x.p99Ms)), String(runs.reduce((a, t) => a + t.disk.errors + t.s3.errors + t.fresh.errors + t.tier.errors, 0))];
  });
  const checks = [
    check('S3', '20 MB cold miss bucket/disk', cold[2]!.map((p) => p.s3 / p.disk), '<=', 1.5),
    check('S3', '1 MB warm MB/s bucket/disk', warm[1]!.map((t) => t.s3.bytesPerSec / t.disk.bytesPerSec), '>=', 0.9),
    check('S3', '20 MB warm MB/s local tier/disk', warm[2]!.map((t) => t.tier.bytesPerSec / t.disk.bytesPerSec), '>=', 0.8),
  ];
  return {
    tables: [
      { title: `6a. Cold misses through the bucket (s3rver on loopback) vs the disk, one package per size and run, median of ${s.runs} (ms)`, columns: ['Size', 'disk ms', 'bucket ms', 'bucket/disk'], rows: coldRows },
      {
        title: `6b. Warm hits, wrk -t${s.wrkThreads} -c${s.connections} -d${s.wrkSeconds}s, median of ${s.runs}: disk backend, bucket backend (the instance that fetched), a bucket instance that never saw the package, a bucket instance with the local tier on (storage.localTier)`,
        columns: ['Size', 'disk MB/s', 'bucket MB/s', 'ratio', 'fresh MB/s', 'ratio', 'tier MB/s', 'ratio', 'bucket p99 ms', 'tier p99 ms', 'errors'],
        rows: warmRows,
      },
    ],
    checks,
    notes: ['Packages up to 2 MB are served from each instance\'s memory tier once read, whatever the backend; larger ones stream from the bucket, or from the local disk tier where it is on (the tier column: its copies were filled by its first read from the bucket).'],
    data: { cold, warm: warm.map((runs) => runs.map((t) => ({ disk: { ...t.disk, raw: undefined }, s3: { ...t.s3, raw: undefined }, fresh: { ...t.fresh, raw: undefined }, tier: { ...t.tier, raw: undefined } }))) },
  };
}

export const s3Scenario: Scenario = { name: 's3', title: 'S3 backend vs disk', run };
