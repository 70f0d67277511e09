// Issue #11 item 3, last clause: metadata requests must not wait behind package downloads in the upstream's
// connection pool. Today one pool of 32 connections serves both, so 32 slow downloads hold up every version list.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { document } from '../support/hostile/metadata.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const FLAT = '/v3-flatcontainer/';
const DOWNLOADS = 40; // more than the 32 connections of a pool

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('separate upstream pools for metadata and package bytes', () => {
  let hostile: HostileUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    hostile.on(/^\/v3-flatcontainer\/slow\.\d+\/index\.json$/, document('{"versions":["1.0.0"]}'));
    // package downloads that never answer (the upstream's headers timeout is far away)
    hostile.on(/\.nupkg$/, () => undefined);
    hostile.on(`${FLAT}fresh.lib/index.json`, document('{"versions":["3.0.0"]}'));
    proxy = await startTestProxy({ upstreams: [{ name: 'slow', serviceIndex: hostile.serviceIndexUrl, retries: 0, timeouts: { connect: '2s', headers: '60s', body: '60s' } }] });
  });
  afterAll(async () => {
    await hostile?.close(); // first: the stalled upstream requests fail, so the proxy has nothing left to wait for
    await proxy?.stop();
  });

  it(`a version list answers while ${DOWNLOADS} package downloads from the same upstream are stalled`, async () => {
    const clients = Array.from({ length: DOWNLOADS }, () => new AbortController());
    const downloads = clients.map((c, i) =>
      request(`${proxy.url}v3/flat/slow.${i}/1.0.0/slow.${i}.1.0.0.nupkg`, { signal: c.signal }).then(
        (r) => r.body.dump(),
        () => undefined,
      ),
    );
    try {
      // the package pool is full: 32 downloads are at the upstream, the others queue behind them
      await until(() => hostile.hits(/\.nupkg$/) >= 32, 15_000, '32 package downloads at the upstream');
      const started = performance.now();
      const r = await request(`${proxy.url}v3/flat/fresh.lib/index.json`, { signal: AbortSignal.timeout(10_000) });
      const body = await r.body.json();
      const elapsed = performance.now() - started;
      console.log(`version list answered in ${elapsed.toFixed(0)} ms with ${hostile.hits(/\.nupkg$/)} package downloads stalled at the upstream`);
      expect(r.statusCode).toBe(200);
      expect(body).toEqual({ versions: ['3.0.0'] });
      // generous ceiling: today it waits for a download to free a connection (here: never, until a timeout)
      expect(elapsed).toBeLessThan(5000);
      // still stalled: the answer did not come from a connection a download gave back
      expect(hostile.hits(/\.nupkg$/)).toBe(32);
    } finally {
      for (const c of clients) c.abort();
      await Promise.all(downloads);
    }
  });
});
