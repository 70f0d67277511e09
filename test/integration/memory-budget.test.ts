import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { divideMemory } from '../../src/config/memory-budget.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

// cache.memoryMaxMB really bounds the caches app.ts and the HTTP edge build from it: a small budget keeps the
// metadata store and the render cache small, and a larger one (the control) shows the same load would have been
// kept, so the bound is what made the difference.
const MB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes held in ArrayBuffers (every rendered body is one) once garbage is collected. */
function heldBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

describe('one memory budget', () => {
  let upstream: TestUpstream;

  beforeAll(async () => {
    // search answers of ~0.4 MB each: four packages with long descriptions
    upstream = await startTestUpstream({
      packages: [1, 2, 3, 4].map((i) => makeNupkg({ id: `Budget.Lib${i}`, version: '1.0.0', description: `${'d'.repeat(100_000)}${i}` })),
    });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it.each([
    [16, false],
    [128, true],
  ])('the metadata store at memoryMaxMB %d keeps its share and no more (everything: %s)', async (memoryMaxMB, keepsAll) => {
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { memoryMaxMB } } });
    try {
      const share = divideMemory(memoryMaxMB).metadataStore;
      const body = 'x'.repeat(256 * 1024);
      const keys = Array.from({ length: 24 }, (_, i) => `budget-test:${i}`); // 6 MB: over the share of 16, under that of 128
      for (const key of keys) await proxy.store.set(key, { body, fetchedAt: 0 }, 3_600_000);
      const kept: string[] = [];
      for (const key of keys) if ((await proxy.store.get(key)) !== undefined) kept.push(key);
      expect(kept.length * body.length).toBeLessThanOrEqual(share);
      if (keepsAll) expect(kept).toEqual(keys);
      else {
        // the newest entries stay, the oldest went to make room
        expect(kept.length).toBeGreaterThanOrEqual(Math.floor(share / (body.length + 200)) - 1);
        expect(kept).toEqual(keys.slice(keys.length - kept.length));
      }
    } finally {
      await proxy.stop();
    }
  });

  it.each([
    [16, false],
    [128, true],
  ])('the render cache at memoryMaxMB %d holds at most its share of rendered answers (all of them: %s)', async (memoryMaxMB, keepsAll) => {
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { memoryMaxMB } } });
    try {
      const share = divideMemory(memoryMaxMB).renderCache;
      const first = await fetch(`${proxy.url}v3/query?q=budget&take=10`);
      const size = (await first.arrayBuffer()).byteLength;
      expect(size).toBeGreaterThan(400_000);
      const before = heldBuffers();
      // each query string is its own answer and its own rendered body: 30 × 0.4 MB = 12 MB, over the
      // render share at 16 (2.4 MB), under the share at 128 (19.5 MB)
      for (let n = 0; n < 30; n++) {
        const res = await fetch(`${proxy.url}v3/query?q=budget&take=10&n=${n}`);
        expect(res.status).toBe(200);
        expect((await res.arrayBuffer()).byteLength).toBe(size);
      }
      const grown = heldBuffers() - before;
      if (keepsAll) expect(grown).toBeGreaterThan(30 * size * 0.8);
      else expect(grown).toBeLessThan(share + 2 * MB);
    } finally {
      await proxy.stop();
    }
  });
});
