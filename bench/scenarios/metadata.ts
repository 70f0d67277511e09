// 3. Metadata: warm version lists and registration indexes from the memory store and the Redis store at 64
// connections (wrk cycling through 100 ids), against nginx and a bare node:http server, with the feature costs
// (metadata/warm.ts); then answers merged from three upstreams of different latency,
// cold (each id asked once) against the slowest upstream asked directly, and warm.
import { join } from 'node:path';
import { need, type Ctx, type Scenario } from '../lib/context.js';
import { getOk, header, type Got } from '../lib/http.js';
import { startNuproxy } from '../lib/nuproxy.js';
import { packageSet } from '../lib/packages.js';
import { check, fmt, median, type Check, type ScenarioOutput, type Table } from '../lib/report.js';
import { startUpstream } from '../lib/upstream.js';
import { warmMetadata } from './metadata/warm.js';
import type { NupkgSpec } from '../../test/support/nupkg.js';

const IDS = 100;
const VERSIONS = 10;
const GZIP = { 'accept-encoding': 'gzip' };

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
  need(ctx, 'wrk');
  need(ctx, 'nginx');
  need(ctx, 'redisServer');
  const work = await scope.tempDir('metadata');
  const tables: Table[] = [];
  const checks: Check[] = [];
  const data: Record<string, unknown> = {};

  // ---- warm: memory vs redis, the references, the feature costs (metadata/warm.ts) ---------------------------
  log('metadata: generating packages');
  const set = await packageSet(s.outDir, 'metadata', metaSpecs());
  const ids = [...new Set(set.refs.map((r) => r.lowerId))];
  const up = await startUpstream(scope, [set.dir]);
  const w = await warmMetadata(ctx, up, ids, work, `${IDS} ids (${VERSIONS} versions each)`);
  await up.close();
  tables.push(...w.tables);
  checks.push(...w.checks);
  data.warm = w.data;

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
