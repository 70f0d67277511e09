// The blob store contract, part one: keys and writers (commit, its checks, abort, sweeps, follow, races).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { beforeEach, describe, expect, it } from 'vitest';
import { NuproxyError } from '../../src/errors.js';
import { BAD_KEYS, expectCode, readAll, sha512b64, tick, until, watch, type BlobStoreFixture, type BlobStoreUnderTest, type ContractContext } from './blob-store.support.js';

/** Keys every method refuses, and the writer. */
export function writerContract(ctx: ContractContext): void {
  let fx: BlobStoreFixture;
  let store: BlobStoreUnderTest;
  beforeEach(() => {
    fx = ctx.fx();
    store = ctx.store();
  });

  describe('keys', () => {
    it.each(BAD_KEYS)('refuses a key with %s, touching nothing', async (_label, key) => {
      expect(() => store.createWriter(key)).toThrow(NuproxyError);
      await expectCode(() => store.createWriter(key), 'BAD_REQUEST');
      await expectCode(store.stat(key), 'BAD_REQUEST');
      // every other way in refuses it the same way, before the backend is touched
      await expectCode(() => store.open(key), 'BAD_REQUEST');
      await expectCode(() => store.open(key, { start: 0, endInclusive: 0 }), 'BAD_REQUEST');
      await expectCode(() => store.read(key), 'BAD_REQUEST');
      await expectCode(() => store.reader(key), 'BAD_REQUEST');
      await expectCode(() => store.put(key, Buffer.from('x')), 'BAD_REQUEST');
      await expectCode(() => store.import(key, (async function* () { yield Buffer.from('x'); })(), {}), 'BAD_REQUEST');
      await expectCode(() => store.delete(key), 'BAD_REQUEST');
      if (key !== '') await expectCode(() => store.list(key), 'BAD_REQUEST');
      expect(await fx.listAll()).toEqual([]);
      expect(store.takeReads()).toEqual([]);
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
      expect(await store.read(key)).toBeUndefined();
      expect(await store.list('bad/1.0.0')).toEqual([]);
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

    it('records who supplied a blob, and runs onVerified once, before the commit resolves', async () => {
      const bytes = randomBytes(3_000);
      const w = await store.createWriter('ov/x');
      w.write(bytes);
      const order: string[] = [];
      const info = await w.commit(sha512b64(bytes), { onVerified: () => order.push('verified'), upstream: 'up1' });
      order.push('committed');
      expect(order).toEqual(['verified', 'committed']);
      expect(info).toMatchObject({ size: bytes.length, sha512: sha512b64(bytes), upstream: 'up1' });
      expect(typeof info.mtimeMs).toBe('number');
      expect((await store.stat('ov/x'))?.upstream).toBe('up1');
      expect((await fx.reopen().stat('ov/x'))?.upstream).toBe('up1');
    });

    it('follow: a reader of the writer gets the bytes up to its limit as they are written, and through the commit', async () => {
      const data = randomBytes(200_000);
      const w = await store.createWriter('fw/1.0.0/fw.nupkg');
      const events = new EventEmitter();
      let limit = 0;
      let done = false;
      const r = watch(w.follow(0, { limit: () => limit, finished: () => done, events }));
      w.write(data.subarray(0, 50_000));
      limit = 50_000;
      events.emit('progress');
      await until(() => r.received() === 50_000);
      w.write(data.subarray(50_000));
      expect(w.written).toBe(data.length);
      await tick(20);
      expect(r.received()).toBe(50_000); // never past its limit
      const info = await w.commit(sha512b64(data));
      limit = info.size;
      done = true;
      events.emit('progress');
      const res = await r.result;
      expect(res.error).toBeUndefined();
      expect(res.bytes.equals(data)).toBe(true);
      // opened after the commit: reads the committed blob, from any start
      const after = await readAll(w.follow(100, { limit: () => info.size, finished: () => true, events }));
      expect(after.bytes.equals(data.subarray(100))).toBe(true);
    });

    it('follow: a reader errors with what failed() says, and an aborted writer refuses new readers', async () => {
      const w = await store.createWriter('fx/x');
      w.write(randomBytes(10_000));
      const events = new EventEmitter();
      let failure: Error | undefined;
      const r = watch(w.follow(0, { limit: () => 5_000, finished: () => false, failed: () => failure, events }));
      await until(() => r.received() === 5_000);
      failure = new Error('cut');
      events.emit('progress');
      expect((await r.result).error).toBe(failure);
      await w.abort();
      expect(() => w.follow(0, { limit: () => 1, finished: () => true, events })).toThrow();
      expect(await fx.listAll()).toEqual([]);
    });

    it('concurrent writers of one key: each commits whole, the key holds one of them entirely, nothing is left over', async () => {
      const key = 'race/1.0.0/race.nupkg';
      const a = randomBytes(150_000);
      const b = randomBytes(170_000);
      const [wa, wb] = await Promise.all([store.createWriter(key), store.createWriter(key)]);
      for (let off = 0; off < b.length; off += 10_000) {
        if (off < a.length) wa.write(a.subarray(off, off + 10_000));
        wb.write(b.subarray(off, off + 10_000));
      }
      const infos = await Promise.all([wa.commit(sha512b64(a)), wb.commit(sha512b64(b))]);
      expect(infos.map((i) => i.size)).toEqual([a.length, b.length]);
      const stored = await fx.readBlob(key);
      expect(stored?.equals(a) || stored?.equals(b)).toBe(true);
      const fresh = await fx.reopen().stat(key);
      expect(fresh?.sha512).toBe(sha512b64(stored!)); // its record belongs to the bytes that won
      expect(await fx.listAll()).toEqual(expect.not.arrayContaining([expect.stringMatching(/\.part$/)]));
      expect(await store.list('race/1.0.0')).toEqual(['race.nupkg']);
    });
  });
}
