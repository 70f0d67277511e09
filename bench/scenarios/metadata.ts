// 3. Metadata: warm version lists and registration indexes from the memory store and the Redis store at 64
// connections (wrk cycling through 100 ids); then answers merged from three upstreams of different latency,
// cold (each id asked once) against the slowest upstream asked directly, and warm.
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { getOk, header, type Got } from '../lib/http.js';
import { startNginx } from '../lib/nginx.js';
import { startNuproxy } from '../lib/nuproxy.js';
import { packageSet } from '../lib/packages.js';
import { check, fmt, median, type Check, type ScenarioOutput, type Table } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { startRedis } from '../../test/support/redis.js';
import type { NupkgSpec } from '../../test/support/nupkg.js';

const IDS = 100;
const VERSIONS = 10;
const GZIP = { 'accept-encoding': 'gzip' };
/** The reference row: nginx serving the same documents as static files (identity, no gzip), same wrk settings. */
const NGINX = 'reference: nginx static files';

function metaSpecs(): NupkgSpec[] {
  const specs: NupkgSpec[] = [];
  for (let i = 0; i < IDS; i++) {
    for (let v = 0; v < VERSIONS; v++) {
      const dep = (k: number): { id: string; range: string } => ({ id: `Bench.Meta.P${String((i + k) % IDS).padStart(3, '0')}`, range: `[1.0.0, )` });
      specs.push({
        id: `Bench.Meta.P${String(i).padStart(3, '0')}`,
        version: `${1 + Math.floor(v / 3)}.${v % 3}.0`,
        description: `Generated package ${i}, version ${v}, for the nuproxy metadata benchmark.`,
        dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: [dep(1), dep(7)] }],
      });
    }
  }
  return specs;
}

function mergeSpecs(k: number, ids: number): NupkgSpec[] {
  const specs: NupkgSpec[] = [];
  for (let i = 0; i < ids; i++) {
    for (let v = 1; v <= 3; v++) specs.push({ id: `Bench.Merge.P${String(i).padStart(3, '0')}`, version: `${v}.${k}.0` });
  }
  return specs;
}

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const wrk = need(ctx, 'wrk');
  const nginxBin = need(ctx, 'nginx');
  need(ctx, 'redisServer');
  const work = await scope.tempDir('metadata');
  const tables: Table[] = [];
  const checks: Check[] = [];
  const data: Record<string, unknown> = {};

  // ---- warm, memory vs redis --------------------------------------------------------------------------------
  log('metadata: generating packages');
  const set = await packageSet(s.outDir, 'metadata', metaSpecs());
  const ids = [...new Set(set.refs.map((r) => r.lowerId))];
  const up = await startUpstream(scope, [set.dir]);
  const redis = await startRedis();
  scope.onClose(() => redis.stop());
  const kinds = [
    { key: 'versions', label: 'version list', paths: ids.map((id) => `/v3/flat/${id}/index.json`), headers: {} },
    { key: 'registration', label: 'registration index', paths: ids.map((id) => `/v3/registration/semver2/${id}/index.json`), headers: GZIP },
  ];
  // Redis mode keeps a memory copy of hot keys for cache.localTtl (5 s by default): "redis" measures that default,
  // "redis, localTtl 0" makes every hit a Redis round trip
  const workers = availableParallelism();
  const stores: { key: string; metadata: string; cache?: Record<string, unknown>; workers?: number }[] = [
    { key: 'memory', metadata: 'memory' },
    // one worker per core (each with its own memory store), as nginx runs one worker per core
    ...(workers > 1 ? [{ key: `memory, ${workers} workers`, metadata: 'memory', workers }] : []),
    { key: 'redis', metadata: redis.url },
    { key: 'redis, localTtl 0', metadata: redis.url, cache: { localTtl: 0 } },
  ];
  const warm: Record<string, Record<string, WrkResult[]>> = {};
  for (const st of stores) {
    scope.check();
    const proxy = await startNuproxy(scope, s, {
      upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }],
      cacheDir: join(work, `cache-${st.key}`),
      metadata: st.metadata,
      ...(st.cache ? { cache: st.cache } : {}),
      ...(st.workers ? { workers: st.workers } : {}),
      workDir: work,
      label: `nuproxy-meta-${st.key.replace(/[^a-z0-9]+/g, '-')}`,
    });
    await getOk(proxy.index);
    for (const k of kinds) {
      for (const p of k.paths) await getOk(proxy.url + p.slice(1), [200], k.headers);
      const again = await getOk(proxy.url + k.paths[0]!.slice(1), [200], k.headers);
      if (header(again, 'x-nuproxy-cache') !== 'hit') throw new Error(`metadata ${st.key}: ${k.paths[0]} is not a hit after warming (${header(again, 'x-nuproxy-cache')})`);
    }
    if (st.key === 'memory') {
      // the reference: nginx serving the very documents nuproxy answered (identity bodies) as static files
      for (const k of kinds) {
        for (const p of k.paths) {
          const file = join(work, 'static', p);
          await mkdir(dirname(file), { recursive: true });
          await writeFile(file, (await getOk(proxy.url + p.slice(1))).body);
        }
      }
    }
    await up.resetHits();
    warm[st.key] = {};
    for (const k of kinds) {
      // one discarded run: JIT-compiled hot paths, rendered/gzipped documents, open connections to Redis
      await runWrk(scope, s, wrk, proxy.url, { paths: k.paths, headers: k.headers, workDir: work, seconds: s.warmupSeconds });
      const list: WrkResult[] = [];
      for (let r = 0; r < s.runs; r++) {
        scope.check();
        const w = await runWrk(scope, s, wrk, proxy.url, { paths: k.paths, headers: k.headers, workDir: work });
        list.push(w);
        log(`metadata: ${st.key} ${k.label} run ${r + 1}/${s.runs}: ${fmt(w.requestsPerSec)} req/s, p99 ${fmt(w.p99Ms)} ms${w.errors ? `, ${w.errors} errors` : ''}`);
      }
      warm[st.key]![k.key] = list;
    }
    const upstreamHits = (await up.requests()).length;
    if (upstreamHits > 0) log(`metadata: ${st.key}: ${upstreamHits} upstream requests during the warm measurements`);
    await proxy.stop();
  }
  await up.close();
  await redis.stop();
  {
    const nginx = await startNginx(scope, nginxBin, join(work, 'nginx'), { kind: 'static', locations: [{ prefix: '/v3/', dir: join(work, 'static', 'v3') }] });
    warm[NGINX] = {};
    for (const k of kinds) {
      await runWrk(scope, s, wrk, nginx.url, { paths: k.paths, workDir: work, seconds: s.warmupSeconds });
      const list: WrkResult[] = [];
      for (let r = 0; r < s.runs; r++) {
        scope.check();
        const w = await runWrk(scope, s, wrk, nginx.url, { paths: k.paths, workDir: work });
        list.push(w);
        log(`metadata: ${NGINX} ${k.label} run ${r + 1}/${s.runs}: ${fmt(w.requestsPerSec)} req/s, p99 ${fmt(w.p99Ms)} ms${w.errors ? `, ${w.errors} errors` : ''}`);
      }
      warm[NGINX]![k.key] = list;
    }
    await nginx.stop();
  }
  const warmRows: string[][] = [];
  for (const st of [...stores, { key: NGINX }]) {
    for (const k of kinds) {
      const list = warm[st.key]![k.key]!;
      warmRows.push([
        `${st.key}: ${k.label}`,
        fmt(median(list.map((w) => w.requestsPerSec))),
        fmt(median(list.map((w) => w.p50Ms))),
        fmt(median(list.map((w) => w.p99Ms))),
        fmt(median(list.map((w) => w.bytesPerSec / w.requestsPerSec / 1024)), 1),
        String(list.reduce((a, w) => a + w.errors, 0)),
      ]);
      if (st.key !== NGINX) checks.push(check('Metadata', `warm p99, ${st.key.replace(',', ' store,')}${st.key.includes(',') ? '' : ' store'}, ${k.label}`, list.map((w) => w.p99Ms), '<', 5, 'ms'));
    }
  }
  tables.push({
    title: `3a. Metadata, warm: wrk -t${s.wrkThreads} -c${s.connections} -d${s.wrkSeconds}s over ${IDS} ids (${VERSIONS} versions each), after a ${s.warmupSeconds}s warm-up, median of ${s.runs}`,
    columns: ['Store: document', 'req/s', 'p50 ms', 'p99 ms', 'KiB/resp', 'errors'],
    rows: warmRows,
  });
  data.warm = Object.fromEntries(
    Object.entries(warm).map(([st, byKind]) => [st, Object.fromEntries(Object.entries(byKind).map(([k, l]) => [k, l.map((w) => ({ ...w, raw: undefined }))]))]),
  );

  // ---- merged from three upstreams, cold vs warm -----------------------------------------------------------
  const n = s.mergeIds;
  const stalls = s.mergeStallsMs;
  const ups = [];
  for (const [k, ms] of stalls.entries()) {
    const mset = await packageSet(s.outDir, `merge-${k}`, mergeSpecs(k, n * 2));
    const u = await startUpstream(scope, [mset.dir]);
    // every metadata document is late by `ms` (not the service index: it is fetched once at start)
    await u.setFault(/^\/(v3-flatcontainer\/[^/]+\/index\.json|v3\/registration5-)/, { kind: 'stall', ms });
    ups.push(u);
  }
  const proxy = await startNuproxy(scope, s, {
    upstreams: ups.map((u, k) => ({ name: `up${k}`, serviceIndex: u.serviceIndexUrl })),
    cacheDir: join(work, 'cache-merge'),
    workDir: work,
    label: 'nuproxy-merge',
  });
  await getOk(proxy.index);
  const mergeKinds = [
    {
      key: 'versions',
      label: 'version list',
      proxyPath: (id: string) => `v3/flat/${id}/index.json`,
      upPath: (id: string) => `v3-flatcontainer/${id}/index.json`,
      ids: Array.from({ length: n }, (_, i) => `bench.merge.p${String(i).padStart(3, '0')}`),
      headers: {} as Record<string, string>,
      verify: (g: Got) => (JSON.parse(g.body.toString('utf8')) as { versions: string[] }).versions.length === 3 * stalls.length,
    },
    {
      key: 'registration',
      label: 'registration index',
      proxyPath: (id: string) => `v3/registration/semver2/${id}/index.json`,
      upPath: (id: string) => `v3/registration5-gz-semver2/${id}/index.json`,
      ids: Array.from({ length: n }, (_, i) => `bench.merge.p${String(n + i).padStart(3, '0')}`),
      headers: GZIP,
      verify: (g: Got) => g.status === 200,
    },
  ];
  const mergeRows: string[][] = [];
  const mergeData: Record<string, unknown> = {};
  for (const mk of mergeKinds) {
    const cold: number[] = [];
    const warmMs: number[] = [];
    const slowest: number[] = [];
    const ratio: number[] = [];
    for (const id of mk.ids) {
      scope.check();
      const c = await getOk(proxy.url + mk.proxyPath(id), [200], mk.headers);
      if (!mk.verify(c)) throw new Error(`merged ${mk.label} of ${id} does not hold every upstream's versions`);
      const w = await getOk(proxy.url + mk.proxyPath(id), [200], mk.headers);
      if (header(w, 'x-nuproxy-cache') !== 'hit') log(`metadata: merged ${mk.label} ${id} second answer was ${header(w, 'x-nuproxy-cache')}`);
      // each upstream directly, one after the other: the slowest is the floor for a merged cold answer
      let worst = 0;
      for (const u of ups) worst = Math.max(worst, (await getOk(`${u.origin}/${mk.upPath(id)}`, [200], mk.headers)).ms);
      cold.push(c.ms);
      warmMs.push(w.ms);
      slowest.push(worst);
      ratio.push(c.ms / worst);
    }
    log(`metadata: merged ${mk.label}: cold ${fmt(median(cold))} ms, warm ${fmt(median(warmMs))} ms, slowest upstream ${fmt(median(slowest))} ms`);
    mergeRows.push([mk.label, fmt(median(slowest)), fmt(median(cold)), `${fmt(median(ratio))}×`, fmt(median(warmMs), 2), fmt(Math.max(...cold))]);
    checks.push(check('Metadata', `merged cold ${mk.label} / slowest upstream`, ratio, '<=', 1.1));
    mergeData[mk.key] = { coldMs: cold, warmMs, slowestUpstreamMs: slowest, ratio };
  }
  tables.push({
    title: `3b. Metadata merged from ${stalls.length} upstreams (latency ${stalls.join('/')} ms), ${n} ids each asked once cold, then warm (medians)`,
    columns: ['Document', 'slowest upstream ms', 'nuproxy cold ms', 'cold/slowest', 'nuproxy warm ms', 'cold max ms'],
    rows: mergeRows,
  });
  data.merged = { stallsMs: stalls, ...mergeData };
  return { tables, checks, notes: [], data };
}

export const metadataScenario: Scenario = { name: 'metadata', title: 'Metadata', run };
