import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy } from '../support/proxy.js';

// A cold restore queues one nuspec per package, kept at a quiet moment. Stopping right after it must keep them
// all and return, not sit out the grace (30 s by default: what Kubernetes waits before SIGKILL).
describe('shutdown right after a cold burst of downloads', () => {
  const N = 300;
  let upstream: TestUpstream;
  beforeAll(async () => {
    const packages = [];
    for (let i = 0; i < N; i++) packages.push(makeNupkg({ id: `Burst.Pkg${i}`, version: '1.0.0' }));
    upstream = await startTestUpstream({ packages });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it('keeps the nuspec of every package fetched and closes long before the grace ends', async () => {
    const grace = 8_000;
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { shutdownGrace: `${grace}ms` } });
    const agent = new Agent({ connections: 8 });
    try {
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const i = next++;
          const res = await request(`${proxy.url}v3/flat/burst.pkg${i}/1.0.0/burst.pkg${i}.1.0.0.nupkg`, { dispatcher: agent });
          await res.body.arrayBuffer();
          expect(res.statusCode).toBe(200);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    } finally {
      await agent.close();
    }
    const t0 = Date.now();
    await proxy.close();
    const took = Date.now() - t0;
    const missing = [];
    for (let i = 0; i < N; i++) {
      if (!existsSync(join(proxy.cacheDir, 'packages', `burst.pkg${i}`, '1.0.0', `burst.pkg${i}.nuspec`))) missing.push(i);
    }
    expect(missing).toEqual([]);
    // one 50 ms sleep per queued nuspec (the defect) is 15 s, cut off by the grace with most of them not kept
    expect(took).toBeLessThan(grace / 2);
    await proxy.stop();
  });

  it('when the grace is over, a download still under way is cut off: close returns, and no part of it is a cache file', async () => {
    const slow = makeNupkg({ id: 'Slow.Pkg', version: '1.0.0', padBytes: 4 * 1024 * 1024 });
    const up = await startTestUpstream({ packages: [slow] });
    const path = '/v3-flatcontainer/slow.pkg/1.0.0/slow.pkg.1.0.0.nupkg';
    up.setFault(path, { kind: 'throttle', bytesPerSecond: 256 * 1024 }); // 16 s for the whole package
    const proxy = await startTestProxy({
      upstreams: [{ name: 'slow', serviceIndex: up.serviceIndexUrl, retries: 0, timeouts: { connect: '2s', headers: '5s', body: '60s' } }],
      config: { shutdownGrace: '1s' },
    });
    try {
      const download = request(`${proxy.url}v3/flat/slow.pkg/1.0.0/slow.pkg.1.0.0.nupkg`).then(
        async (res) => {
          await res.body.arrayBuffer();
          return 'whole';
        },
        () => 'cut off',
      );
      const started = Date.now();
      while (up.hits(path) === 0 && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 20));
      expect(up.hits(path)).toBe(1);
      const t0 = Date.now();
      await proxy.close();
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(950); // it gave the download its grace
      expect(took).toBeLessThan(6_000); // and did not wait for the rest of the 16 s
      expect(await download).toBe('cut off');
      expect(existsSync(join(proxy.cacheDir, 'packages', 'slow.pkg', '1.0.0', 'slow.pkg.1.0.0.nupkg'))).toBe(false);
      expect(proxy.logs.lines.some((l) => l.msg === 'shutdown grace is over: cutting off requests and downloads still under way' && l.downloads === 1)).toBe(true);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
});
