// The servers of the warm scenario, primed and checked: nuproxy (one worker; one worker per core; the same
// workers with each feature of the other issues on), nginx serving nuproxy's cache folder, and the bare
// node:http server answering the same .nupkg bytes from memory.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startBare } from '../../lib/bare.js';
import type { Ctx } from '../../lib/context.js';
import { featureHeaders, withFeature, type Feature } from '../../lib/features.js';
import { getOk, header, sha256 } from '../../lib/http.js';
import { startNginx } from '../../lib/nginx.js';
import { startNuproxy, type NuproxyOptions } from '../../lib/nuproxy.js';
import type { PackageRef } from '../../lib/packages.js';
import { sleep } from '../../lib/proc.js';
import { startUpstream, type UpstreamProc } from '../../lib/upstream.js';

/** Who is measured: the references, nuproxy's two worker counts, and the workers with a feature on. */
export type Who = 'nginx' | 'bare' | 'nuproxy' | 'nuproxy1' | 'nuproxyTok' | 'nuproxyCool' | 'nuproxyMax' | 'nuproxyAll';
export const FEATURE_OF: Partial<Record<Who, Feature>> = { nuproxyTok: 'token', nuproxyCool: 'cooldown', nuproxyMax: 'maxSize', nuproxyAll: 'all' };
/** The feature rows other than the token (table 1c, all sizes) are measured on the sizes up to this only. */
export const FEATURE_MAX_BYTES = 1_000_000;

export interface WarmServers {
  workers: number;
  up: UpstreamProc;
  paths: string[];
  base: Record<Who, string>;
  headers(who: Who): Record<string, string>;
}

export async function startWarmServers(ctx: Ctx, setDir: string, refs: PackageRef[], work: string): Promise<WarmServers> {
  const { s, scope } = ctx;
  const up = await startUpstream(scope, [setDir]);
  const cacheDir = join(work, 'cache');
  const upstreams = [{ name: 'bench', serviceIndex: up.serviceIndexUrl }];
  const proxy = await startNuproxy(scope, s, { upstreams, cacheDir, workDir: work, label: 'nuproxy-warm' });

  // Prime nuproxy's cache (one miss per package), then check every server gives the same bytes.
  const paths = refs.map((r) => `v3/flat/${r.lowerId}/${r.lowerVersion}/${r.lowerId}.${r.lowerVersion}.nupkg`);
  const wants = await Promise.all(refs.map(async (r) => sha256(await readFile(r.file))));
  for (const [i, ref] of refs.entries()) {
    const miss = await getOk(proxy.url + paths[i]!);
    if (sha256(miss.body) !== wants[i]) throw new Error(`nuproxy served other bytes for ${ref.id}`);
    for (let tries = 0; ; tries++) {
      const hit = await getOk(proxy.url + paths[i]!);
      if (header(hit, 'x-nuproxy-cache') === 'hit' && sha256(hit.body) === wants[i]) break;
      if (tries > 100) throw new Error(`nuproxy never served ${ref.id} from its cache`);
      await sleep(50);
    }
  }
  // the configuration the targets are checked on: one worker per core (nginx runs one per core too), on the very
  // cache the single-worker process filled; the single worker is measured beside it, and the same workers with
  // each feature on. The upstream stays up: the cooldown gate reads the winning upstream's registration (the
  // published dates), in each worker's own memory store, revalidated as cache.freshness says; with the upstream
  // gone it would measure a failing upstream instead. What reaches it during the measurements is counted.
  const workers = availableParallelism();
  const multiOpts: NuproxyOptions = { upstreams, cacheDir, workDir: work, label: 'nuproxy-warm-workers', workers };
  const multi = await startNuproxy(scope, s, multiOpts);
  const feat: Partial<Record<Who, string>> = {};
  for (const [who, f] of Object.entries(FEATURE_OF) as [Who, Feature][]) {
    const p = await startNuproxy(scope, s, withFeature({ ...multiOpts, label: `nuproxy-warm-${f}` }, f));
    feat[who] = p.url;
    for (const [i, ref] of refs.entries()) {
      if (featureHeaders(f).authorization) {
        const refused = await fetch(p.url + paths[i]!);
        await refused.arrayBuffer();
        if (refused.status !== 401) throw new Error(`nuproxy (${f}) answered ${refused.status} without a token`);
      }
      const got = await getOk(p.url + paths[i]!, [200], featureHeaders(f));
      if (got.body.length !== ref.size) throw new Error(`nuproxy (${f}) served ${got.body.length} bytes for ${ref.id}`);
    }
  }
  const nginx = await startNginx(scope, need(ctx.tools.nginx), join(work, 'nginx'), {
    kind: 'static',
    locations: [{ prefix: '/v3/flat/', dir: join(cacheDir, 'packages') }],
  });
  const bare = await startBare(scope, work, refs.map((r, i) => [`/${paths[i]!}`, r.file]));
  const base: Record<Who, string> = { nginx: nginx.url, bare: bare.url, nuproxy: multi.url, nuproxy1: proxy.url, ...(feat as Record<Exclude<Who, 'nginx' | 'bare' | 'nuproxy' | 'nuproxy1'>, string>) };
  const headers = (who: Who): Record<string, string> => featureHeaders(FEATURE_OF[who]);
  for (const who of Object.keys(base) as Who[]) {
    for (const [i, ref] of refs.entries()) {
      const got = await getOk(base[who] + paths[i]!, [200], headers(who));
      if (got.body.length !== ref.size) throw new Error(`${who} served ${got.body.length} bytes for ${ref.id}, expected ${ref.size}`);
      if (who.startsWith('nuproxy') && header(got, 'x-nuproxy-cache') !== 'hit') throw new Error(`${who} did not serve ${ref.id} from the cache (${header(got, 'x-nuproxy-cache')})`);
      if (who === 'bare' && sha256(got.body) !== wants[i]) throw new Error(`the bare server served other bytes for ${ref.id}`);
    }
  }
  return { workers, up, paths, base, headers };
}

function need(v: string | undefined): string {
  if (!v) throw new Error('tool nginx is not available');
  return v;
}
