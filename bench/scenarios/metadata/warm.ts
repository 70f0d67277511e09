// 3a/3c/3d. Metadata, warm: version lists and registration indexes (wrk cycling through 100 ids) from the memory
// store (one worker, one worker per core), the Redis store, and as references nginx serving the same documents
// as static files and the bare node:http server answering them from memory. The memory store (one worker) and
// the Redis store are measured with the bare server in the same runs (alternating who goes first); the memory
// store also with each feature of the other issues on (token, cooldown policy, cache.maxSize), interleaved.
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { startBare, type BareProc } from '../../lib/bare.js';
import { need, type Ctx } from '../../lib/context.js';
import { FEATURE_LABELS, featureHeaders, withFeature, type Feature } from '../../lib/features.js';
import { getOk, header } from '../../lib/http.js';
import { startNginx } from '../../lib/nginx.js';
import { startNuproxy, type NuproxyOptions, type NuproxyProc } from '../../lib/nuproxy.js';
import { check, fmt, median, type Check, type Table } from '../../lib/report.js';
import type { UpstreamProc } from '../../lib/upstream.js';
import { runWrk, type WrkResult } from '../../lib/wrk.js';
import { startRedis } from '../../../test/support/redis.js';

const GZIP = { 'accept-encoding': 'gzip' };
/** The reference rows: nginx serving the same documents as static files (identity, no gzip), same wrk settings. */
const NGINX = 'reference: nginx static files';
const BARE = 'reference: bare node:http, from memory';
const FEATURES: Feature[] = ['token', 'cooldown', 'maxSize'];

interface Kind {
  key: string;
  label: string;
  paths: string[];
  headers: Record<string, string>;
}
type Server = { url: string; headers: Record<string, string>; plain?: boolean };

export async function warmMetadata(ctx: Ctx, up: UpstreamProc, ids: string[], work: string, shape: string): Promise<{ tables: Table[]; checks: Check[]; data: Record<string, unknown> }> {
  const { s, scope, log } = ctx;
  const wrk = need(ctx, 'wrk');
  const nginxBin = need(ctx, 'nginx');
  const checks: Check[] = [];
  const redis = await startRedis();
  scope.onClose(() => redis.stop());
  const kinds: Kind[] = [
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
  const featKey = (f: Feature): string => `memory + ${FEATURE_LABELS[f]}`;
  let running: NuproxyProc[] = [];
  const start = async (o: NuproxyOptions, headers: Record<string, string>, what: string): Promise<string> => {
    const proxy = await startNuproxy(scope, s, o);
    running.push(proxy);
    await getOk(proxy.index, [200], headers);
    for (const k of kinds) {
      for (const p of k.paths) await getOk(proxy.url + p.slice(1), [200], { ...k.headers, ...headers });
      const again = await getOk(proxy.url + k.paths[0]!.slice(1), [200], { ...k.headers, ...headers });
      if (header(again, 'x-nuproxy-cache') !== 'hit') throw new Error(`metadata ${what}: ${k.paths[0]} is not a hit after warming (${header(again, 'x-nuproxy-cache')})`);
    }
    return proxy.url;
  };
  // every measurement: per server key, per document kind, one wrk result per run
  const warm: Record<string, Record<string, WrkResult[]>> = {};
  const measure = async (keys: string[], servers: Record<string, Server>): Promise<void> => {
    for (const k of kinds) {
      const h = (key: string): Record<string, string> => (servers[key]!.plain ? {} : { ...k.headers, ...servers[key]!.headers });
      // one discarded run each: JIT-compiled hot paths, rendered/gzipped documents, open connections to Redis
      for (const key of keys) await runWrk(scope, s, wrk, servers[key]!.url, { paths: k.paths, headers: h(key), workDir: work, seconds: s.warmupSeconds });
      for (let r = 0; r < s.runs; r++) {
        // each run starts with another server
        const at = r % keys.length;
        for (const key of [...keys.slice(at), ...keys.slice(0, at)]) {
          scope.check();
          const w = await runWrk(scope, s, wrk, servers[key]!.url, { paths: k.paths, headers: h(key), workDir: work });
          ((warm[key] ??= {})[k.key] ??= []).push(w);
          log(`metadata: ${key} ${k.label} run ${r + 1}/${s.runs}: ${fmt(w.requestsPerSec)} req/s, p99 ${fmt(w.p99Ms)} ms${w.errors ? `, ${w.errors} errors` : ''}`);
        }
      }
    }
  };
  let bare: BareProc | undefined;
  const bareKey = (st: string): string => `${BARE} (with ${st})`;
  for (const st of stores) {
    scope.check();
    const base: NuproxyOptions = {
      upstreams: [{ name: 'bench', serviceIndex: up.serviceIndexUrl }],
      cacheDir: join(work, `cache-${st.key}`),
      metadata: st.metadata,
      ...(st.cache ? { cache: st.cache } : {}),
      ...(st.workers ? { workers: st.workers } : {}),
      workDir: work,
      label: `nuproxy-meta-${st.key.replace(/[^a-z0-9]+/g, '-')}`,
    };
    const url = await start(base, {}, st.key);
    const servers: Record<string, Server> = { [st.key]: { url, headers: {} } };
    const keys = [st.key];
    if (st.key === 'memory') {
      // the references: the very documents nuproxy answered (identity bodies), as static files for nginx and in
      // memory for the bare server
      const files: [string, string][] = [];
      for (const k of kinds) {
        for (const p of k.paths) {
          const file = join(work, 'static', p);
          await mkdir(dirname(file), { recursive: true });
          await writeFile(file, (await getOk(url + p.slice(1))).body);
          files.push([p, file]);
        }
      }
      bare = await startBare(scope, work, files);
      for (const f of FEATURES) {
        const o = withFeature({ ...base, cacheDir: join(work, `cache-memory-${f}`), label: `nuproxy-meta-memory-${f}` }, f);
        servers[featKey(f)] = { url: await start(o, featureHeaders(f), featKey(f)), headers: featureHeaders(f) };
        keys.push(featKey(f));
      }
    }
    if (bare && (st.key === 'memory' || st.key === 'redis')) {
      servers[bareKey(st.key)] = { url: bare.url, headers: {}, plain: true };
      keys.splice(1, 0, bareKey(st.key));
    }
    await up.resetHits();
    await measure(keys, servers);
    const upstreamHits = (await up.requests()).length;
    if (upstreamHits > 0) log(`metadata: ${st.key}: ${upstreamHits} upstream requests during the warm measurements`);
    await Promise.all(running.map((p) => p.stop()));
    running = [];
  }
  await redis.stop();
  const nginx = await startNginx(scope, nginxBin, join(work, 'nginx'), { kind: 'static', locations: [{ prefix: '/v3/', dir: join(work, 'static', 'v3') }] });
  await measure([NGINX], { [NGINX]: { url: nginx.url, headers: {}, plain: true } });
  await nginx.stop();

  const med = (l: WrkResult[], f: (w: WrkResult) => number): number => median(l.map(f));
  const warmRows: string[][] = [];
  for (const key of [...stores.map((st) => st.key), NGINX, bareKey('memory')]) {
    for (const k of kinds) {
      const list = warm[key]?.[k.key];
      if (!list) continue;
      warmRows.push([`${key}: ${k.label}`, fmt(med(list, (w) => w.requestsPerSec)), fmt(med(list, (w) => w.p50Ms)), fmt(med(list, (w) => w.p99Ms)), fmt(med(list, (w) => w.bytesPerSec / w.requestsPerSec / 1024), 1), String(list.reduce((a, w) => a + w.errors, 0))]);
      if (stores.some((st) => st.key === key)) checks.push(check('Metadata', `warm p99, ${key.replace(',', ' store,')}${key.includes(',') ? '' : ' store'}, ${k.label}`, list.map((w) => w.p99Ms), '<', 5, 'ms'));
    }
  }
  const ratio = (a: WrkResult[], b: WrkResult[]): number[] => a.map((w, i) => w.requestsPerSec / (b[i]?.requestsPerSec ?? NaN));
  const bareRows: string[][] = [];
  for (const st of ['memory', 'redis']) {
    for (const k of kinds) {
      const mine = warm[st]?.[k.key];
      const ref = warm[bareKey(st)]?.[k.key];
      if (!mine || !ref) continue;
      const r = ratio(mine, ref);
      bareRows.push([`${st}: ${k.label}`, fmt(med(mine, (w) => w.requestsPerSec)), fmt(med(ref, (w) => w.requestsPerSec)), `${fmt(median(r))}×`, fmt(med(mine, (w) => w.p99Ms)), fmt(med(ref, (w) => w.p99Ms))]);
      checks.push(check('Metadata', `warm req/s nuproxy/bare node, ${st} store (1 worker), ${k.label}`, r, '>=', 0.7));
    }
  }
  const featureRows: string[][] = [];
  for (const f of FEATURES) {
    for (const k of kinds) {
      const mine = warm[featKey(f)]?.[k.key];
      const open = warm.memory?.[k.key];
      if (!mine || !open) continue;
      featureRows.push([`${FEATURE_LABELS[f]}: ${k.label}`, fmt(med(mine, (w) => w.requestsPerSec)), `${fmt(median(ratio(mine, open)))}×`, fmt(med(mine, (w) => w.p50Ms)), fmt(med(mine, (w) => w.p99Ms)), String(mine.reduce((a, w) => a + w.errors, 0))]);
    }
  }
  const how = `wrk -t${s.wrkThreads} -c${s.connections} -d${s.wrkSeconds}s over ${shape}, after a ${s.warmupSeconds}s warm-up, median of ${s.runs}`;
  const tables: Table[] = [
    { title: `3a. Metadata, warm: ${how}`, columns: ['Store: document', 'req/s', 'p50 ms', 'p99 ms', 'KiB/resp', 'errors'], rows: warmRows },
    {
      title: `3c. Metadata, warm: nuproxy (one worker) over the bare node:http server answering the same documents from memory (identity; nuproxy's registration answers gzip), in the same runs`,
      columns: ['Store: document', 'nuproxy req/s', 'bare req/s', 'nuproxy/bare', 'nuproxy p99 ms', 'bare p99 ms'],
      rows: bareRows,
    },
    {
      title: `3d. Metadata, warm, feature costs: the memory store (one worker) with each feature on, interleaved with the open feed in the same runs`,
      columns: ['Feature: document', 'req/s', 'ratio to open', 'p50 ms', 'p99 ms', 'errors'],
      rows: featureRows,
    },
  ];
  const data = Object.fromEntries(Object.entries(warm).map(([st, byKind]) => [st, Object.fromEntries(Object.entries(byKind).map(([k, l]) => [k, l.map((w) => ({ ...w, raw: undefined }))]))]));
  return { tables, checks, data };
}
