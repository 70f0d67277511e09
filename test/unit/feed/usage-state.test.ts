// The usage and pins state of the bounded cache on a real disk store: written atomically, read back, merged with
// what another instance wrote, and a corrupt file never trusted (usage "unknown", never "nothing was used").
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/cache/fs-blob-store.js';
import { planEviction } from '../../../src/feed/evict-plan.js';
import { readPins, updatePins, UsageBook, USAGE_KEY } from '../../../src/feed/usage-state.js';
import { createLogSink } from '../../support/log-sink.js';

const dirs: string[] = [];
async function store(): Promise<FsBlobStore> {
  const d = await mkdtemp(join(tmpdir(), 'nuproxy-usage-'));
  dirs.push(d);
  const s = new FsBlobStore(d);
  await s.init();
  return s;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('usage state', () => {
  it('records served keys by package, flushes, and reads them back merged with another writer', async () => {
    const blobs = await store();
    const log = createLogSink('warn');
    const a = new UsageBook(blobs, log.logger, 1_000);
    expect(await a.load()).toBe('absent');
    expect(a.known).toBe(true);
    a.note(['packages/x/1.0.0/x.1.0.0.nupkg', 'packages/x/1.0.0/x.nuspec', 'vulnerabilities/index.json'], 5_000);
    expect(a.size).toBe(1);
    await a.flush();
    const b = new UsageBook(blobs, log.logger, 9_000);
    expect(await b.load()).toBe('ok');
    expect(b.lastUsed('x/1.0.0')).toBe(5_000);
    expect(b.since).toBe(1_000); // tracking started with the first writer
    b.note(['packages/y/2.0.0/y.2.0.0.nupkg'], 7_000);
    a.note(['packages/z/3.0.0/z.3.0.0.nupkg'], 8_000);
    await a.flush();
    await b.flush(); // merges a's z in
    const c = new UsageBook(blobs, log.logger, 10_000);
    await c.load();
    expect([c.lastUsed('x/1.0.0'), c.lastUsed('y/2.0.0'), c.lastUsed('z/3.0.0')]).toEqual([5_000, 7_000, 8_000]);
  });

  it('a corrupt or foreign state file is ignored with a warning and makes usage unknown: the unused rule removes nothing', async () => {
    const blobs = await store();
    for (const bytes of ['{not json', JSON.stringify({ v: 1, since: 0, used: { 'a/1.0.0': -5 } }), JSON.stringify({ hello: 'world' })]) {
      await blobs.put(USAGE_KEY, Buffer.from(bytes));
      const log = createLogSink('warn');
      const book = new UsageBook(blobs, log.logger, 1_000_000);
      expect(await book.load()).toBe('corrupt');
      expect(book.known).toBe(false);
      expect(log.lines.some((l) => l.level === 40)).toBe(true);
      const plan = planEviction(
        [{ lowerId: 'a', lowerVersion: '1.0.0', bytes: 10, lastUsedMs: undefined, committedMs: 0, pinned: false }],
        { maxSize: 0, evictTo: 0.9, unusedForMs: 1 },
        { now: 1_000_000, usageKnown: book.known },
      );
      expect(plan.remove).toEqual([]);
    }
  });

  it('pins are added and removed durably; a corrupt pins file is never overwritten', async () => {
    const blobs = await store();
    const log = createLogSink('warn');
    await updatePins(blobs, log.logger, ['a/1.0.0', 'b/2.0.0']);
    await updatePins(blobs, log.logger, [], ['a/1.0.0']);
    expect([...(await readPins(blobs, log.logger)).pins]).toEqual(['b/2.0.0']);
    await blobs.put('state/pins.json', Buffer.from('[1,2'));
    await expect(updatePins(blobs, log.logger, ['c/1.0.0'])).rejects.toThrow(/not valid/);
    expect((await blobs.read('state/pins.json'))?.toString()).toBe('[1,2');
  });
});
