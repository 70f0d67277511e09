// The bounded cache with `workers: 2` (the built nuproxy): one worker evicts, the reads of both reach it, and the
// shared disk store stays under cache.maxSize with the package both workers keep serving kept.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { walkStore } from '../../src/feed/evictor.js';
import { createLogSink } from '../support/log-sink.js';
import { makeNupkg } from '../support/nupkg.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { getOutcome } from '../support/http.js';

const KB = 1024;
const MAX = 1300 * KB;

/** A GET on a new connection: the cluster hands each connection to the next worker. */
const fresh = (url: string) => getOutcome(url, { connection: 'close' });

describe('workers: 2 with cache.maxSize', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: NuproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-workers-evict-'));
    upstream = await startTestUpstream({
      packages: [makeNupkg({ id: 'Hot.Lib', version: '1.0.0', padBytes: 200 * KB }), ...Array.from({ length: 8 }, (_, i) => makeNupkg({ id: 'Cold.Lib', version: `1.0.${i}`, padBytes: 200 * KB }))],
    });
    proxy = await startNuproxy(dir, 'workers-evict', {
      workers: 2,
      cache: { dir: join(dir, 'cache'), maxSize: MAX, evictTo: 0.8, evictEvery: '1s' },
      upstreams: [{ name: 'up', serviceIndex: upstream.serviceIndexUrl }],
      log: { level: 'info' },
      shutdownGrace: '2s',
    });
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('one worker evicts; the store stays under the cap and the package read on every worker is kept', async () => {
    const hot = `${proxy.url}v3/flat/hot.lib/1.0.0/hot.lib.1.0.0.nupkg`;
    expect((await fresh(hot)).status).toBe(200);
    for (let i = 0; i < 8; i++) {
      expect((await fresh(`${proxy.url}v3/flat/cold.lib/1.0.${i}/cold.lib.1.0.${i}.nupkg`)).status).toBe(200);
      // read again over fresh connections: both workers serve it, only one of them evicts
      for (let k = 0; k < 4; k++) expect((await fresh(hot)).status).toBe(200);
    }
    const blobs = new FsBlobStore(join(dir, 'cache'));
    const deadline = Date.now() + 30_000;
    let refs: string[] = [];
    let bytes = Infinity;
    while (Date.now() < deadline) {
      const index = await walkStore(blobs, createLogSink('warn').logger);
      refs = [...index.keys()];
      bytes = [...index.values()].reduce((n, e) => n + e.bytes, 0);
      if (bytes <= MAX) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(bytes).toBeLessThanOrEqual(MAX);
    expect(refs).toContain('hot.lib/1.0.0');
    // log lines of the workers arrive through their own buffers: give them a moment
    for (let i = 0; i < 50 && !proxy.lines.some((l) => l.msg === 'evicted'); i++) await new Promise((r) => setTimeout(r, 200));
    expect(proxy.lines.filter((l) => l.msg === 'this worker runs eviction')).toHaveLength(1);
    const evicted = proxy.lines.filter((l) => l.msg === 'evicted');
    expect(evicted.length).toBeGreaterThan(0);
    expect(evicted.every((l) => l.id === 'cold.lib')).toBe(true);
    // an evicted package is served again (fetched on demand) by whichever worker gets the connection
    for (let k = 0; k < 3; k++) expect(await fresh(`${proxy.url}v3/flat/cold.lib/1.0.0/cold.lib.1.0.0.nupkg`)).toMatchObject({ status: 200 });
  }, 120_000);
});
