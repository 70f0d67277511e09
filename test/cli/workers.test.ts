// `workers: 2`: the built nuproxy as a user runs it, one primary and two worker processes sharing the port and
// the disk cache. Requests go over fresh connections so that both workers answer.
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { pushMultipart } from '../support/push.js';
import { getOutcome } from '../support/http.js';

const KEY = 'push-key';

/** A GET on a new connection (closed after the answer): the cluster hands each connection to the next worker. */
function fresh(url: string): Promise<{ status: number; body: Buffer; headers: Record<string, unknown>; firstByteAt: number; doneAt: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteAt = 0;
      res.on('data', (c: Buffer) => {
        firstByteAt ||= performance.now();
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers, firstByteAt, doneAt: performance.now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function pidsAnswering(base: string, n = 12): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) pids.add((JSON.parse((await fresh(`${base}health/ready`)).body.toString()) as { pid: number }).pid);
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('workers: 2 (node:cluster, one disk cache)', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: NuproxyProcess;
  const big = makeNupkg({ id: 'Herd.Big', version: '1.0.0', padBytes: 3 * 1024 * 1024 });
  const bad = makeNupkg({ id: 'Herd.Bad', version: '1.0.0', padBytes: 3 * 1024 * 1024 });
  let workerPids: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-workers-'));
    upstream = await startTestUpstream({ packages: [big, bad, makeNupkg({ id: 'Team.Lib', version: '1.0.0' })], publish: { apiKey: KEY } });
    proxy = await startNuproxy(dir, 'workers', {
      workers: 2,
      cache: { dir: join(dir, 'cache') },
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs one "listening" line from the primary once both workers listen, and both answer', async () => {
    const listening = proxy.lines.filter((l) => typeof l.url === 'string' && /listening/.test(String(l.msg)));
    expect(listening).toHaveLength(1);
    expect(listening[0]).toMatchObject({ role: 'primary', workers: 2 });
    const pids = await pidsAnswering(proxy.url);
    expect(pids.size).toBe(2);
    expect(pids.has(proxy.child.pid!)).toBe(false);
    workerPids = [...pids];
  });

  it('makes one upstream fetch for 40 concurrent misses spread over both workers, all bodies exact', async () => {
    const path = 'herd.big/1.0.0/herd.big.1.0.0.nupkg';
    upstream.setFault(`/v3-flatcontainer/${path}`, { kind: 'throttle', bytesPerSecond: 6 * 1024 * 1024 });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 40 }, () => fresh(`${proxy.url}v3/flat/${path}`)));
    upstream.setFault(`/v3-flatcontainer/${path}`, undefined);
    expect(upstream.hits(`/v3-flatcontainer/${path}`)).toBe(1);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.from(big))).toBe(true);
    }
    const outcomes = results.map((r) => r.headers['x-nuproxy-cache']);
    expect(outcomes.filter((o) => o === 'miss')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'shared')).toHaveLength(39);
    // the other worker's clients follow the download as it arrives (its temp file, through progress messages):
    // every client has its first byte before any client has the whole (~0.5 s at the throttled rate); clients
    // waiting for the stored file would get their first byte only after that
    const firstDone = Math.min(...results.map((r) => r.doneAt)) - started;
    const lastFirstByte = Math.max(...results.map((r) => r.firstByteAt)) - started;
    expect(lastFirstByte).toBeLessThan(firstDone);
  });

  it('a download that fails its checks reaches no client of either worker as a complete body; nothing is stored', async () => {
    const path = 'herd.bad/1.0.0/herd.bad.1.0.0.nupkg';
    // the upstream dies 2.5 MB into the 3 MB package: the response is under way for every client (past 2 MB a
    // package streams as it arrives), and the fetching worker's download fails
    upstream.setFault(`/v3-flatcontainer/${path}`, { kind: 'reset-mid-body', afterBytes: 2.5 * 1024 * 1024 });
    const results = await Promise.all(Array.from({ length: 20 }, () => getOutcome(`${proxy.url}v3/flat/${path}`, { connection: 'close' })));
    // every client of either worker (the fetching one's and the followers'): the head, then a cut before the end;
    // a client whose request reaches a worker only as the download fails gets the clean 502 instead. Never a
    // complete body.
    const cut = results.filter((r) => r.status === 200);
    expect(cut.length).toBeGreaterThan(0);
    for (const r of cut) {
      expect(r.complete).toBe(false);
      expect(r.body.length).toBeLessThan(Number(r.headers['content-length']));
      expect(Buffer.from(bad).subarray(0, r.body.length).equals(r.body)).toBe(true);
    }
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(502);
      expect(JSON.parse(r.body.toString('utf8'))).toMatchObject({ upstream: expect.any(String) });
    }
    upstream.setFault(`/v3-flatcontainer/${path}`, undefined);
    const before = upstream.hits(`/v3-flatcontainer/${path}`);
    const again = await Promise.all(Array.from({ length: 6 }, () => fresh(`${proxy.url}v3/flat/${path}`)));
    for (const r of again) expect(r.body.equals(Buffer.from(bad))).toBe(true);
    expect(upstream.hits(`/v3-flatcontainer/${path}`)).toBe(before + 1);
  });

  it('a push through one worker is seen at once by both: version lists and search', async () => {
    const list = async (): Promise<string[][]> =>
      Promise.all(Array.from({ length: 6 }, async () => (JSON.parse((await fresh(`${proxy.url}v3/flat/team.lib/index.json`)).body.toString()) as { versions: string[] }).versions));
    const search = async (): Promise<string[][]> =>
      Promise.all(
        Array.from({ length: 6 }, async () => {
          const doc = JSON.parse((await fresh(`${proxy.url}v3/query?q=Team.Lib`)).body.toString()) as { data: { id: string; versions: { version: string }[] }[] };
          return doc.data.flatMap((d) => d.versions.map((v) => v.version));
        }),
      );
    // both workers have the id cached (fresh for minutes) before the push
    for (const v of await list()) expect(v).toEqual(['1.0.0']);
    for (const v of await list()) expect(v).toEqual(['1.0.0']); // hits: each worker keeps its merged answer
    for (const v of await search()) expect(v).toEqual(['1.0.0']);
    const pushed = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Team.Lib', version: '1.1.0' }), { 'x-nuget-apikey': KEY });
    expect(pushed.status).toBe(201);
    for (const v of await list()) expect(v).toEqual(['1.0.0', '1.1.0']);
    for (const v of await search()) expect(v).toEqual(['1.0.0', '1.1.0']);
  });

  it('replaces a worker that dies, and keeps answering', async () => {
    const victim = workerPids[0]!;
    process.kill(victim, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    let pids = new Set<number>();
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      pids = await pidsAnswering(proxy.url, 6).catch(() => new Set<number>());
      if (pids.size === 2 && !pids.has(victim)) break;
    }
    expect(pids.size).toBe(2);
    expect(pids.has(victim)).toBe(false);
    expect(proxy.lines.some((l) => l.msg === 'worker exited; starting another')).toBe(true);
    // the package stored before is still served by both
    for (let i = 0; i < 4; i++) expect((await fresh(`${proxy.url}v3/flat/herd.big/1.0.0/herd.big.1.0.0.nupkg`)).body.equals(Buffer.from(big))).toBe(true);
    workerPids = [...pids];
  });

  it('stops every worker on SIGTERM, exits 0, and every line it wrote was whole JSON', async () => {
    expect(workerPids.every(alive)).toBe(true);
    expect(await proxy.stop()).toBe(0);
    for (let i = 0; i < 50 && workerPids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(workerPids.filter(alive)).toEqual([]);
    expect(proxy.invalid).toEqual([]);
    expect(proxy.lines.filter((l) => l.msg === 'stopped')).toHaveLength(3);
    expect(proxy.lines.filter((l) => l.msg === 'request').length).toBeGreaterThan(50);
  });
});

describe('workers when the primary process is killed', () => {
  it('stop on their own (no orphan keeps the port)', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nuproxy-workers-orphan-'));
    const upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Orphan.Lib', version: '1.0.0' })] });
    try {
      const proxy = await startNuproxy(dir, 'orphan', { workers: 2, cache: { dir: join(dir, 'cache') }, upstreams: [{ name: 'u', serviceIndex: upstream.serviceIndexUrl }] });
      const pids = [...(await pidsAnswering(proxy.url))];
      expect(pids).toHaveLength(2);
      proxy.child.kill('SIGKILL');
      await proxy.exited;
      for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      expect(pids.filter(alive)).toEqual([]);
      // (node:cluster ends a worker whose channel to the primary breaks unexpectedly; the port is free again)
      await expect(fresh(`${proxy.url}health/live`)).rejects.toThrow();
    } finally {
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
