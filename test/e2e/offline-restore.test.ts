// The real `dotnet restore` through the built `nuproxy serve` process, then with the upstream gone for good: the
// same cache dir served by a restarted process (a) in offline mode, with no connection to the upstream at all, and
// (b) online but with the upstream down and nothing stored in memory, answering from what is on disk.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { get } from '../support/http.js';

const reason = skipReason('offline-restore (dotnet restore from the cache alone)');

const REFS = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
];
const MUST = ['xunit/2.9.3', 'xunit.core/2.9.3', 'xunit.assert/2.9.3', 'xunit.extensibility.core/2.9.3', 'xunit.extensibility.execution/2.9.3', 'xunit.abstractions/2.0.3', 'newtonsoft.json/13.0.3'];

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Listens on a port and counts connections (each is closed at once): proof that nothing dialled it. */
async function canary(port: number): Promise<{ connections: () => number; close: () => Promise<void> } | undefined> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    n++;
    sockets.add(s);
    s.destroy();
  });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!ok) return undefined;
  return {
    connections: () => n,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe.skipIf(reason !== undefined)('dotnet restore from the cache alone (offline, and with the upstream down)', () => {
  let work: string;
  let cacheDir: string;
  let upstream: TestUpstream | undefined;
  let upstreamPort: number;
  let upstreamOrigin: string;
  let proxy: NuproxyProcess | undefined;
  const started: NuproxyProcess[] = [];
  let online: string[] = [];
  const projects: DotnetProject[] = [];

  const config = (): Record<string, unknown> => ({
    cache: { dir: cacheDir },
    upstreams: [{ name: 'real', serviceIndex: `${upstreamOrigin}/v3/index.json` }],
    log: { level: 'info' },
    shutdownGrace: '2s',
  });
  const project = async (url: string): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: `${url}v3/index.json`, packages: REFS });
    projects.push(p);
    return p;
  };
  const startProxy = async (name: string, args: string[] = []): Promise<NuproxyProcess> => {
    const p = await startNuproxy(work, name, config(), args);
    started.push(p);
    return p;
  };
  const stopProxy = async (): Promise<void> => {
    if (proxy) expect(await proxy.stop()).toBe(0);
    proxy = undefined;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-offline-'));
    cacheDir = join(work, 'cache');
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    upstreamOrigin = upstream.origin;
    upstreamPort = Number(new URL(upstream.origin).port);
  });
  afterAll(async () => {
    // every process this file started, also those a failed test left running
    await Promise.all(started.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.stop()));
    await upstream?.close();
    await Promise.all(projects.map((p) => removeProject(p)));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('restores through the proxy process while the upstream is up, then both stop', async () => {
    proxy = await startProxy('online');
    const p = await project(proxy.url);
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    online = restoredPackages(p);
    for (const e of MUST) expect(online).toContain(e);
    expect(upstream!.hits('/v3-flatcontainer/xunit/2.9.3/xunit.2.9.3.nupkg')).toBe(1);
    await upstream!.close();
    upstream = undefined;
    await stopProxy();
  }, 300_000);

  it('(a) --offline on the same cache dir: restores into empty client folders without contacting the upstream', async () => {
    expect(online.length, 'the online restore ran').toBeGreaterThan(0);
    const watch = await canary(upstreamPort); // the upstream's port, listening again: any dial would show here
    if (!watch) console.warn(`[offline-restore] port ${upstreamPort} was taken again; checking the logs only`);
    try {
      proxy = await startProxy('offline', ['--offline']);
      const ready = await get(`${proxy.url}health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.json()).toMatchObject({ ready: true, offline: true });

      const p = await project(proxy.url);
      const r = await restore(p);
      expect(r.code, explain(r)).toBe(0);
      expect(restoredPackages(p)).toEqual(online);

      const lines = proxy.lines;
      const requests = lines.filter((l) => l.msg === 'request' && String(l.path).startsWith('/v3/'));
      expect(requests.length).toBeGreaterThan(0);
      // package files name the upstream that once supplied them (from their sidecars); everything is a cache hit
      const packageFile = (l: Record<string, unknown>): boolean => /\.(nupkg|nuspec)$/.test(String(l.path));
      expect(requests.filter((l) => !packageFile(l) && l.upstream !== undefined && l.upstream !== ''), 'metadata attributed to an upstream').toEqual([]);
      expect(requests.filter((l) => l.cache !== 'hit'), 'answers that were not cache hits').toEqual([]);
      expect(requests.filter((l) => (l.status as number) >= 500), 'failed answers').toEqual([]);
      expect(lines.filter((l) => /upstream/i.test(String(l.msg)) && l.msg !== 'request'), 'log lines about upstreams').toEqual([]);
      expect(JSON.stringify(lines)).not.toContain(upstreamOrigin);
      if (watch) expect(watch.connections(), 'connections to the upstream port').toBe(0);
      await stopProxy();
    } finally {
      await watch?.close();
    }
  }, 300_000);

  it('(b) online again with the upstream still down and an empty memory store: restores from what is on disk', async () => {
    expect(online.length, 'the online restore ran').toBeGreaterThan(0);
    proxy = await startProxy('fallback');
    const ready = await get(`${proxy.url}health/ready`);
    expect(ready.json()).toMatchObject({ offline: false });

    const p = await project(proxy.url);
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    expect(restoredPackages(p)).toEqual(online);

    const requests = proxy.lines.filter((l) => l.msg === 'request');
    const nupkgs = requests.filter((l) => String(l.path).endsWith('.nupkg'));
    expect(nupkgs.length).toBeGreaterThan(0);
    expect(nupkgs.every((l) => l.status === 200 && l.cache === 'hit'), JSON.stringify(nupkgs)).toBe(true);
    expect(requests.filter((l) => (l.status as number) >= 500), 'failed answers').toEqual([]);
    // version lists came from the disk ('stale': no upstream could answer)
    const lists = requests.filter((l) => /^\/v3\/flat\/[^/]+\/index\.json$/.test(String(l.path)));
    expect(lists.length).toBeGreaterThan(0);
    expect(lists.every((l) => l.status === 200 && l.cache === 'stale'), JSON.stringify(lists)).toBe(true);
    await stopProxy();
  }, 300_000);
});
