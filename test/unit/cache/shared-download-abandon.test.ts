// SharedDownload's budget for going on after its last reader left (abandonAfterMs): with a real FsBlobStore in a
// temp dir and a real stream as the source (the test decides when bytes arrive), a download nobody reads is
// cancelled (source destroyed, temp file removed, readers and callers get the reason), and a reader or a hold
// arriving within the budget keeps it alive.
import { PassThrough, type Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/cache/fs-blob-store.js';
import { SharedDownload } from '../../../src/cache/shared-download.js';

const BUDGET = 100;

let base: string;
let store: FsBlobStore;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'nuproxy-abandon-'));
  store = new FsBlobStore(join(base, 'store'));
  await store.init();
});
afterAll(() => rm(base, { recursive: true, force: true }));

const tmpFiles = (): Promise<string[]> => readdir(store.tmpDir);

async function until(probe: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function collect(stream: Readable): { bytes: () => number; result: Promise<{ data: Buffer; error?: Error }> } {
  const chunks: Buffer[] = [];
  let n = 0;
  const result = new Promise<{ data: Buffer; error?: Error }>((resolve) => {
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
    });
    stream.on('end', () => resolve({ data: Buffer.concat(chunks) }));
    stream.on('error', (error) => resolve({ data: Buffer.concat(chunks), error }));
  });
  return { bytes: () => n, result };
}

async function download(key: string): Promise<{ dl: SharedDownload; source: PassThrough; reason: Error }> {
  const source = new PassThrough();
  const reason = new Error('abandoned (test)');
  const dl = new SharedDownload(await store.createWriter(key), source, undefined, {}, { abandonAfterMs: BUDGET, abandonError: () => reason });
  return { dl, source, reason };
}

describe('SharedDownload abandonment', () => {
  it('cancels a download once its last reader has been gone for the budget: source destroyed, temp file removed', async () => {
    const { dl, source, reason } = await download('a/1.0.0/a.1.0.0.nupkg');
    source.write(Buffer.alloc(1000, 1));
    await dl.started;
    expect(await tmpFiles()).toHaveLength(1);
    const reader = dl.createReader();
    const r = collect(reader);
    await until(() => r.bytes() === 999, 'the reader to catch up (all but the held-back last byte)');
    reader.destroy(); // the client goes away
    const left = Date.now();
    await until(() => source.destroyed, 'the source to be destroyed');
    expect(Date.now() - left).toBeGreaterThanOrEqual(BUDGET - 5);
    await expect(dl.done).rejects.toBe(reason);
    expect(dl.abandoned).toBe(true);
    expect(await tmpFiles()).toEqual([]);
    expect(await store.stat('a/1.0.0/a.1.0.0.nupkg')).toBeUndefined();
    // a reader asking now gets the failure, never bytes
    const after = await collect(dl.createReader()).result;
    expect(after.error).toBe(reason);
    expect(after.data.length).toBe(0);
  });

  it('a reader arriving within the budget keeps it alive past the budget, and it completes', async () => {
    const { dl, source } = await download('b/1.0.0/b.1.0.0.nupkg');
    const part = Buffer.alloc(4096, 2);
    source.write(part);
    await dl.started;
    const early = dl.createReader();
    early.resume();
    early.destroy(); // the first client leaves...
    const late = collect(dl.createReader()); // ...and the next one comes at once
    late.result.then(() => undefined, () => undefined);
    // past three budgets with bytes still arriving: nothing is cancelled
    const until3 = Date.now() + 3 * BUDGET;
    while (Date.now() < until3) {
      source.write(part);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(source.destroyed).toBe(false);
    source.end(part);
    const info = await dl.done;
    const got = await late.result;
    expect(got.error).toBeUndefined();
    expect(got.data.length).toBe(info.size);
    expect(createHash('sha512').update(got.data).digest('base64')).toBe(info.sha512);
  });

  it('a hold alone keeps it alive; released, the budget starts', async () => {
    const { dl, source, reason } = await download('c/1.0.0/c.1.0.0.nupkg');
    const release = dl.hold();
    source.write(Buffer.alloc(100, 3));
    await dl.started;
    const past = Date.now() + 3 * BUDGET;
    await until(() => Date.now() > past, 'three budgets to pass');
    expect(source.destroyed).toBe(false);
    release();
    await expect(dl.done).rejects.toBe(reason);
    expect(source.destroyed).toBe(true);
  });

  it('is not cancelled once every byte has arrived (only the commit is left)', async () => {
    const source = new PassThrough();
    let release!: () => void;
    const verifying = new Promise<void>((r) => (release = r));
    let entered = false;
    const dl = new SharedDownload(await store.createWriter('d/1.0.0/d.1.0.0.nupkg'), source, undefined, {
      verify: async () => {
        entered = true;
        await verifying;
      },
    }, { abandonAfterMs: BUDGET });
    source.end(Buffer.alloc(100, 4));
    await until(() => entered, 'verification to start');
    const past = Date.now() + 3 * BUDGET;
    await until(() => Date.now() > past, 'three budgets to pass');
    release();
    expect((await dl.done).size).toBe(100);
  });
});
