// The bucket server killed in the middle of a download through nuproxy, then started again: a client never
// receives a complete-looking body that is not the checked package, nothing partial is ever visible at the package's key,
// the process keeps serving, and once the server is back the package is fetched, stored and served whole.
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { getOutcome, type Outcome } from '../support/http.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const sha512 = (b: Uint8Array): string => createHash('sha512').update(b).digest('base64');
const PREFIX = 'faults/';

/** A whole answer is the checked package; anything else was cut short (never other bytes looking complete). */
function wholeOrCut(o: Outcome, big: Buffer): boolean {
  const whole = o.status === 200 && o.complete;
  if (whole) expect(o.body.equals(big)).toBe(true);
  else expect(o.body.length).toBeLessThan(big.length);
  return whole;
}

describe('storage.kind s3: the bucket server killed mid-download and restarted', () => {
  let s3: TestS3;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  // three 8 MB parts: the upload is well under way when the server goes
  const big = Buffer.from(makeNupkg({ id: 'Fault.Big', version: '1.0.0', padBytes: 20 * 1024 * 1024 }));
  const path = 'v3/flat/fault.big/1.0.0/fault.big.1.0.0.nupkg';
  const upstreamPath = `/v3-flatcontainer/${path.slice('v3/flat/'.length)}`;
  const key = `${PREFIX}packages/fault.big/1.0.0/fault.big.1.0.0.nupkg`;

  beforeAll(async () => {
    s3 = await startS3('faults');
    upstream = await startTestUpstream({ packages: [big] });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: { storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: PREFIX, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } } },
      env: { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET },
    });
  });
  afterAll(async () => {
    await proxy?.stop().catch(() => undefined);
    await upstream?.close();
    await s3?.close();
  });

  it('no client gets other bytes than the checked package, nothing partial is at the key, and once the server is back the package is stored and served whole', { timeout: 60_000 }, async () => {
    upstream.setFault(upstreamPath, { kind: 'throttle', bytesPerSecond: 8 * 1024 * 1024 });
    const first = getOutcome(proxy.url + path);
    // about 1.5 s in: the first part has gone up, the second is on its way
    await new Promise((r) => setTimeout(r, 1500));
    await s3.stop();
    // the client whose download was under way: a body that looks complete is the right one (the last byte is
    // only sent once the bytes are checked, which they can be from the local spool), else it is cut short
    wholeOrCut(await first, big);
    // while the bucket is down, a new miss of this large package streams as it arrives (as on disk): what a
    // client gets whole is the checked bytes, else it is cut short; nothing is stored (checked below)
    wholeOrCut(await getOutcome(proxy.url + path), big);
    expect((await request(`${proxy.url}health/live`)).statusCode).toBe(200);

    await s3.restart();
    upstream.setFault(upstreamPath, undefined);
    // the download under way when the server went may still be finishing (its upload's state is gone with the
    // server: it fails, and is not stored); requests go on until one has been stored, each answered whole with the
    // checked bytes or cut short, never with other bytes
    const present = (): Promise<boolean> => s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(() => true, () => false);
    const deadline = Date.now() + 30_000;
    let served = 0;
    while (!(await present())) {
      if (Date.now() > deadline) throw new Error(`not stored 30 s after the server came back (${served} whole answers)`);
      if (wholeOrCut(await getOutcome(proxy.url + path), big)) served++;
      await new Promise((done) => setTimeout(done, 200));
    }
    const again = await getOutcome(proxy.url + path);
    expect(again.complete).toBe(true);
    expect(again.status).toBe(200);
    expect(again.body.equals(big)).toBe(true);

    // every object at a package key is whole: its bytes match its record
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${PREFIX}packages/` }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([key]);
    const obj = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const stored = Buffer.from(await obj.Body!.transformToByteArray());
    expect(stored.equals(big)).toBe(true);
    expect(obj.Metadata?.sha512).toBe(sha512(big));
  });
});
