// The built `nuproxy serve` killed with SIGKILL while it writes packages, five times over on one cache dir: what a
// kill leaves behind is only temp files (never a partial package at its key), the next start sweeps them, and
// every package it serves afterwards is byte-identical to the upstream's, with its hash beside it.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { get } from '../support/http.js';
import { auditCache, filesIn } from '../support/cache-audit.js';

const ROUNDS = 5;
const BIG_PER_ROUND = 3;
const BIG_BYTES = 4 * 1024 * 1024;
const RATE = 1024 * 1024; // bytes per second: a big package takes about 4 s

interface Pkg {
  id: string;
  version: string;
  bytes: Buffer;
  lowerId: string;
  path: string; // relative to the flat container: {id}/{ver}/{id}.{ver}.nupkg
}

function pkg(id: string, version: string, padBytes: number): Pkg {
  const bytes = Buffer.from(makeNupkg({ id, version, padBytes }));
  const lowerId = id.toLowerCase();
  return { id, version, bytes, lowerId, path: `${lowerId}/${version}/${lowerId}.${version}.nupkg` };
}

/** A download that may be cut off (the proxy dies under it): how many bytes arrived, and whether it ended whole. */
async function download(url: string): Promise<{ status?: number; bytes: Buffer; error?: string }> {
  const chunks: Buffer[] = [];
  let status: number | undefined;
  try {
    const res = await request(url, { headersTimeout: 30_000, bodyTimeout: 30_000 });
    status = res.statusCode;
    for await (const c of res.body) chunks.push(c as Buffer);
    return { status, bytes: Buffer.concat(chunks) };
  } catch (err) {
    return { ...(status !== undefined ? { status } : {}), bytes: Buffer.concat(chunks), error: (err as Error).message };
  }
}

const tmpFiles = (cacheDir: string): ReturnType<typeof filesIn> => filesIn(join(cacheDir, '.tmp'));

describe('SIGKILL while packages are being written', () => {
  let work: string;
  let cacheDir: string;
  let upstream: TestUpstream;
  let proxy: NuproxyProcess | undefined;
  const rounds: { big: Pkg[]; small: Pkg }[] = [];

  const start = async (name: string): Promise<NuproxyProcess> =>
    startNuproxy(work, name, {
      cache: { dir: cacheDir },
      upstreams: [{ name: 'origin', serviceIndex: upstream.serviceIndexUrl, retries: 0 }],
      log: { level: 'info' },
      shutdownGrace: '1s',
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-crash-'));
    cacheDir = join(work, 'cache');
    for (let r = 0; r < ROUNDS; r++) {
      rounds.push({
        big: Array.from({ length: BIG_PER_ROUND }, (_, k) => pkg(`Crash.Big${k}`, `${r + 1}.0.0`, BIG_BYTES)),
        small: pkg('Crash.Small', `${r + 1}.0.0`, 32 * 1024),
      });
    }
    upstream = await startTestUpstream({ packages: rounds.flatMap((r) => [...r.big, r.small].map((p) => p.bytes)) });
  });
  afterAll(async () => {
    if (proxy && proxy.child.exitCode === null && proxy.child.signalCode === null) await proxy.stop();
    await upstream?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it(`leaves only temp files behind, sweeps them at start and never serves a partial package (${ROUNDS} rounds)`, async () => {
    proxy = await start('serve-0');
    for (let r = 0; r < ROUNDS; r++) {
      const { big, small } = rounds[r]!;
      const label = `round ${r + 1}`;

      // a small package completes before the kill: it must survive it, whole and with its hash
      const done = await get(`${proxy.url}v3/flat/${small.path}`);
      expect(done.status, label).toBe(200);
      expect(done.body.equals(small.bytes), label).toBe(true);

      // the big ones are throttled and die half-way
      for (const p of big) upstream.setFault(`/v3-flatcontainer/${p.path}`, { kind: 'throttle', bytesPerSecond: RATE });
      const pending = big.map((p) => download(`${proxy!.url}v3/flat/${p.path}`));
      const deadline = Date.now() + 10_000;
      for (;;) {
        const parts = (await tmpFiles(cacheDir)).filter((f) => f.name.endsWith('.part') && f.size >= 256 * 1024);
        if (parts.length >= big.length) break;
        expect(Date.now() < deadline, `${label}: downloads under way in .tmp`).toBe(true);
        await new Promise((res) => setTimeout(res, 25));
      }
      await new Promise((res) => setTimeout(res, r * 400)); // a different point in the download each round
      proxy.child.kill('SIGKILL');
      await proxy.exited;
      expect(proxy.child.signalCode, label).toBe('SIGKILL');
      for (const p of big) upstream.setFault(`/v3-flatcontainer/${p.path}`, undefined);

      // the clients saw a cut transfer, never a whole (or whole-looking) package
      for (const [k, res] of (await Promise.all(pending)).entries()) {
        expect(res.error, `${label}: ${big[k]!.path} should have been cut off`).toBeDefined();
        expect(res.bytes.length, `${label}: ${big[k]!.path}`).toBeLessThan(BIG_BYTES);
      }

      // on disk: nothing at the interrupted packages' keys; everything present is whole, with its sidecar
      const killed = await auditCache(cacheDir, { orphanSidecars: 'allow' });
      expect(killed.problems, `${label}: after the kill`).toEqual([]);
      for (const p of big) {
        expect(existsSync(join(cacheDir, 'packages', p.lowerId, p.version, `${p.lowerId}.${p.version}.nupkg`)), `${label}: ${p.path}`).toBe(false);
        expect(existsSync(join(cacheDir, 'packages', p.lowerId, p.version, `${p.lowerId}.${p.version}.nupkg.meta`)), `${label}: ${p.path}.meta`).toBe(false);
      }
      expect(killed.blobs, label).toContain(`packages/${small.path}`);
      const leftovers = killed.tmp.filter((n) => n.endsWith('.part'));
      expect(leftovers.length, `${label}: the interrupted downloads' temp files`).toBeGreaterThanOrEqual(big.length);

      // restart: temp files swept before it listens
      proxy = await start(`serve-${r + 1}`);
      expect(await readdir(join(cacheDir, '.tmp')), `${label}: .tmp after the restart`).toEqual([]);
      const swept = proxy.lines.find((l) => typeof l.swept === 'number');
      expect(swept?.swept, `${label}: the start-up log says what it swept`).toBeGreaterThanOrEqual(leftovers.length);

      // every package of every round so far, through the restarted proxy: the upstream's bytes, whole
      for (const p of rounds.slice(0, r + 1).flatMap((x) => [...x.big, x.small])) {
        const got = await get(`${proxy.url}v3/flat/${p.path}`);
        expect(got.status, `${label}: ${p.path}`).toBe(200);
        expect(got.body.equals(p.bytes), `${label}: ${p.path} byte-identical`).toBe(true);
        const nuspec = await get(`${proxy.url}v3/flat/${p.lowerId}/${p.version}/${p.lowerId}.nuspec`);
        expect(nuspec.status, `${label}: ${p.lowerId}.nuspec`).toBe(200);
      }
      for (const p of big) expect(upstream.hits(`/v3-flatcontainer/${p.path}`), `${label}: ${p.path} fetched again after the kill`).toBe(2);
      // let the nuspecs kept from the new downloads land, then re-hash everything
      const settle = Date.now() + 5000;
      while ((await tmpFiles(cacheDir)).length > 0 && Date.now() < settle) await new Promise((res) => setTimeout(res, 25));
      const after = await auditCache(cacheDir);
      expect(after.problems, `${label}: after the restart`).toEqual([]);
      expect(after.tmp, `${label}: .tmp after the downloads`).toEqual([]);
      const expected = rounds.slice(0, r + 1).flatMap((x) => [...x.big, x.small]).flatMap((p) => [`packages/${p.path}`, `packages/${p.lowerId}/${p.version}/${p.lowerId}.nuspec`]);
      expect(after.blobs, label).toEqual(expected.sort());
    }
    expect(await proxy.stop()).toBe(0);
  }, 180_000);
});
