// 1. Warm packages: the same .nupkg files served by nuproxy from its cache and by nginx (sendfile,
// open_file_cache) from the very same folder (nuproxy's cache dir), 64 connections, wrk.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { getOk, header, sha256 } from '../lib/http.js';
import { startNginx } from '../lib/nginx.js';
import { startNuproxy } from '../lib/nuproxy.js';
import { flatPath, packageSet } from '../lib/packages.js';
import { sleep } from '../lib/proc.js';
import { check, fmt, median, type ScenarioOutput } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';

// At 64 connections one round of 50 MB responses is 3.2 GB: the big size gets a longer measurement, so that every
// connection completes several responses and req/s and p99 mean something.
const SIZES = [
  { label: '10 KB', bytes: 10_000, minSeconds: 0 },
  { label: '1 MB', bytes: 1_000_000, minSeconds: 0 },
  { label: '50 MB', bytes: 50_000_000, minSeconds: 15 },
];
// zip/nuspec overhead of a generated package, so the file is close to the nominal size
const OVERHEAD = 1100;
// access control on the warm path (issue #15): the same workers with access.anonymous false, every request
// carrying the token as packageSourceCredentials send it (HTTP Basic)
const TOKEN = 'bench-read-token-6d1f0e2a';
const AUTH = { authorization: `Basic ${Buffer.from(`bench:${TOKEN}`).toString('base64')}` };
const ACCESS = { anonymous: false, tokens: [{ name: 'bench', sha256: createHash('sha256').update(TOKEN).digest('hex'), permissions: ['read'] }] };

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const wrk = need(ctx, 'wrk');
  const nginxBin = need(ctx, 'nginx');
  const specs = SIZES.map((z) => ({ id: `Bench.Warm.S${z.bytes}`, version: '1.0.0', padBytes: Math.max(0, z.bytes - OVERHEAD) }));
  log('warm: generating packages');
  const set = await packageSet(s.outDir, 'warm', specs);
  const up = await startUpstream(scope, [set.dir]);
  const work = await scope.tempDir('warm');
  const cacheDir = join(work, 'cache');
  const proxy = await startNuproxy(scope, s, { upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }], cacheDir, workDir: work, label: 'nuproxy-warm' });

  // Prime nuproxy's cache (one miss per package), then check both servers give the same bytes.
  const paths = set.refs.map((r) => `v3/flat/${flatPath(r)}`);
  for (const [i, ref] of set.refs.entries()) {
    const want = sha256(await readFile(ref.file));
    const miss = await getOk(proxy.url + paths[i]!);
    if (sha256(miss.body) !== want) throw new Error(`nuproxy served other bytes for ${ref.id}`);
    for (let tries = 0; ; tries++) {
      const hit = await getOk(proxy.url + paths[i]!);
      if (header(hit, 'x-nuproxy-cache') === 'hit' && sha256(hit.body) === want) break;
      if (tries > 100) throw new Error(`nuproxy never served ${ref.id} from its cache`);
      await sleep(50);
    }
  }
  await up.close(); // warm means warm: nothing below may reach the upstream
  // the configuration the targets are checked on: one worker per core (nginx runs one per core too), on the very
  // cache the single-worker process filled; the single worker is measured beside it
  const workers = availableParallelism();
  const multi = await startNuproxy(scope, s, { upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }], cacheDir, workDir: work, label: 'nuproxy-warm-workers', workers });
  for (const [i, ref] of set.refs.entries()) {
    const got = await getOk(multi.url + paths[i]!);
    if (got.body.length !== ref.size || header(got, 'x-nuproxy-cache') !== 'hit') throw new Error(`nuproxy (${workers} workers) did not serve ${ref.id} from the cache`);
  }
  const guarded = await startNuproxy(scope, s, { upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }], cacheDir, workDir: work, label: 'nuproxy-warm-token', workers, access: ACCESS });
  for (const [i, ref] of set.refs.entries()) {
    const refused = await fetch(guarded.url + paths[i]!);
    await refused.arrayBuffer();
    if (refused.status !== 401) throw new Error(`nuproxy with access.anonymous false answered ${refused.status} without a token`);
    const got = await getOk(guarded.url + paths[i]!, [200], AUTH);
    if (got.body.length !== ref.size || header(got, 'x-nuproxy-cache') !== 'hit') throw new Error(`nuproxy (token) did not serve ${ref.id} from the cache`);
  }
  const nginx = await startNginx(scope, nginxBin, join(work, 'nginx'), {
    kind: 'static',
    locations: [{ prefix: '/v3/flat/', dir: join(cacheDir, 'packages') }],
  });
  for (const [i, ref] of set.refs.entries()) {
    const got = await getOk(nginx.url + paths[i]!);
    if (got.body.length !== ref.size) throw new Error(`nginx served ${got.body.length} bytes for ${ref.id}, expected ${ref.size}`);
  }

  // one discarded run per server and size: JIT-compiled hot paths, page cache, like a server that has been up a while
  for (const [i, z] of SIZES.entries()) {
    for (const [who, base] of [['nginx', nginx.url], ['nuproxy', multi.url], ['nuproxy1', proxy.url], ['nuproxyTok', guarded.url]] as const) {
      scope.check();
      const w = await runWrk(scope, s, wrk, base + paths[i]!, { workDir: work, seconds: s.warmupSeconds, ...(who === 'nuproxyTok' ? { headers: AUTH } : {}) });
      log(`warm: warm-up ${z.label} ${who}: ${fmt(w.requestsPerSec)} req/s (discarded)`);
    }
  }

  type Pair = { nuproxy: WrkResult; nuproxy1: WrkResult; nuproxyTok: WrkResult; nginx: WrkResult };
  const results: Pair[][] = SIZES.map(() => []);
  const ORDERS = [
    ['nginx', 'nuproxy', 'nuproxyTok', 'nuproxy1'],
    ['nuproxy', 'nuproxyTok', 'nuproxy1', 'nginx'],
    ['nuproxyTok', 'nuproxy1', 'nginx', 'nuproxy'],
    ['nuproxy1', 'nginx', 'nuproxy', 'nuproxyTok'],
  ] as const;
  const baseOf = (who: keyof Pair): string => (who === 'nginx' ? nginx.url : who === 'nuproxy' ? multi.url : who === 'nuproxyTok' ? guarded.url : proxy.url);
  for (let r = 0; r < s.runs; r++) {
    for (const [i, z] of SIZES.entries()) {
      scope.check();
      const order = ORDERS[r % ORDERS.length]!;
      const pair: Partial<Pair> = {};
      for (const who of order) {
        const w = await runWrk(scope, s, wrk, baseOf(who) + paths[i]!, {
          workDir: work,
          seconds: Math.max(s.wrkSeconds, s.quick ? z.minSeconds / 2 : z.minSeconds),
          ...(who === 'nuproxyTok' ? { headers: AUTH } : {}),
        });
        if (w.errors > 0) log(`warm: ${who} ${z.label}: ${w.errors} errors`);
        pair[who] = w;
        log(`warm: run ${r + 1}/${s.runs} ${z.label} ${who}: ${fmt(w.requestsPerSec)} req/s, ${fmt(w.bytesPerSec / 1e6)} MB/s, p99 ${fmt(w.p99Ms)} ms`);
      }
      results[i]!.push(pair as Pair);
    }
  }

  const rows: string[][] = [];
  const singleRows: string[][] = [];
  const tokenRows: string[][] = [];
  const checks = [];
  const data: Record<string, unknown> = {};
  for (const [i, z] of SIZES.entries()) {
    const runs = results[i]!;
    const m = (who: keyof Pair, f: (w: WrkResult) => number): number => median(runs.map((p) => f(p[who])));
    const rpsRatio = runs.map((p) => p.nuproxy.requestsPerSec / p.nginx.requestsPerSec);
    const mbRatio = runs.map((p) => p.nuproxy.bytesPerSec / p.nginx.bytesPerSec);
    const p99Ratio = runs.map((p) => p.nuproxy.p99Ms / p.nginx.p99Ms);
    rows.push([
      `${z.label} (${fmt(set.refs[i]!.size / 1000)} kB)`,
      fmt(m('nginx', (w) => w.requestsPerSec)),
      fmt(m('nuproxy', (w) => w.requestsPerSec)),
      `${fmt(median(rpsRatio))}×`,
      fmt(m('nginx', (w) => w.bytesPerSec / 1e6)),
      fmt(m('nuproxy', (w) => w.bytesPerSec / 1e6)),
      `${fmt(median(mbRatio))}×`,
      fmt(m('nginx', (w) => w.p99Ms)),
      fmt(m('nuproxy', (w) => w.p99Ms)),
      `${fmt(median(p99Ratio))}×`,
      String(runs.reduce((a, p) => a + p.nuproxy.errors + p.nginx.errors, 0)),
    ]);
    const single = (f: (w: WrkResult) => number): string => `${fmt(median(runs.map((p) => f(p.nuproxy1) / f(p.nginx))))}×`;
    singleRows.push([
      z.label,
      fmt(m('nuproxy1', (w) => w.requestsPerSec)),
      single((w) => w.requestsPerSec),
      fmt(m('nuproxy1', (w) => w.bytesPerSec / 1e6)),
      single((w) => w.bytesPerSec),
      fmt(m('nuproxy1', (w) => w.p99Ms)),
      String(runs.reduce((a, p) => a + p.nuproxy1.errors, 0)),
    ]);
    const tok = (f: (w: WrkResult) => number): string => `${fmt(median(runs.map((p) => f(p.nuproxyTok) / f(p.nginx))))}×`;
    tokenRows.push([
      z.label,
      fmt(m('nuproxyTok', (w) => w.requestsPerSec)),
      tok((w) => w.requestsPerSec),
      `${fmt(median(runs.map((p) => p.nuproxyTok.requestsPerSec / p.nuproxy.requestsPerSec)))}×`,
      fmt(m('nuproxyTok', (w) => w.bytesPerSec / 1e6)),
      tok((w) => w.bytesPerSec),
      fmt(m('nuproxyTok', (w) => w.p99Ms)),
      String(runs.reduce((a, p) => a + p.nuproxyTok.errors, 0)),
    ]);
    if (z.bytes <= 10_000) checks.push(check('Warm', `${z.label} req/s nuproxy/nginx`, rpsRatio, '>=', 0.5));
    else checks.push(check('Warm', `${z.label} MB/s nuproxy/nginx`, mbRatio, '>=', 0.9));
    data[z.label] = {
      bytes: set.refs[i]!.size,
      runs: runs.map((p) => ({
        nuproxy: { ...p.nuproxy, raw: undefined },
        nuproxySingleWorker: { ...p.nuproxy1, raw: undefined },
        nuproxyWithToken: { ...p.nuproxyTok, raw: undefined },
        nginx: { ...p.nginx, raw: undefined },
      })),
      ratios: { requestsPerSec: rpsRatio, bytesPerSec: mbRatio, p99: p99Ratio },
    };
  }
  return {
    tables: [
      {
        title: `1. Warm packages: wrk -t${s.wrkThreads} -c${s.connections} -d${s.wrkSeconds}s (50 MB: ${Math.ceil(Math.max(s.wrkSeconds, s.quick ? 7.5 : 15))}s), after a ${s.warmupSeconds}s warm-up each, median of ${s.runs} (MB = 10^6 bytes)`,
        columns: ['Size', 'nginx req/s', `nuproxy (${workers} workers) req/s`, 'ratio', 'nginx MB/s', 'nuproxy MB/s', 'ratio', 'nginx p99 ms', 'nuproxy p99 ms', 'ratio', 'errors'],
        rows,
      },
      {
        title: `1b. The same with nuproxy's default, one worker process (ratios to nginx in the same runs)`,
        columns: ['Size', 'req/s', 'ratio', 'MB/s', 'ratio', 'p99 ms', 'errors'],
        rows: singleRows,
      },
      {
        title: `1c. The same ${workers} workers with access.anonymous false and a token (HTTP Basic) on every request: ratios to nginx and to the open feed in the same runs`,
        columns: ['Size', 'req/s', 'ratio to nginx', 'ratio to open', 'MB/s', 'ratio to nginx', 'p99 ms', 'errors'],
        rows: tokenRows,
      },
    ],
    checks,
    notes: [],
    data: { ...data, workers },
  };
}

export const warmScenario: Scenario = { name: 'warm', title: 'Warm packages', run };
