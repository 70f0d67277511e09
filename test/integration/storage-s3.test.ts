// nuproxy with storage.kind s3 against a real S3-compatible server (s3rver) and the test upstream: a package miss
// lands in the bucket with its record as metadata, and a second instance on the same bucket (its own empty
// cache.dir, the upstream stopped) serves it with zero upstream requests. Start-up with an unreachable bucket
// fails clearly, naming it, never the keys.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NuproxyError } from '../../src/errors.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const sha512 = (b: Uint8Array): string => createHash('sha512').update(b).digest('base64');
const env = { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET };

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(url);
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}


async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
}

describe('storage.kind s3: packages in a shared bucket', () => {
  let s3: TestS3;
  let upstream: TestUpstream;
  const proxies: TestProxy[] = [];
  const pkgs = {
    small: Buffer.from(makeNupkg({ id: 'S3.Small', version: '1.0.0' })),
    // over one 8 MB part: goes up as a multipart upload, completed after the checks
    large: Buffer.from(makeNupkg({ id: 'S3.Large', version: '2.0.0', padBytes: 12 * 1024 * 1024 + 5 })),
  };
  const paths = { small: 'v3/flat/s3.small/1.0.0/s3.small.1.0.0.nupkg', large: 'v3/flat/s3.large/2.0.0/s3.large.2.0.0.nupkg' };
  const keys = { small: 'nuproxy/packages/s3.small/1.0.0/s3.small.1.0.0.nupkg', large: 'nuproxy/packages/s3.large/2.0.0/s3.large.2.0.0.nupkg' };

  const storage = (bucket: string, endpoint: string) => ({
    storage: { kind: 's3', s3: { endpoint, bucket, prefix: 'nuproxy/', forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } },
  });
  const start = async (serviceIndex: string): Promise<TestProxy> => {
    const p = await startTestProxy({ upstreams: [serviceIndex], config: storage(s3.bucket, s3.endpoint), env });
    proxies.push(p);
    return p;
  };

  beforeAll(async () => {
    s3 = await startS3('nupkgs');
    upstream = await startTestUpstream({ packages: Object.values(pkgs) });
  });
  afterAll(async () => {
    for (const p of proxies) await p.stop().catch(() => undefined);
    await upstream?.close();
    await s3?.close();
  });

  it('a miss lands in the bucket (bytes and record), nothing under cache.dir but the empty spool', async () => {
    const a = await start(upstream.serviceIndexUrl);
    expect(a.blobs.kind).toBe('s3');
    for (const which of ['small', 'large'] as const) {
      const r = await get(a.url + paths[which]);
      expect(r.status, which).toBe(200);
      expect(r.body.equals(pkgs[which]), which).toBe(true);
    }
    for (const which of ['small', 'large'] as const) {
      // the client's last byte waits for the checks; the object is created right after them
      const head = await eventually(() => s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: keys[which] })));
      expect(head.ContentLength).toBe(pkgs[which].length);
      expect(head.Metadata).toMatchObject({ size: String(pkgs[which].length), sha512: sha512(pkgs[which]), upstream: 'up0' });
      const obj = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: keys[which] }));
      expect(Buffer.from(await obj.Body!.transformToByteArray()).equals(pkgs[which])).toBe(true);
    }
    expect((await filesUnder(a.cacheDir)).filter((f) => f.endsWith('.nupkg') || f.endsWith('.part'))).toEqual([]);
    expect(a.logs.raw()).not.toContain(S3RVER_SECRET);
    await a.stop();
  });

  it('a second instance on the same bucket, with the upstream stopped, serves them with zero upstream requests', async () => {
    const url = upstream.serviceIndexUrl;
    upstream.requests.length = 0;
    await upstream.close();
    const b = await start(url);
    for (const which of ['large', 'small'] as const) {
      const r = await get(b.url + paths[which]);
      expect(r.status, which).toBe(200);
      expect(r.body.equals(pkgs[which]), which).toBe(true);
    }
    expect(upstream.requests).toEqual([]);
  });

  it('the bucket down: a package answer is a 502/504 naming the store, the process keeps going, and serves again once it is back', async () => {
    const up2 = await startTestUpstream({ packages: Object.values(pkgs) });
    const c = await start(up2.serviceIndexUrl);
    try {
      await s3.stop();
      let down;
      try {
        down = await get(c.url + paths.small);
      } finally {
        await s3.restart();
      }
      expect([502, 504]).toContain(down.status);
      expect(down.body.toString()).toContain(s3.bucket);
      expect(down.body.toString()).not.toContain(S3RVER_SECRET);
      const back = await get(c.url + paths.small);
      expect(back.status).toBe(200);
      expect(back.body.equals(pkgs.small)).toBe(true);
    } finally {
      await up2.close();
    }
  });

  it('start-up fails with an error naming the bucket and endpoint (never the keys) when the bucket cannot be written', async () => {
    const err = (await startTestProxy({ upstreams: ['http://127.0.0.1:9/v3/index.json'], config: storage('missing-bucket', s3.endpoint), env }).catch((e: unknown) => e)) as NuproxyError;
    expect(err).toBeInstanceOf(NuproxyError);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('missing-bucket');
    expect(err.message).toContain(s3.endpoint);
    expect(err.message).not.toContain(S3RVER_SECRET);
    const dir = await mkdtemp(join(tmpdir(), 'nuproxy-s3-down-'));
    try {
      const err2 = (await startTestProxy({ upstreams: ['http://127.0.0.1:9/v3/index.json'], config: storage(s3.bucket, 'http://127.0.0.1:9'), env, cacheDir: dir }).catch((e: unknown) => e)) as NuproxyError;
      expect(err2.code).toBe('CONFIG_INVALID');
      expect(err2.message).toContain(`s3://${s3.bucket}/nuproxy/ at http://127.0.0.1:9`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
