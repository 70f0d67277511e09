// The blob store contract, part two: what is stored and read (stat, open, read, reader, send to a real socket
// and to a sink that goes away, list, put, import, delete, the "was read" signal, following another process).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobInfo } from '../../src/cache/blob-store.js';
import { expectCode, readAll, sha512b64, storeBytes, until, watch, type BlobStoreFixture, type BlobStoreUnderTest, type ContractContext } from './blob-store.support.js';

async function* pieces(bytes: Buffer, size = 7_000, failAt?: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += size) {
    if (failAt !== undefined && off >= failAt) throw new Error('source cut');
    yield bytes.subarray(off, off + size);
  }
}

/** A real TCP connection: the server's socket is the sink, the client collects what arrives until the end. */
async function socketPair(): Promise<{ sink: Socket; received: Promise<Buffer>; close: () => Promise<void> }> {
  let server!: Server;
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer((s) => resolve(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  const received = readAll(client).then((r) => r.bytes);
  const sink = await accepted;
  return { sink, received, close: () => new Promise<void>((resolve) => (client.destroy(), server.close(() => resolve()))) };
}

/** A sink that takes one chunk slowly, then goes away (a client hanging up mid-body). */
function leavingSink(): { sink: Writable; taken: () => number } {
  let taken = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      taken += chunk.length;
      setTimeout(() => {
        cb();
        sink.destroy();
      }, 10);
    },
  });
  return { sink, taken: () => taken };
}

/** Reads and stores on this backend. */
export function readsContract(ctx: ContractContext): void {
  let fx: BlobStoreFixture;
  let store: BlobStoreUnderTest;
  beforeEach(() => {
    fx = ctx.fx();
    store = ctx.store();
  });

  const key = 'packages/r/1.0.0/r.1.0.0.nupkg';
  const data = randomBytes(2_500_000); // more than two of a sender's chunks (a disk sender reads 1 MB at a time)

  describe('reading', () => {
    it('stat, open (whole and range), read: the stored bytes; absent keys are undefined, not errors', async () => {
      expect(await store.stat(key)).toBeUndefined();
      expect(await store.open(key)).toBeUndefined();
      expect(await store.read(key)).toBeUndefined();
      expect(await store.reader(key)).toBeUndefined();
      await storeBytes(store, key, data);
      expect(await store.stat(key)).toMatchObject({ size: data.length, sha512: sha512b64(data) });
      expect((await readAll((await store.open(key))!)).bytes.equals(data)).toBe(true);
      expect((await readAll((await store.open(key, { start: 1_000_000, endInclusive: 1_000_099 }))!)).bytes.equals(data.subarray(1_000_000, 1_000_100))).toBe(true);
      expect((await readAll((await store.open(key, { start: data.length - 1, endInclusive: data.length - 1 }))!)).bytes.equals(data.subarray(-1))).toBe(true);
      expect((await store.read(key))?.equals(data)).toBe(true);
      // a fresh instance (no in-process caches) reads the same
      expect((await fx.reopen().read(key))?.equals(data)).toBe(true);
    });

    it('reader: random access to a stored blob, fewer bytes only at its end', async () => {
      await storeBytes(store, key, data);
      const r = (await store.reader(key))!;
      try {
        expect(r.size).toBe(data.length);
        expect((await r.read(2_000_000, 4096)).equals(data.subarray(2_000_000, 2_004_096))).toBe(true);
        expect((await r.read(0, 10)).equals(data.subarray(0, 10))).toBe(true);
        expect((await r.read(data.length - 5, 100)).equals(data.subarray(-5))).toBe(true);
        expect((await r.read(data.length, 10)).length).toBe(0);
      } finally {
        await r.close();
      }
    });

    it('send: the whole blob and a range over a real socket, counting what the sink took', async () => {
      const info = await storeBytes(store, key, data);
      const whole = await socketPair();
      const progress = { bytesSent: 0 };
      store.send(key, info, whole.sink, 0, data.length - 1, progress);
      expect((await whole.received).equals(data)).toBe(true);
      expect(progress.bytesSent).toBe(data.length);
      await whole.close();

      const part = await socketPair();
      const stat = (await store.stat(key))!;
      store.send(key, stat, part.sink, 1_048_570, 2_100_000);
      expect((await part.received).equals(data.subarray(1_048_570, 2_100_001))).toBe(true);
      await part.close();
    });

    it('send: an empty range ends the sink at once; an empty blob sends nothing', async () => {
      const info = await storeBytes(store, 'e/x', Buffer.alloc(0));
      const pair = await socketPair();
      store.send('e/x', info, pair.sink, 0, -1);
      expect((await pair.received).length).toBe(0);
      await pair.close();
    });

    it('send: a sink that goes away midway stops the send (no error escapes), and later sends are whole', async () => {
      const info = await storeBytes(store, key, data);
      const gone = leavingSink();
      const progress = { bytesSent: 0 };
      store.send(key, info, gone.sink, 0, data.length - 1, progress);
      await until(() => gone.sink.destroyed);
      await new Promise((r) => setTimeout(r, 50));
      expect(gone.taken()).toBeLessThan(data.length);
      expect(progress.bytesSent).toBeLessThanOrEqual(gone.taken());
      const pair = await socketPair();
      store.send(key, info, pair.sink, 0, data.length - 1);
      expect((await pair.received).equals(data)).toBe(true);
      await pair.close();
    });
  });

  describe('storing', () => {
    it('list: names directly under a prefix, nested prefixes too; nothing for an unknown prefix', async () => {
      expect(await store.list('packages')).toEqual([]);
      await storeBytes(store, 'packages/a/1.0.0/a.1.0.0.nupkg', Buffer.from('a1'));
      await storeBytes(store, 'packages/a/2.0.0/a.2.0.0.nupkg', Buffer.from('a2'));
      await storeBytes(store, 'packages/a/2.0.0/a.nuspec', Buffer.from('<a/>'));
      await storeBytes(store, 'packages/b/1.0.0/b.1.0.0.nupkg', Buffer.from('b1'));
      expect((await store.list('packages')).sort()).toEqual(['a', 'b']);
      expect((await store.list('packages/a')).sort()).toEqual(['1.0.0', '2.0.0']);
      expect((await store.list('packages/a/2.0.0')).sort()).toEqual(['a.2.0.0.nupkg', 'a.nuspec']);
      expect(await store.list('packages/zzz')).toEqual([]);
      // a writer under way is not listed
      const w = await store.createWriter('packages/c/1.0.0/c.1.0.0.nupkg');
      w.write(Buffer.from('c'));
      expect((await store.list('packages')).sort()).toEqual(['a', 'b']);
      await w.abort();
    });

    it('put: stores whole with its hash and supplier; a put whose check fails leaves nothing', async () => {
      const bytes = Buffer.from('{"a":1}');
      const info = await store.put('vulnerabilities/index.json', bytes, { upstream: 'up' });
      expect(info).toMatchObject({ size: bytes.length, sha512: sha512b64(bytes), upstream: 'up' });
      expect((await store.read('vulnerabilities/index.json'))?.equals(bytes)).toBe(true);
      const other = Buffer.from('{"a":2}');
      await store.put('vulnerabilities/index.json', other); // replaces
      expect((await store.read('vulnerabilities/index.json'))?.equals(other)).toBe(true);
      await expectCode(store.put('v/bad.json', bytes, { check: { expectedSha512: sha512b64(other) } }), 'INTEGRITY');
      expect(await store.stat('v/bad.json')).toBeUndefined();
      expect(await store.list('v')).toEqual([]);
    });

    it('import: a new blob; the same bytes again change nothing; other bytes are a CONFLICT unless replace', async () => {
      const k = 'packages/i/1.0.0/i.1.0.0.nupkg';
      const first = await store.import(k, pieces(data), { expectedLength: data.length, expectedSha512: sha512b64(data), upstream: 'import' });
      expect(first).toMatchObject({ size: data.length, sha512: sha512b64(data), upstream: 'import' });
      expect((await fx.readBlob(k))?.equals(data)).toBe(true);
      const again = await store.import(k, pieces(data), { expectedSha512: sha512b64(data) });
      expect(again).toMatchObject({ size: data.length, sha512: sha512b64(data) });
      const other = randomBytes(10_000);
      await expectCode(store.import(k, pieces(other), {}), 'CONFLICT');
      expect((await fx.readBlob(k))?.equals(data)).toBe(true);
      const replaced = await store.import(k, pieces(other), { replace: true });
      expect(replaced.sha512).toBe(sha512b64(other));
      expect((await store.read(k))?.equals(other)).toBe(true);
      expect((await store.stat(k))?.sha512).toBe(sha512b64(other));
      expect(await fx.listAll()).toEqual(expect.not.arrayContaining([expect.stringMatching(/\.part$/)]));
    });

    it('import: failed checks and a source that fails midway leave nothing', async () => {
      const k = 'packages/j/1.0.0/j.1.0.0.nupkg';
      await expectCode(store.import(k, pieces(data), { expectedSha512: sha512b64(Buffer.from('x')) }), 'INTEGRITY');
      await expectCode(store.import(k, pieces(data), { expectedLength: data.length + 1 }), 'INTEGRITY');
      await expect(store.import(k, pieces(data, 7_000, 700_000), {})).rejects.toThrow('source cut');
      await expect(
        store.import(k, pieces(data), {
          verify: async () => {
            throw new Error('not a package');
          },
        }),
      ).rejects.toThrow('not a package');
      expect(await store.stat(k)).toBeUndefined();
      expect(await store.list('packages')).toEqual([]);
      expect(await fx.listAll()).toEqual([]);
    });

    it('delete: removes a blob and its record; false when there was none', async () => {
      await storeBytes(store, key, Buffer.from('bytes'));
      await store.stat(key); // a cached record must go too
      expect(await store.delete(key)).toBe(true);
      expect(await store.stat(key)).toBeUndefined();
      expect(await store.read(key)).toBeUndefined();
      expect(await store.list('packages/r/1.0.0')).toEqual([]);
      expect(await fx.reopen().stat(key)).toBeUndefined();
      expect(await store.delete(key)).toBe(false);
    });
  });

  describe('the "was read" signal', () => {
    it('takeReads: each key served by send, open or read, once, and the call clears them; stat alone is no read', async () => {
      const infos: Record<string, BlobInfo> = {};
      for (const k of ['t/a', 't/b', 't/c', 't/d']) infos[k] = await storeBytes(store, k, Buffer.from(k));
      store.takeReads(); // whatever storing counted
      await store.stat('t/d');
      expect(store.takeReads()).toEqual([]);
      await readAll((await store.open('t/a'))!);
      await readAll((await store.open('t/a', { start: 0, endInclusive: 0 }))!);
      await store.read('t/b');
      const pair = await socketPair();
      store.send('t/c', infos['t/c']!, pair.sink, 0, 2);
      await pair.received;
      await pair.close();
      expect(store.takeReads().sort()).toEqual(['t/a', 't/b', 't/c']);
      expect(store.takeReads()).toEqual([]);
      expect(await store.read('t/none')).toBeUndefined();
      expect(store.takeReads()).toEqual([]);
      // a read served from a copy outside the store (the package memory tier) is noted too
      store.noteRead('t/d');
      store.noteRead('t/d');
      expect(store.takeReads()).toEqual(['t/d']);
    });
  });

  describe('following another process', () => {
    let other: BlobStoreUnderTest;
    beforeEach(async () => {
      other = fx.reopen();
      await other.init({ sweep: false });
    });
    afterEach(() => undefined);

    it('followShared: another instance follows a writer by its share reference, up to the limit it is told', async () => {
      const w = await store.createWriter(key);
      if (w.shareRef === undefined || !other.followShared) {
        await w.abort();
        expect(other.followShared === undefined || w.shareRef === undefined).toBe(true); // a backend that cannot share says so
        return;
      }
      const events = new EventEmitter();
      let limit = 0;
      let done = false;
      w.write(data.subarray(0, 600_000));
      const r = watch(other.followShared(w.shareRef, 0, { limit: () => limit, finished: () => done, events }));
      limit = 400_000;
      events.emit('progress');
      await until(() => r.received() === 400_000);
      w.write(data.subarray(600_000));
      limit = data.length;
      done = true;
      events.emit('progress');
      const res = await r.result;
      expect(res.error).toBeUndefined();
      expect(res.bytes.equals(data)).toBe(true);
      const ref = w.shareRef;
      await w.commit(sha512b64(data));
      // committed: the reference no longer leads anywhere (the follower reads the store at the key instead)
      expect(() => other.followShared!(ref, 0, { limit: () => 1, finished: () => true, events })).toThrow();
      expect((await other.read(key))?.equals(data)).toBe(true);
    });
  });
}
