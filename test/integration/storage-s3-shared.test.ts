// Two instances, one Redis, one bucket (s3rver): 50 concurrent misses of a 20 MB package (over the Redis blob
// tier's size, so only the bucket can carry it between instances) spread over both: every client gets the
// identical bytes, and exactly one upstream fetch in all (the holder keeps the shared lock until the object is
// committed; the other instance reads it from the bucket).
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { needTool } from '../support/need.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const missing = needTool('redis-server', redisServerPath() !== undefined, 'storage-s3-shared (two instances on one Redis and one bucket)');

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(url);
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}

describe.skipIf(missing)('two instances, one Redis, one bucket', () => {
  let s3: TestS3;
  let redis: TestRedis;
  let upstream: TestUpstream;
  let a: TestProxy;
  let b: TestProxy;
  const big = Buffer.from(makeNupkg({ id: 'Shared.Big', version: '1.0.0', padBytes: 20 * 1024 * 1024 }));

  beforeAll(async () => {
    [s3, redis, upstream] = await Promise.all([startS3('nupkgs'), startRedis(), startTestUpstream({ packages: [big] })]);
    const config = {
      cache: { metadata: redis.url },
      storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } },
    };
    const env = { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET };
    [a, b] = await Promise.all([startTestProxy({ upstreams: [upstream.serviceIndexUrl], config, env }), startTestProxy({ upstreams: [upstream.serviceIndexUrl], config, env })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await upstream?.close();
    await redis?.stop();
    await s3?.close();
  });

  it('50 concurrent misses of a 20 MB package over both instances: identical bytes, one upstream fetch', { timeout: 60_000 }, async () => {
    const path = 'v3/flat/shared.big/1.0.0/shared.big.1.0.0.nupkg';
    const upstreamPath = `/v3-flatcontainer/${path.slice('v3/flat/'.length)}`;
    upstream.setFault(upstreamPath, { kind: 'throttle', bytesPerSecond: 16 * 1024 * 1024 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => get(`${(i % 2 ? a : b).url}${path}`)));
    upstream.setFault(upstreamPath, undefined);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.equals(big)).toBe(true);
    }
    expect(upstream.hits(upstreamPath)).toBe(1);
  });
});
