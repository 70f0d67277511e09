// The real `dotnet restore` on a shared bucket: two built `nuproxy serve` processes on one s3rver bucket and one
// Redis. Instance A restores a project while the upstream is up (the packages go into the bucket); then the
// upstream is stopped and instance B, started only now and so having fetched nothing, serves a second restore into
// empty client folders: it succeeds with no connection to the upstream, and every .nupkg is byte-identical to A's.
// redisBlobMaxMB is 0 so that no package can reach B through Redis: the bucket is the only way.
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { needTool } from '../support/need.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3, bucketKeys } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const what = 's3-restore (dotnet restore through the instance that fetched nothing, on one bucket)';
const reason = skipReason(what) ?? needTool('redis-server', redisServerPath() !== undefined, what);

const REFS = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
];
const MUST = ['xunit/2.9.3', 'xunit.core/2.9.3', 'xunit.assert/2.9.3', 'xunit.extensibility.core/2.9.3', 'xunit.extensibility.execution/2.9.3', 'xunit.abstractions/2.0.3', 'newtonsoft.json/13.0.3'];
const ENV = { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET };

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Listens on a port and counts connections (each is closed at once): proof that nothing dialled it. */
async function canary(port: number): Promise<{ connections: () => number; close: () => Promise<void> } | undefined> {
  let n = 0;
  const server: Server = createServer((s: Socket) => {
    n++;
    s.destroy();
  });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!ok) return undefined;
  return { connections: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

/** 'lowerid/version' → SHA-512 (hex) of the .nupkg dotnet kept in the project's global-packages folder. */
async function nupkgHashes(p: DotnetProject, entries: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const [id, ver] = e.split('/') as [string, string];
    const bytes = await readFile(join(p.packagesDir, id, ver, `${id}.${ver}.nupkg`));
    out.set(e, createHash('sha512').update(bytes).digest('hex'));
  }
  return out;
}


describe.skipIf(reason !== undefined)('dotnet restore through the instance that fetched nothing, on one bucket', () => {
  let work: string;
  let s3: TestS3 | undefined;
  let redis: TestRedis | undefined;
  let upstream: TestUpstream | undefined;
  let upstreamOrigin: string;
  let upstreamPort: number;
  const started: NuproxyProcess[] = [];
  const projects: DotnetProject[] = [];
  let fromA: { project: DotnetProject; restored: string[] } | undefined;

  const config = (name: string): Record<string, unknown> => ({
    cache: { dir: join(work, `cache-${name}`), metadata: redis!.url, redisBlobMaxMB: 0 },
    storage: { kind: 's3', s3: { endpoint: s3!.endpoint, bucket: s3!.bucket, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } },
    upstreams: [{ name: 'real', serviceIndex: `${upstreamOrigin}/v3/index.json` }],
    log: { level: 'info' },
    shutdownGrace: '2s',
  });
  const startInstance = async (name: string): Promise<NuproxyProcess> => {
    const p = await startNuproxy(work, name, config(name), [], ENV);
    started.push(p);
    return p;
  };
  const project = async (url: string): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: `${url}v3/index.json`, packages: REFS });
    projects.push(p);
    return p;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-s3-restore-'));
    [s3, redis, upstream] = await Promise.all([startS3('nupkgs'), startRedis(), startTestUpstream({ packageDirs: [findRealPackagesDir()!] })]);
    upstreamOrigin = upstream.origin;
    upstreamPort = Number(new URL(upstream.origin).port);
  });
  afterAll(async () => {
    // every process this file started, also those a failed test left running
    await Promise.all(started.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.stop()));
    await upstream?.close();
    await redis?.stop();
    await s3?.close();
    await Promise.all(projects.map((p) => removeProject(p)));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('instance A restores while the upstream is up: the packages land in the bucket', async () => {
    const a = await startInstance('a');
    const p = await project(a.url);
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    const restored = restoredPackages(p);
    for (const e of MUST) expect(restored).toContain(e);
    expect(upstream!.hits('/v3-flatcontainer/xunit/2.9.3/xunit.2.9.3.nupkg')).toBe(1);

    // every package dotnet got is an object in the bucket (redisBlobMaxMB 0: the bucket is their only shared home)
    const keys = await bucketKeys(s3!);
    for (const e of restored) {
      const [id, ver] = e.split('/') as [string, string];
      expect(keys.some((k) => k.endsWith(`/${id}.${ver}.nupkg`)), `${e} in the bucket (keys: ${keys.join(', ')})`).toBe(true);
    }
    fromA = { project: p, restored };
    expect(await a.stop()).toBe(0);
  }, 120_000);

  it('with the upstream stopped, instance B (fetched nothing) restores the same project: no upstream contact, identical bytes', async () => {
    expect(fromA, 'the restore through A ran').toBeDefined();
    const upstreamRequests = upstream!.requests.length;
    await upstream!.close();
    upstream = undefined;
    const watch = await canary(upstreamPort); // the upstream's port, listening again: any dial would show here
    if (!watch) console.warn(`[s3-restore] port ${upstreamPort} was taken again; checking the logs only`);
    try {
      const b = await startInstance('b');
      const p = await project(b.url);
      const r = await restore(p);
      expect(r.code, explain(r)).toBe(0);
      const restored = restoredPackages(p);
      expect(restored).toEqual(fromA!.restored);

      // byte-identical: the SHA-512 of every .nupkg dotnet kept, from A's restore and from B's, and the original
      const [ha, hb] = await Promise.all([nupkgHashes(fromA!.project, restored), nupkgHashes(p, restored)]);
      expect(hb).toEqual(ha);
      const real = findRealPackagesDir()!;
      for (const e of restored) {
        const [id, ver] = e.split('/') as [string, string];
        const original = createHash('sha512').update(await readFile(join(real, id, ver, `${id}.${ver}.nupkg`))).digest('hex');
        expect(hb.get(e), `${e} as the upstream had it`).toBe(original);
      }

      // B never reached the upstream: nothing dialled its port, and it answered every package itself
      if (watch) expect(watch.connections(), 'connections to the upstream port').toBe(0);
      expect(upstreamRequests).toBeGreaterThan(0);
      const requests = b.lines.filter((l) => l.msg === 'request');
      const nupkgs = requests.filter((l) => String(l.path).endsWith('.nupkg'));
      expect(nupkgs.length).toBeGreaterThanOrEqual(restored.length);
      expect(nupkgs.filter((l) => l.status !== 200 || l.cache !== 'hit'), 'package answers that were not 200 hits').toEqual([]);
      expect(requests.filter((l) => (l.status as number) >= 500), 'failed answers').toEqual([]);
      // s3rver's key id and secret are both "S3RVER": neither is ever the value of a log field
      expect(JSON.stringify(started.flatMap((x) => x.lines))).not.toContain(`"${S3RVER_SECRET}"`);
      expect(await b.stop()).toBe(0);
    } finally {
      await watch?.close();
    }
  }, 120_000);
});
