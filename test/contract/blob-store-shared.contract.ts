// The blob store contract, part three: the SharedDownload built on a backend's writers (readers at any moment,
// the last byte held until the commit, failures reaching every reader).
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { SharedDownload } from '../../src/cache/shared-download.js';
import { NuproxyError } from '../../src/errors.js';
import { chunked, deferred, expectCode, parked, readAll, sha512b64, tick, TOTAL, until, watch, type BlobStoreFixture, type BlobStoreUnderTest, type ContractContext } from './blob-store.support.js';

/** SharedDownload on this backend. */
export function sharedDownloadContract(ctx: ContractContext): void {
  let fx: BlobStoreFixture;
  let store: BlobStoreUnderTest;
  beforeEach(() => {
    fx = ctx.fx();
    store = ctx.store();
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
}
