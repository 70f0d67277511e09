// The blob-store contract on the S3 backend, against a real S3-compatible server (s3rver, test/support/s3.ts).
// Two rows: blobs below one part (one PutObject after the checks) and 64 KB parts, so every contract test also
// goes through the multipart upload, its completion after the checks and the copy to the key. A third row runs
// it on the S3 store behind its local disk tier (LocalTierBlobStore, storage.localTier).
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/cache/s3-blob-store.js';
import { LocalTierBlobStore } from '../../src/cache/local-tier-blob-store.js';
import { NuproxyError } from '../../src/errors.js';
import { blobStoreContract, sha512b64, type BlobStoreFixture } from './blob-store.contract.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';

let s3: TestS3;
let base: string;
let n = 0;
const HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';

beforeAll(async () => {
  s3 = await startS3('nupkgs');
  base = await mkdtemp(join(tmpdir(), 'nuproxy-blob-s3-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(base, { recursive: true, force: true });
});

function options(prefix: string, scratchDir: string, partSize?: number): S3BlobStoreOptions {
  return {
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: 'us-east-1',
    prefix,
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET },
    scratchDir,
    ...(partSize ? { partSize } : {}),
  };
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken }));
    for (const o of page.Contents ?? []) out.push(o.Key!.slice(prefix.length));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return out;
}

/** Every file under `dir` (relative, "/"-separated), or [] when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1).split('\\').join('/'));
}

/** `tier`: the local tier's maxSize (the store is then the S3 store behind it). */
function makeS3Fixture(partSize?: number, tier?: number): () => Promise<BlobStoreFixture> {
  return async () => {
    const prefix = `t${++n}/`;
    const scratch = join(base, `scratch-${n}`);
    const tierDir = join(base, `tier-${n}`);
    const buckets: S3BlobStore[] = [];
    const make = (): S3BlobStore | LocalTierBlobStore => {
      const s = new S3BlobStore(options(prefix, scratch, partSize));
      buckets.push(s);
      return tier ? new LocalTierBlobStore(s, { dir: tierDir, maxSize: tier }) : s;
    };
    const store = make();
    await store.init();
    return {
      store,
      // every object under the prefix (staging area included), every spool file, and the tier's files
      listAll: async () =>
        [...(await objectsUnder(prefix)), ...(await readdir(scratch)).map((f) => `.spool/${f}`), ...(await filesUnder(tierDir)).map((f) => `.tier/${f}`)].sort(),
      readBlob: async (key) => {
        try {
          const r = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: prefix + key }));
          return Buffer.from(await r.Body!.transformToByteArray());
        } catch (err) {
          if ((err as Error).name === 'NoSuchKey') return undefined;
          throw err;
        }
      },
      // a crash leaves staging objects (completed, not yet copied) and spool files of this host (and temp files
      // of the tier)
      plantLeftovers: async (count) => {
        for (let i = 0; i < count; i++) {
          const id = `${HOST}-${randomBytes(8).toString('hex')}.part`;
          if (tier && i === 2) await writeFile(join(tierDir, '.tmp', id), 'partial');
          else if (i % 2 === 0) await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}.uploads/${id}`, Body: 'partial' }));
          else await writeFile(join(scratch, id), 'partial');
        }
      },
      reopen: make,
      cleanup: async () => {
        for (const s of buckets) s.destroy();
        await rm(scratch, { recursive: true, force: true });
        await rm(tierDir, { recursive: true, force: true });
      },
    };
  };
}

blobStoreContract('s3 (one PutObject)', makeS3Fixture());
blobStoreContract('s3 (multipart, 64 KB parts)', makeS3Fixture(64 * 1024));
blobStoreContract('s3 behind the local tier (64 KB parts)', makeS3Fixture(64 * 1024, 64 * 1024 * 1024));

describe('S3BlobStore specifics', () => {
  it('keeps the record as object metadata: size, SHA-512, supplier; a large blob arrives whole via multipart', async () => {
    const prefix = `spec${++n}/`;
    const store = new S3BlobStore(options(prefix, join(base, `spec-${n}`), 5 * 1024 * 1024));
    await store.init();
    const bytes = randomBytes(12 * 1024 * 1024 + 17);
    const info = await store.put('packages/big/1.0.0/big.1.0.0.nupkg', bytes, { upstream: 'up1' });
    expect(info).toMatchObject({ size: bytes.length, sha512: sha512b64(bytes), upstream: 'up1' });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${prefix}packages/big/1.0.0/big.1.0.0.nupkg` }));
    expect(head.ContentLength).toBe(bytes.length);
    expect(head.Metadata).toMatchObject({ size: String(bytes.length), sha512: sha512b64(bytes), upstream: 'up1' });
    expect(await objectsUnder(prefix)).toEqual(['packages/big/1.0.0/big.1.0.0.nupkg']); // the staging object is gone
    const r = await store.read('packages/big/1.0.0/big.1.0.0.nupkg');
    expect(r?.equals(bytes)).toBe(true);
    store.destroy();
  });

  it('distrusts the bucket: an object whose recorded size differs from its length is no blob; a bad hash is dropped', async () => {
    const prefix = `spec${++n}/`;
    const store = new S3BlobStore(options(prefix, join(base, `spec-${n}`)));
    await store.init();
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}a/lie.bin`, Body: 'abc', Metadata: { size: '4' } }));
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}a/odd.bin`, Body: 'abc', Metadata: { size: '3', sha512: 'not-a-hash', upstream: 'bad name!' } }));
    expect(await store.stat('a/lie.bin')).toBeUndefined();
    const odd = await store.stat('a/odd.bin');
    expect(odd).toMatchObject({ size: 3 });
    expect(odd?.sha512).toBeUndefined();
    expect(odd?.upstream).toBeUndefined();
    store.destroy();
  });

  it('init fails with a CONFIG error naming the bucket and endpoint, never the keys, when the bucket is missing', async () => {
    const store = new S3BlobStore({ ...options('', join(base, `spec-${++n}`)), bucket: 'no-such-bucket', credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: 'S3RVER' } });
    const err = (await store.init().catch((e: unknown) => e)) as NuproxyError;
    expect(err).toBeInstanceOf(NuproxyError);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('no-such-bucket');
    expect(err.message).toContain(s3.endpoint);
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('S3RVER');
    store.destroy();
  });

  it('the server stopped mid-upload: the commit fails as the store\'s fault, nothing is at the key, the spool is gone', async () => {
    const prefix = `spec${++n}/`;
    const scratch = join(base, `spec-${n}`);
    const store = new S3BlobStore(options(prefix, scratch, 64 * 1024));
    await store.init();
    const key = 'packages/cut/1.0.0/cut.1.0.0.nupkg';
    const bytes = randomBytes(1024 * 1024);
    const w = await store.createWriter(key);
    w.write(bytes.subarray(0, 512 * 1024)); // parts go up while bytes arrive
    await s3.stop();
    let err: unknown;
    try {
      w.write(bytes.subarray(512 * 1024));
      err = await w.commit(sha512b64(bytes)).catch((e: unknown) => e);
    } finally {
      await s3.restart();
    }
    expect(err).toBeInstanceOf(NuproxyError);
    expect((err as NuproxyError).code).toMatch(/^UPSTREAM_/);
    expect(await readdir(scratch)).toEqual([]);
    const fresh = new S3BlobStore(options(prefix, scratch, 64 * 1024));
    expect(await fresh.stat(key)).toBeUndefined();
    expect(await objectsUnder(prefix)).toEqual([]);
    // and the same key commits whole once the server is back
    const again = await store.put(key, bytes);
    expect(again.sha512).toBe(sha512b64(bytes));
    expect((await fresh.read(key))?.equals(bytes)).toBe(true);
    store.destroy();
    fresh.destroy();
  });

  it('a store that went down: reads fail as the store\'s fault (naming it), and work again once it is back', async () => {
    const prefix = `spec${++n}/`;
    const store = new S3BlobStore(options(prefix, join(base, `spec-${n}`)));
    await store.init();
    await store.put('x/y.bin', Buffer.from('hello'));
    const fresh = new S3BlobStore(options(prefix, join(base, `spec-${n}`)));
    await s3.stop();
    try {
      const err = (await fresh.stat('x/y.bin').catch((e: unknown) => e)) as NuproxyError;
      expect(err).toBeInstanceOf(NuproxyError);
      expect(err.code).toMatch(/^UPSTREAM_/);
      expect(err.message).toContain(s3.bucket);
    } finally {
      await s3.restart();
    }
    expect((await fresh.read('x/y.bin'))?.toString()).toBe('hello');
    store.destroy();
    fresh.destroy();
  });
});
