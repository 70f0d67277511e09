// The local disk tier in front of the bucket (storage.localTier, src/cache/local-tier-blob-store.ts), against a
// real S3-compatible server (s3rver): a copy filled after the first read is served with the bucket stopped; the
// fetching instance keeps its spool; a copy with other bytes is never served; the folder stays within maxSize,
// least recently used first; a copy evicted during a send is still sent whole. Then the fault row of issue #13
// through nuproxy: the bucket stopped, a package in the tier is served, one that is not gets 502/504 naming the
// store, the process stays up, and once the bucket is back the other package is served too.
// (Over 300 lines: one file so that every part runs against the one s3rver it starts.)
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BlobInfo } from '../../src/cache/blob-store.js';
import { LocalTierBlobStore } from '../../src/cache/local-tier-blob-store.js';
import { createBlobStore } from '../../src/app.js';
import { validateConfig } from '../../src/config/load.js';
import { S3BlobStore } from '../../src/cache/s3-blob-store.js';
import { allStrings, get } from '../support/http.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const sha512 = (b: Uint8Array): string => createHash('sha512').update(b).digest('base64');
const MB = 1024 * 1024;

let s3: TestS3;
let base: string;
let n = 0;

beforeAll(async () => {
  s3 = await startS3('tier');
  base = await mkdtemp(join(tmpdir(), 'nuproxy-tier-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(base, { recursive: true, force: true });
});

async function until(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A sink that keeps copies of what it takes; while `hold` is set, it takes nothing more (a slow client). */
function sink(): { sink: Writable; bytes: () => Buffer; done: Promise<boolean>; taken: () => number; release: () => void } {
  const chunks: Buffer[] = [];
  let taken = 0;
  let held: (() => void) | undefined;
  let holding = true;
  const w = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk)); // a copy: the sender reuses its buffers
      taken += chunk.length;
      if (holding) held = cb;
      else cb();
    },
  });
  const done = new Promise<boolean>((resolve) => {
    w.on('finish', () => resolve(true));
    w.on('close', () => resolve(w.writableFinished));
  });
  return {
    sink: w,
    bytes: () => Buffer.concat(chunks),
    done,
    taken: () => taken,
    release: () => {
      holding = false;
      const cb = held;
      held = undefined;
      cb?.();
    },
  };
}

/** Sends the whole blob and collects it. */
async function sendAll(store: LocalTierBlobStore, key: string, info: BlobInfo): Promise<{ ok: boolean; bytes: Buffer }> {
  const s = sink();
  s.release();
  store.send(key, info, s.sink, 0, info.size - 1);
  return { ok: await s.done, bytes: s.bytes() };
}

describe('storage.localTier config', () => {
  const s3Section = { endpoint: 'http://127.0.0.1:9', bucket: 'nupkgs', forcePathStyle: true, accessKeyIdEnv: 'K', secretAccessKeyEnv: 'S' };
  const env = { K: 'key-id', S: 'secret-key' };
  const load = (storage: Record<string, unknown>) => validateConfig({ cache: { dir: join(base, 'cfg') }, storage, upstreams: [{ name: 'u', serviceIndex: 'https://api.nuget.org/v3/index.json' }] }, env, 'test');

  it('off by default; a size turns it on, wrapping the S3 store (kind stays s3, the location says both)', async () => {
    const off = load({ kind: 's3', s3: s3Section });
    expect(off.config.storage.localTier.maxSize).toBe(0);
    const plain = await createBlobStore(off);
    expect(plain).toBeInstanceOf(S3BlobStore);
    (plain as S3BlobStore).destroy();
    const on = load({ kind: 's3', s3: s3Section, localTier: { maxSize: '20GB' } });
    expect(on.config.storage.localTier.maxSize).toBe(20 * 1024 ** 3);
    const tier = await createBlobStore(on);
    expect(tier).toBeInstanceOf(LocalTierBlobStore);
    expect(tier.kind).toBe('s3');
    expect(tier.location).toBe(`s3://nupkgs/ at http://127.0.0.1:9 + local tier ${join(base, 'cfg', 's3-local')} (20 GB)`);
    expect(tier.location).not.toContain('secret-key');
    (tier as LocalTierBlobStore).destroy();
    expect(load({ kind: 's3', s3: s3Section, localTier: { maxSize: 0, dir: 'elsewhere' } }).config.storage.localTier).toEqual({ maxSize: 0, dir: 'elsewhere' });
  });

  it('refuses a bad size, an unknown key, and a tier without a bucket, naming the key', () => {
    expect(() => load({ kind: 's3', s3: s3Section, localTier: { maxSize: 'lots' } })).toThrow(/storage\.localTier\.maxSize/);
    expect(() => load({ kind: 's3', s3: s3Section, localTier: { maxSize: -1 } })).toThrow(/storage\.localTier\.maxSize/);
    expect(() => load({ kind: 's3', s3: s3Section, localTier: { size: '1GB' } })).toThrow(/storage\.localTier/);
    expect(() => load({ kind: 'fs', localTier: { maxSize: '1GB' } })).toThrow(/storage\.localTier.*storage\.kind s3/);
  });
});

describe('LocalTierBlobStore', () => {
  const open: { destroy(): void }[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) s.destroy();
    await s3.restart(); // a test that stopped it
  });

  /** A fresh prefix: the store behind a tier of `maxSize`, and a plain store on the same prefix (another instance). */
  async function stores(maxSize: number, prefix = `p${++n}/`, dir = join(base, `tier-${n}`)) {
    const opts = {
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      region: 'us-east-1',
      prefix,
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET },
      scratchDir: join(base, `scratch-${n}`),
      partSize: 5 * MB,
    };
    const tier = new LocalTierBlobStore(new S3BlobStore(opts), { dir, maxSize });
    const other = new S3BlobStore({ ...opts, scratchDir: join(base, `other-scratch-${n}`) });
    open.push(tier, other);
    await tier.init();
    await other.init();
    return { tier, other, dir, prefix, again: () => stores(maxSize, prefix, dir) };
  }

  it('fills a copy after the first read from the bucket; the next send comes from the disk (the bucket stopped)', async () => {
    const { tier, other, dir, again } = await stores(64 * MB);
    const key = 'packages/fill/1.0.0/fill.1.0.0.nupkg';
    const bytes = randomBytes(6 * MB + 3);
    await other.put(key, bytes); // stored by another instance: not in this one's tier
    const info = (await tier.stat(key))!;
    expect(tier.hasLocal(key)).toBe(false);
    const first = await sendAll(tier, key, info);
    expect(first.ok && first.bytes.equals(bytes)).toBe(true);
    await until(() => tier.hasLocal(key), 'the fill');
    expect((await readFile(join(dir, key))).equals(bytes)).toBe(true);
    await s3.stop();
    const second = await sendAll(tier, key, info);
    expect(second.ok).toBe(true);
    expect(second.bytes.equals(bytes)).toBe(true);
    // a range, a whole read and random access come from the copy too
    const part = (await tier.open(key, { start: 10, endInclusive: 1009 }))!;
    const got: Buffer[] = [];
    for await (const c of part) got.push(c as Buffer);
    expect(Buffer.concat(got).equals(bytes.subarray(10, 1010))).toBe(true);
    expect((await tier.read(key))?.equals(bytes)).toBe(true);
    const reader = (await tier.reader(key))!;
    expect((await reader.read(5 * MB, 100)).equals(bytes.subarray(5 * MB, 5 * MB + 100))).toBe(true);
    await reader.close();
    // a fresh instance (no stats cached, its copy not yet hashed) answers from its copy while the bucket is down
    await s3.restart();
    const { tier: fresh } = await again();
    await s3.stop();
    const fi = await fresh.stat(key);
    expect(fi).toMatchObject({ size: bytes.length, sha512: sha512(bytes) });
    const third = await sendAll(fresh, key, fi!);
    expect(third.ok && third.bytes.equals(bytes)).toBe(true);
  });

  it('the writer\'s spool is kept: the instance that stored a blob has it locally at once, without reading it back', async () => {
    const { tier, dir } = await stores(64 * MB);
    const key = 'packages/spool/1.0.0/spool.1.0.0.nupkg';
    const bytes = randomBytes(11 * MB + 1); // multipart
    const info = await tier.put(key, bytes, { upstream: 'up0' });
    expect(tier.hasLocal(key)).toBe(true);
    expect((await readFile(join(dir, key))).equals(bytes)).toBe(true);
    expect(JSON.parse(await readFile(join(dir, `${key}.meta`), 'utf8'))).toEqual({ sha512: sha512(bytes), upstream: 'up0' });
    expect(await readdir(join(base, `scratch-${n}`))).toEqual([]); // moved, not copied
    await s3.stop();
    const r = await sendAll(tier, key, info);
    expect(r.ok && r.bytes.equals(bytes)).toBe(true);
  });

  it('a copy with other bytes is never served: cut short (found on the descriptor) or changed in place (hashed at start-up)', async () => {
    const { tier, dir, again } = await stores(64 * MB);
    const cut = 'packages/cut/1.0.0/cut.1.0.0.nupkg';
    const flip = 'packages/flip/1.0.0/flip.1.0.0.nupkg';
    const cutBytes = randomBytes(3 * MB);
    const flipBytes = randomBytes(3 * MB);
    const cutInfo = await tier.put(cut, cutBytes);
    await tier.put(flip, flipBytes);
    // cut short behind the store's back: the send goes to the bucket and the copy is dropped
    await truncate(join(dir, cut), MB);
    const r1 = await sendAll(tier, cut, cutInfo);
    expect(r1.ok && r1.bytes.equals(cutBytes)).toBe(true);
    expect(tier.hasLocal(cut)).toBe(false);
    // the same size, other bytes: a restarted instance hashes the copy before it serves it
    const changed = Buffer.from(flipBytes);
    changed[1234] = changed[1234]! ^ 0xff;
    await writeFile(join(dir, flip), changed);
    const { tier: restarted } = await again();
    expect(restarted.hasLocal(flip)).toBe(true); // indexed, not yet trusted
    const info = (await restarted.stat(flip))!;
    const r2 = await sendAll(restarted, flip, info);
    expect(r2.ok && r2.bytes.equals(flipBytes)).toBe(true); // from the bucket
    await until(() => !restarted.hasLocal(flip), 'the bad copy dropped');
    // and with the bucket down it is not served either
    const { tier: third } = await again();
    await s3.stop();
    // the bad copy is gone from the disk (the check removed it), so the stat is the bucket's failure
    await expect(third.stat(flip)).rejects.toMatchObject({ code: expect.stringMatching(/^UPSTREAM_/) });
  });

  it('a copy whose record differs from the bucket\'s is dropped, not served', async () => {
    const { tier, other, dir } = await stores(64 * MB);
    const key = 'packages/rep/1.0.0/rep.1.0.0.nupkg';
    const old = randomBytes(3 * MB);
    await tier.put(key, old);
    expect(tier.hasLocal(key)).toBe(true);
    const now = randomBytes(3 * MB);
    await other.import(key, (async function* () { yield now; })(), { replace: true }); // another instance replaced it
    const fresh = { ...(await other.stat(key))! };
    const r = await sendAll(tier, key, fresh); // the caller stat'ed the bucket's new record
    expect(r.ok && r.bytes.equals(now)).toBe(true);
    await until(async () => tier.hasLocal(key) && (await readFile(join(dir, key)).catch(() => Buffer.alloc(0))).equals(now), 'the new copy');
  });

  it('stays within maxSize: least recently used copies go first, down to 90%', async () => {
    const max = 10 * MB;
    const { tier, dir } = await stores(max);
    const keys = Array.from({ length: 8 }, (_, i) => `packages/b${i}/1.0.0/b${i}.1.0.0.nupkg`);
    const blobs = keys.map(() => randomBytes(2 * MB));
    const infos: BlobInfo[] = [];
    for (let i = 0; i < 4; i++) {
      infos.push(await tier.put(keys[i]!, blobs[i]!));
      expect(tier.localBytes).toBeLessThanOrEqual(max);
    }
    expect(keys.slice(0, 4).every((k) => tier.hasLocal(k))).toBe(true);
    // b0 is used again: b1 is now the least recently used
    expect((await sendAll(tier, keys[0]!, infos[0]!)).bytes.equals(blobs[0]!)).toBe(true);
    for (let i = 4; i < 8; i++) {
      infos.push(await tier.put(keys[i]!, blobs[i]!));
      expect(tier.localBytes).toBeLessThanOrEqual(max);
    }
    const kept = keys.filter((k) => tier.hasLocal(k));
    expect(kept).toContain(keys[7]);
    expect(kept).not.toContain(keys[1]);
    const order = [1, 2, 3, 0, 4, 5, 6]; // least recently used first
    const firstKept = order.findIndex((i) => tier.hasLocal(keys[i]!));
    expect(order.slice(firstKept).every((i) => tier.hasLocal(keys[i]!))).toBe(true); // no hole: LRU order
    // the disk agrees once the removals have run
    const onDisk = async (): Promise<number> => {
      let total = 0;
      for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
        if (e.isFile() && !e.name.endsWith('.meta') && !e.parentPath.includes('.tmp')) total += (await stat(join(e.parentPath, e.name))).size;
      }
      return total;
    };
    await until(async () => (await onDisk()) === tier.localBytes, 'the disk to match the index');
    expect(await onDisk()).toBeLessThanOrEqual(max);
    // a blob larger than the tier is never kept
    const huge = 'packages/huge/1.0.0/huge.1.0.0.nupkg';
    await tier.put(huge, randomBytes(max + 1));
    expect(tier.hasLocal(huge)).toBe(false);
    expect(tier.localBytes).toBeLessThanOrEqual(max);
  });

  it('a copy evicted while it is being sent: the send completes with the right bytes', async () => {
    const max = 24 * MB;
    const { tier, dir } = await stores(max);
    const key = 'packages/ev/1.0.0/ev.1.0.0.nupkg';
    const bytes = randomBytes(20 * MB);
    const info = await tier.put(key, bytes);
    const s = sink(); // holds after its first chunk
    tier.send(key, info, s.sink, 0, bytes.length - 1);
    await until(() => s.taken() > 0, 'the send to start');
    await tier.put('packages/push/1.0.0/push.1.0.0.nupkg', randomBytes(10 * MB)); // passes maxSize: evicts the copy
    expect(tier.hasLocal(key)).toBe(false);
    await until(async () => !(await stat(join(dir, key)).then(() => true, () => false)), 'the file to be removed');
    s.release();
    expect(await s.done).toBe(true);
    expect(s.bytes().equals(bytes)).toBe(true);
  });
});

describe('nuproxy with storage.localTier: the bucket stopped (issue #13 fault row)', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const inTier = Buffer.from(makeNupkg({ id: 'Tier.Kept', version: '1.0.0', padBytes: 6 * MB }));
  const notInTier = Buffer.from(makeNupkg({ id: 'Tier.Other', version: '1.0.0', padBytes: 6 * MB }));
  const paths = { inTier: 'v3/flat/tier.kept/1.0.0/tier.kept.1.0.0.nupkg', notInTier: 'v3/flat/tier.other/1.0.0/tier.other.1.0.0.nupkg' };
  const PREFIX = 'fault-tier/';

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [inTier, notInTier] });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: {
        storage: {
          kind: 's3',
          s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: PREFIX, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' },
          localTier: { maxSize: '64MB' },
        },
      },
      env: { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET },
    });
  });
  afterAll(async () => {
    await proxy?.stop().catch(() => undefined);
    await upstream?.close().catch(() => undefined);
  });

  it('the fetching instance keeps its download; bucket down: that package is served, another gets 502/504 naming the store; back up: served', { timeout: 60_000 }, async () => {
    expect(proxy.blobs.kind).toBe('s3');
    expect(proxy.blobs.location).toContain('local tier');
    // a miss through nuproxy: stored in the bucket, the spool kept in the tier (under cache.dir/s3-local)
    const miss = await get(proxy.url + paths.inTier);
    expect(miss.status).toBe(200);
    expect(miss.body.equals(inTier)).toBe(true);
    const local = join(proxy.cacheDir, 's3-local', 'packages', 'tier.kept', '1.0.0', 'tier.kept.1.0.0.nupkg');
    // the client's last byte goes once the bytes are checked; the bucket's commit, then the move, follow
    await until(() => readFile(local).then((b) => b.equals(inTier), () => false), 'the spool kept in the tier');
    // the other package is in the bucket (another instance stored it), not in this instance's tier
    const other = new S3BlobStore({
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      region: 'us-east-1',
      prefix: PREFIX,
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET },
      scratchDir: join(base, 'fault-other'),
    });
    await other.init({ sweep: false });
    await other.put('packages/tier.other/1.0.0/tier.other.1.0.0.nupkg', notInTier);
    other.destroy();
    await upstream.close(); // nothing may come from the upstream from here on

    await s3.stop();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await get(proxy.url + paths.inTier);
        expect(r.status).toBe(200);
        expect(r.body.equals(inTier)).toBe(true);
      }
      const failed = await get(proxy.url + paths.notInTier);
      expect([502, 504]).toContain(failed.status);
      expect(String(failed.headers['content-type'])).toContain('json');
      const body = failed.json<Record<string, unknown>>();
      expect(JSON.stringify(body)).toContain(s3.bucket); // names the store
      for (const s of allStrings(body)) {
        expect(s).not.toContain(S3RVER_SECRET);
        expect(s).not.toContain('packages/tier.other/'); // no key
      }
      expect((await request(`${proxy.url}health/live`)).statusCode).toBe(200);
    } finally {
      await s3.restart();
    }
    const back = await get(proxy.url + paths.notInTier);
    expect(back.status).toBe(200);
    expect(back.body.equals(notInTier)).toBe(true);
    expect((await get(proxy.url + paths.inTier)).body.equals(inTier)).toBe(true);
  });
});
