import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../../src/cache/fs-blob-store.js';
import { NuspecKeeper } from '../../../src/feed/nuspec-keeper.js';
import { packageKey } from '../../../src/feed/cache-keys.js';
import { createLogSink } from '../../support/log-sink.js';

// A real store on disk; only the keeper's clock bound is shortened.
describe('NuspecKeeper', () => {
  let dir: string;
  let store: FsBlobStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuspec-keeper-'));
    store = new FsBlobStore(dir);
    await store.init();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function storePackages(prefix: string, n: number): Promise<{ id: string; nupkg: string; nuspec: Buffer }[]> {
    const out = [];
    for (let i = 0; i < n; i++) {
      const id = `${prefix}.${i}`;
      const nupkg = packageKey(id, '1.0.0', 'nupkg');
      await store.put(nupkg, Buffer.from(`not read: the nuspec is known (${id})`));
      out.push({ id, nupkg, nuspec: Buffer.from(`<package><metadata><id>${id}</id></metadata></package>`) });
    }
    return out;
  }

  async function keptCount(pkgs: { id: string; nuspec: Buffer }[]): Promise<number> {
    let n = 0;
    for (const p of pkgs) if ((await store.read(packageKey(p.id, '1.0.0', 'nuspec')))?.equals(p.nuspec)) n++;
    return n;
  }

  it('on a server that is never idle, each nuspec waits at most the bound from when it was scheduled, not one bound after another', async () => {
    const pkgs = await storePackages('busy', 20);
    const keeper = new NuspecKeeper(store, createLogSink().logger, () => true, () => undefined, 300);
    const t0 = Date.now();
    for (const p of pkgs) keeper.schedule(p.id, '1.0.0', p.nupkg, 'up', p.nuspec);
    await keeper.drain();
    const took = Date.now() - t0;
    expect(await keptCount(pkgs)).toBe(20);
    expect(took).toBeGreaterThanOrEqual(290); // it did wait for a quiet moment that never came
    expect(took).toBeLessThan(20 * 300 / 2); // one bound after another would be 6 s
  });

  it('on a quiet server a queue of nuspecs is kept back to back, and hurry() ends the waiting of a busy one', async () => {
    const quiet = await storePackages('quiet', 100);
    const idle = new NuspecKeeper(store, createLogSink().logger, () => false, () => undefined, 60_000);
    const t0 = Date.now();
    for (const p of quiet) idle.schedule(p.id, '1.0.0', p.nupkg, 'up', p.nuspec);
    await idle.drain();
    expect(await keptCount(quiet)).toBe(100);
    expect(Date.now() - t0).toBeLessThan(100 * 50 / 2); // a 50 ms sleep per nuspec would be 5 s

    const stopping = await storePackages('stopping', 10);
    const busy = new NuspecKeeper(store, createLogSink().logger, () => true, () => undefined, 60_000);
    for (const p of stopping) busy.schedule(p.id, '1.0.0', p.nupkg, 'up', p.nuspec);
    busy.hurry();
    await busy.drain();
    expect(await keptCount(stopping)).toBe(10);
  });
});
