// Conformance suite for the blob store (and the SharedDownload built on its writers). FsBlobStore is the only
// backend today; another backend joins by providing a BlobStoreFixture and calling blobStoreContract.
import { createHash, randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { SharedDownload } from '../../src/cache/shared-download.js';
import { NuproxyError } from '../../src/errors.js';

export type BlobStoreUnderTest = Pick<FsBlobStore, 'init' | 'stat' | 'createWriter'>;

export interface BlobStoreFixture {
  /** An initialised, empty store. */
  store: BlobStoreUnderTest;
  /** Every item the backend holds, temp area included (sorted names): proves refused or failed writes left nothing. */
  listAll(): Promise<string[]>;
  /** The committed bytes at `key`, read straight from the backend (undefined when absent). */
  readBlob(key: string): Promise<Buffer | undefined>;
  /** Leaves `n` items in the temp area the way a crash would. */
  plantLeftovers(n: number): Promise<void>;
  /** A fresh store instance over the same data (no in-process caches); not initialised. */
  reopen(): BlobStoreUnderTest;
  cleanup(): Promise<void>;
}

export const BAD_KEYS: readonly [string, string][] = [
  ['parent', '../x'],
  ['parent after a segment', 'a/../../x'],
  ['dot segment', 'a/./b'],
  ['absolute', '/abs'],
  ['empty segment', 'a//b'],
  ['trailing slash', 'a/b/'],
  ['empty', ''],
  ['backslash', 'a\\b'],
  ['backslash parent', '..\\x'],
  ['temp area', '.tmp/x'],
  ['hidden segment', 'a/.hidden'],
  ['NUL', 'a\0b'],
  ['newline', 'a\nb'],
  ['600-char segment', 'a'.repeat(600)],
  ['600-char path of valid segments', Array.from({ length: 6 }, () => 'b'.repeat(99)).join('/')],
];

export const sha512b64 = (bytes: Uint8Array): string => createHash('sha512').update(bytes).digest('base64');

const TOTAL = 1024 * 1024;
const CHUNK = 16 * 1024;

/** Collects a stream; never rejects: an error is returned with the bytes received before it. */
export function readAll(stream: Readable): Promise<{ bytes: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ bytes: Buffer.concat(chunks) }));
    stream.on('error', (error) => resolve({ bytes: Buffer.concat(chunks), error }));
  });
}

/** Counts bytes as they arrive, for watching a reader mid-download. */
function watch(stream: Readable): { received: () => number; result: Promise<{ bytes: Buffer; error?: Error }> } {
  let n = 0;
  stream.on('data', (c: Buffer) => (n += c.length));
  return { received: () => n, result: readAll(stream) };
}

const tick = (ms = 1): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await tick(5);
  }
}

/** Readers of `dl` that have caught up and wait for its next progress event (the download's own emitter). */
function parked(dl: SharedDownload): number {
  return (dl as unknown as { events: EventEmitter }).events.listenerCount('progress');
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** An async source of `data` in CHUNK pieces with a real await between them; optional hooks per chunk index. */
async function* chunked(data: Buffer, hooks: { before?: (i: number, last: boolean) => Promise<void> } = {}): AsyncGenerator<Uint8Array> {
  const count = Math.ceil(data.length / CHUNK);
  for (let i = 0; i < count; i++) {
    await tick(0);
    await hooks.before?.(i, i === count - 1);
    // a copy, so nothing downstream can alias the test's buffer
    yield Uint8Array.prototype.slice.call(data.subarray(i * CHUNK, (i + 1) * CHUNK));
  }
}

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a NuproxyError ${code}`).toBeInstanceOf(NuproxyError);
  expect((caught as NuproxyError).code).toBe(code);
}

export function blobStoreContract(name: string, make: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fx: BlobStoreFixture;
    let store: BlobStoreUnderTest;
    beforeEach(async () => {
      fx = await make();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    describe('keys', () => {
      it.each(BAD_KEYS)('refuses a key with %s, touching nothing', async (_label, key) => {
        expect(() => store.createWriter(key)).toThrow(NuproxyError);
        await expectCode(() => store.createWriter(key), 'BAD_REQUEST');
        await expectCode(store.stat(key), 'BAD_REQUEST');
        expect(await fx.listAll()).toEqual([]);
      });

      it('accepts ordinary package keys', async () => {
        for (const key of ['newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg', 'a', 'A_b+c-1.0.0-beta.1/x.nuspec']) {
          const w = (await store.createWriter(key));
          w.write(Buffer.from(key));
          await w.commit(sha512b64(Buffer.from(key)));
          expect((await store.stat(key))?.size).toBe(Buffer.byteLength(key));
        }
      });
    });

    describe('writer', () => {
      it('commits: stat gives size and SHA-512, the bytes are stored, a fresh instance sees the same', async () => {
        const key = 'pkg/1.0.0/pkg.1.0.0.nupkg';
        const bytes = randomBytes(300_001);
        expect(await store.stat(key)).toBeUndefined();
        const w = (await store.createWriter(key));
        for (let off = 0; off < bytes.length; off += 70_000) w.write(bytes.subarray(off, off + 70_000));
        expect(w.written).toBe(bytes.length);
        const info = await w.commit(sha512b64(bytes), { expectedLength: bytes.length, expectedSha512: sha512b64(bytes) });
        expect(info.size).toBe(bytes.length);
        expect(info.sha512).toBe(sha512b64(bytes));
        const st = await store.stat(key);
        expect(st).toMatchObject({ size: bytes.length, sha512: sha512b64(bytes), mtimeMs: info.mtimeMs });
        expect((await fx.readBlob(key))?.equals(bytes)).toBe(true);
        const again = await fx.reopen().stat(key);
        expect(again).toMatchObject({ size: bytes.length, sha512: sha512b64(bytes) });
      });

      it('commits an empty blob', async () => {
        const w = (await store.createWriter('empty/x'));
        const info = await w.commit(sha512b64(Buffer.alloc(0)), { expectedLength: 0 });
        expect(info.size).toBe(0);
        expect((await fx.readBlob('empty/x'))?.length).toBe(0);
      });

      const failing: [string, (bytes: Buffer) => Parameters<Awaited<ReturnType<BlobStoreUnderTest['createWriter']>>['commit']>[1]][] = [
        ['wrong expectedLength', (b) => ({ expectedLength: b.length + 1 })],
        ['short expectedLength', (b) => ({ expectedLength: b.length - 1 })],
        ['wrong expectedSha512', () => ({ expectedSha512: sha512b64(Buffer.from('something else')) })],
        [
          'failing verify',
          () => ({
            verify: async () => {
              throw new NuproxyError('INTEGRITY', 'not a zip');
            },
          }),
        ],
      ];
      it.each(failing)('refuses a commit with %s: INTEGRITY, and neither final nor temp file remains', async (_label, check) => {
        const key = 'bad/1.0.0/bad.nupkg';
        const bytes = randomBytes(10_000);
        const w = (await store.createWriter(key));
        w.write(bytes);
        expect(await fx.listAll()).not.toEqual([]); // the temp file is there while writing
        await expectCode(w.commit(sha512b64(bytes), check(bytes)), 'INTEGRITY');
        expect(await fx.listAll()).toEqual([]);
        expect(await store.stat(key)).toBeUndefined();
        expect(await fx.readBlob(key)).toBeUndefined();
      });

      it('passes the complete body to verify (random access, with its tail), and a verify error reaches the caller unchanged', async () => {
        const bytes = randomBytes(5_000);
        const w = (await store.createWriter('v/x'));
        w.write(bytes);
        const boom = new Error('verify exploded');
        let seen: { size: number; sameBytes: boolean; middle: boolean; tail: boolean } | undefined;
        const p = w.commit(sha512b64(bytes), {
          verify: async (content, tail) => {
            seen = {
              size: content.size,
              sameBytes: (await content.read(0, content.size)).equals(bytes),
              middle: (await content.read(1234, 100)).equals(bytes.subarray(1234, 1334)),
              tail: tail.equals(bytes),
            };
            throw boom;
          },
        });
        await expect(p).rejects.toBe(boom);
        expect(seen).toEqual({ size: bytes.length, sameBytes: true, middle: true, tail: true });
        expect(await fx.listAll()).toEqual([]);
      });

      it('abort removes the temp file and stores nothing', async () => {
        const w = (await store.createWriter('ab/x'));
        w.write(randomBytes(1000));
        expect(await fx.listAll()).not.toEqual([]);
        await w.abort();
        await w.abort(); // idempotent
        expect(await fx.listAll()).toEqual([]);
        expect(await store.stat('ab/x')).toBeUndefined();
      });

      it('init sweeps leftovers from the temp area and reports the count', async () => {
        await fx.plantLeftovers(3);
        expect((await fx.listAll()).length).toBeGreaterThanOrEqual(3);
        expect(await fx.reopen().init()).toEqual({ swept: 3 });
        expect(await fx.listAll()).toEqual([]);
        expect(await store.init()).toEqual({ swept: 0 });
      });

      it('init keeps committed blobs', async () => {
        const w = (await store.createWriter('keep/x'));
        w.write(Buffer.from('kept'));
        await w.commit(sha512b64(Buffer.from('kept')));
        await fx.plantLeftovers(1);
        expect(await fx.reopen().init()).toEqual({ swept: 1 });
        expect((await fx.readBlob('keep/x'))?.toString()).toBe('kept');
      });
    });

    describe('SharedDownload', () => {
      const key = 'shared/1.0.0/shared.1.0.0.nupkg';

      it('readers attached before, during and after the download all read the full identical bytes', async () => {
        const data = randomBytes(TOTAL);
        const dl = new SharedDownload((await store.createWriter(key)), chunked(data), TOTAL, { expectedLength: TOTAL, expectedSha512: sha512b64(data) });
        const before = [readAll(dl.createReader()), readAll(dl.createReader())];
        await until(() => dl.bytesWritten >= TOTAL / 2);
        expect(dl.bytesWritten).toBeLessThan(TOTAL);
        const during = [readAll(dl.createReader())];
        const info = await dl.done;
        const after = [readAll(dl.createReader())];
        expect(info).toMatchObject({ size: TOTAL, sha512: sha512b64(data) });
        for (const r of await Promise.all([...before, ...during, ...after])) {
          expect(r.error).toBeUndefined();
          expect(r.bytes.length).toBe(TOTAL);
          expect(r.bytes.equals(data)).toBe(true);
        }
        expect((await fx.readBlob(key))?.equals(data)).toBe(true);
      });

      it('a reader can be attached at any moment, commit included', async () => {
        const data = randomBytes(256 * 1024);
        const dl = new SharedDownload((await store.createWriter(key)), chunked(data), data.length, {
          verify: async () => {
            await tick(20);
          },
        });
        const results: Promise<{ bytes: Buffer; error?: Error }>[] = [];
        let settled = false;
        void dl.done.finally(() => (settled = true));
        // attach on every macrotask turn until the download settles, then a few more
        for (let extra = 0; extra < 5; ) {
          results.push(
            (async () => {
              try {
                return await readAll(dl.createReader());
              } catch (err) {
                return { bytes: Buffer.alloc(0), error: err as Error };
              }
            })(),
          );
          await new Promise((r) => setImmediate(r));
          if (settled) extra++;
        }
        await dl.done;
        const all = await Promise.all(results);
        expect(all.length).toBeGreaterThan(5);
        for (const r of all) {
          expect(r.error?.message).toBeUndefined();
          expect(r.bytes.equals(data)).toBe(true);
        }
      });

      it('a source failing midway errors every reader, stores nothing, and no reader gets the full length', async () => {
        const data = randomBytes(TOTAL);
        const boom = new Error('upstream connection reset');
        const half = deferred();
        const source = chunked(data, {
          before: async (i) => {
            if (i === 32) half.resolve();
            if (i === 40) throw boom;
          },
        });
        const dl = new SharedDownload((await store.createWriter(key)), source, TOTAL, { expectedLength: TOTAL });
        const early = watch(dl.createReader());
        await half.promise;
        const mid = watch(dl.createReader());
        await expect(dl.done).rejects.toBe(boom);
        const results = await Promise.all([early.result, mid.result]);
        for (const r of results) {
          expect(r.error).toBeDefined();
          expect(r.bytes.length).toBeLessThan(TOTAL);
          expect(r.bytes.equals(data.subarray(0, r.bytes.length))).toBe(true); // what did arrive was right
        }
        // a reader asked for after the failure fails too (throwing or erroring), never with bytes
        let late: { bytes: Buffer; error?: unknown };
        try {
          late = await readAll(dl.createReader());
        } catch (error) {
          late = { bytes: Buffer.alloc(0), error };
        }
        expect(late.error).toBeDefined();
        expect(late.bytes.length).toBe(0);
        expect(await store.stat(key)).toBeUndefined();
        expect(await fx.listAll()).toEqual([]);
      });

      it('withholds the last byte until the blob is committed', async () => {
        const data = randomBytes(TOTAL);
        const beforeLast = deferred();
        const releaseLast = deferred();
        const verifying = deferred();
        const releaseVerify = deferred();
        const source = chunked(data, {
          before: async (_i, last) => {
            if (!last) return;
            beforeLast.resolve();
            await releaseLast.promise;
          },
        });
        const dl = new SharedDownload((await store.createWriter(key)), source, TOTAL, {
          expectedLength: TOTAL,
          verify: async () => {
            verifying.resolve();
            await releaseVerify.promise;
          },
        });
        const early = watch(dl.createReader());
        await beforeLast.promise;
        // paused before its last chunk: a reader attached now catches up, but never past total-1
        const paused = watch(dl.createReader());
        await until(() => paused.received() === dl.bytesWritten - 1);
        await until(() => parked(dl) === 2); // both readers caught up: a byte too many would have been given by now
        expect(paused.received()).toBeLessThanOrEqual(TOTAL - 1);
        expect(paused.received()).toBe(dl.bytesWritten - 1);
        expect(early.received()).toBeLessThanOrEqual(TOTAL - 1);

        // every byte written, commit held in verify: still one byte short
        releaseLast.resolve();
        await verifying.promise;
        expect(dl.bytesWritten).toBe(TOTAL);
        await until(() => early.received() === TOTAL - 1 && paused.received() === TOTAL - 1);
        await until(() => parked(dl) === 2);
        expect(early.received()).toBe(TOTAL - 1);
        expect(paused.received()).toBe(TOTAL - 1);

        releaseVerify.resolve();
        await dl.done;
        for (const r of await Promise.all([early.result, paused.result])) {
          expect(r.error).toBeUndefined();
          expect(r.bytes.equals(data)).toBe(true);
        }
      });

      it('a failed commit errors readers that were one byte short', async () => {
        const data = randomBytes(200_000);
        const verifying = deferred();
        const dl = new SharedDownload((await store.createWriter(key)), chunked(data), data.length, {
          verify: async () => {
            verifying.resolve();
            await tick(30);
            throw new NuproxyError('INTEGRITY', 'not a zip');
          },
        });
        const r = watch(dl.createReader());
        await verifying.promise;
        await expectCode(dl.done, 'INTEGRITY');
        const res = await r.result;
        expect(res.error).toBeDefined();
        expect(res.bytes.length).toBeLessThan(data.length);
        expect(await fx.listAll()).toEqual([]);
      });
    });
  });
}
