// The real `dotnet restore` follows redirect mode's 302s to the bucket. One built `nuproxy serve` on an s3rver
// bucket with storage.s3.redirect on; the bucket is reached by clients through an HTTP relay (its publicEndpoint)
// that records every request it carries. A first restore fills the bucket (misses are streamed by nuproxy);
// a second one into a fresh global-packages folder succeeds with every .nupkg answered 302 by nuproxy and
// served by the bucket through the relay, byte-identical to the upstream's packages.
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3, bucketKeys } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const what = 's3-redirect-restore (dotnet restore following redirect mode to the bucket)';
const reason = skipReason(what);

const REFS = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
];
const MUST = ['xunit/2.9.3', 'xunit.core/2.9.3', 'xunit.assert/2.9.3', 'xunit.abstractions/2.0.3', 'newtonsoft.json/13.0.3'];
const ENV = { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET };

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

interface Relayed {
  method: string;
  /** The path without its query string. */
  path: string;
  status: number;
}

/** An HTTP relay in front of the bucket: the address clients reach it at, recording what it carried. */
async function relay(port: number): Promise<{ url: string; seen: Relayed[]; close: () => Promise<void> }> {
  const seen: Relayed[] = [];
  const server: Server = createServer((req, res) => {
    const up = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, status: r.statusCode ?? 0 });
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.once('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${own}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}


const nupkgKey = (entry: string): string => {
  const [id, ver] = entry.split('/') as [string, string];
  return `packages/${id}/${ver}/${id}.${ver}.nupkg`;
};

describe.skipIf(reason !== undefined)('dotnet restore follows redirect mode to the bucket', () => {
  let work: string;
  let s3: TestS3 | undefined;
  let upstream: TestUpstream | undefined;
  let bucketRelay: Awaited<ReturnType<typeof relay>> | undefined;
  let proxy: NuproxyProcess | undefined;
  const projects: DotnetProject[] = [];
  let first: string[] | undefined;

  const project = async (): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: `${proxy!.url}v3/index.json`, packages: REFS });
    projects.push(p);
    return p;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-s3-redirect-'));
    [s3, upstream] = await Promise.all([startS3('nupkgs'), startTestUpstream({ packageDirs: [findRealPackagesDir()!] })]);
    bucketRelay = await relay(s3.port);
    proxy = await startNuproxy(
      work,
      'redirect',
      {
        cache: { dir: join(work, 'cache') },
        storage: {
          kind: 's3',
          s3: {
            endpoint: s3.endpoint,
            bucket: s3.bucket,
            forcePathStyle: true,
            accessKeyIdEnv: 'S3_KEY',
            secretAccessKeyEnv: 'S3_SECRET',
            redirect: { enabled: true, ttl: '5m', publicEndpoint: bucketRelay.url },
          },
        },
        upstreams: [{ name: 'real', serviceIndex: `${upstream.origin}/v3/index.json` }],
        log: { level: 'info' },
        shutdownGrace: '2s',
      },
      [],
      ENV,
    );
  });
  afterAll(async () => {
    if (proxy && proxy.child.exitCode === null && proxy.child.signalCode === null) await proxy.stop();
    await bucketRelay?.close();
    await upstream?.close();
    await s3?.close();
    await Promise.all(projects.map((p) => removeProject(p)));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a first restore fills the bucket: every package is a miss streamed by nuproxy, none redirected', async () => {
    const p = await project();
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    const restored = restoredPackages(p);
    for (const e of MUST) expect(restored).toContain(e);
    const nupkgs = proxy!.lines.filter((l) => l.msg === 'request' && String(l.path).endsWith('.nupkg'));
    expect(nupkgs.filter((l) => l.status !== 200 || l.redirect !== undefined), 'first restore: package answers that were not streamed').toEqual([]);
    expect(bucketRelay!.seen.filter((s) => s.path.endsWith('.nupkg')), 'nothing fetched from the bucket by clients yet').toEqual([]);
    // committed right after the client's last byte: wait until every package is at its key
    const deadline = Date.now() + 15_000;
    for (;;) {
      const keys = new Set(await bucketKeys(s3!));
      const missing = restored.filter((e) => !keys.has(nupkgKey(e)));
      if (missing.length === 0) break;
      if (Date.now() > deadline) throw new Error(`not in the bucket: ${missing.join(', ')}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    first = restored;
  }, 180_000);

  it('a second restore into a fresh packages folder: nuproxy answers 302 for each .nupkg, the bucket serves the bytes', async () => {
    expect(first, 'the first restore ran').toBeDefined();
    const linesBefore = proxy!.lines.length;
    const upstreamNupkgs = (): number => upstream!.hits(/\.nupkg$/);
    const upstreamBefore = upstreamNupkgs();
    const p = await project(); // its own empty global-packages folder (NUGET_PACKAGES) and http-cache
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    const restored = restoredPackages(p);
    expect(restored).toEqual(first);

    // nuproxy carried no package bytes: each .nupkg answer was a redirect to the bucket
    const nupkgs = proxy!.lines.slice(linesBefore).filter((l) => l.msg === 'request' && String(l.path).endsWith('.nupkg'));
    expect(nupkgs.length).toBeGreaterThanOrEqual(restored.length);
    expect(nupkgs.filter((l) => l.status !== 302), 'package answers that were not redirects').toEqual([]);
    for (const e of restored) {
      const target = `${bucketRelay!.url}/${s3!.bucket}/${nupkgKey(e)}`;
      expect(nupkgs.some((l) => l.redirect === target), `${e} redirected to ${target}`).toBe(true);
      // and dotnet followed it: the bucket (through the relay) served that object
      expect(bucketRelay!.seen.some((s) => s.method === 'GET' && s.path === `/${s3!.bucket}/${nupkgKey(e)}` && s.status === 200), `${e} GET at the bucket`).toBe(true);
    }
    expect(upstreamNupkgs(), 'package requests to the upstream during the second restore').toBe(upstreamBefore);

    // the bytes dotnet kept are the upstream's own
    const real = findRealPackagesDir()!;
    for (const e of restored) {
      const [id, ver] = e.split('/') as [string, string];
      const kept = createHash('sha512').update(await readFile(join(p.packagesDir, id, ver, `${id}.${ver}.nupkg`))).digest('hex');
      const original = createHash('sha512').update(await readFile(join(real, id, ver, `${id}.${ver}.nupkg`))).digest('hex');
      expect(kept, `${e} as the upstream had it`).toBe(original);
    }
    // no log line holds a presigned URL's signature (or s3rver's key as a value)
    const raw = JSON.stringify(proxy!.lines);
    expect(raw).not.toContain('X-Amz-Signature');
    expect(raw).not.toContain(`"${S3RVER_SECRET}"`);
    expect(await proxy!.stop()).toBe(0);
  }, 180_000);
});
