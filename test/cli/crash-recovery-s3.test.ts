// The built `nuproxy serve` with storage.kind s3 (a real s3rver) killed with SIGKILL while it uploads packages,
// five times over on one bucket: a kill never leaves a partial object at a package's key (a full re-hash of the
// bucket finds every object whole, its record true), the next start sweeps the spool, and every package it
// serves afterwards is byte-identical to the upstream's.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, getOutcome } from '../support/http.js';
import { filesIn } from '../support/cache-audit.js';
import { makeNupkg } from '../support/nupkg.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const ROUNDS = 5;
const BIG_PER_ROUND = 2;
const BIG_BYTES = 12 * 1024 * 1024; // over one 8 MB part: the kill lands mid multipart upload
const RATE = 3 * 1024 * 1024; // bytes per second: a big package takes about 4 s
const PREFIX = 'crash/';

interface Pkg {
  bytes: Buffer;
  lowerId: string;
  version: string;
  path: string; // relative to the flat container
}

function pkg(id: string, version: string, padBytes: number): Pkg {
  const bytes = Buffer.from(makeNupkg({ id, version, padBytes }));
  const lowerId = id.toLowerCase();
  return { bytes, lowerId, version, path: `${lowerId}/${version}/${lowerId}.${version}.nupkg` };
}

const spool = (cacheDir: string): ReturnType<typeof filesIn> => filesIn(join(cacheDir, '.tmp', 's3'));

describe('SIGKILL while packages go up to the bucket', () => {
  let work: string;
  let cacheDir: string;
  let s3: TestS3;
  let upstream: TestUpstream;
  let proxy: NuproxyProcess | undefined;
  const rounds: { big: Pkg[]; small: Pkg }[] = [];

  /** Every object under the prefix's packages/, re-hashed: its bytes against its record. */
  async function rehash(): Promise<{ keys: string[]; problems: string[] }> {
    const keys: string[] = [];
    const problems: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${PREFIX}packages/`, ContinuationToken }));
      for (const o of page.Contents ?? []) {
        const key = o.Key!.slice(PREFIX.length);
        keys.push(key);
        const obj = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: o.Key! }));
        const bytes = Buffer.from(await obj.Body!.transformToByteArray());
        const meta = obj.Metadata ?? {};
        if (meta.size !== String(bytes.length)) problems.push(`${key}: ${bytes.length} bytes, record says ${meta.size}`);
        if (meta.sha512 !== createHash('sha512').update(bytes).digest('base64')) problems.push(`${key}: bytes do not match the recorded SHA-512`);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return { keys: keys.sort(), problems };
  }

  const start = (name: string): Promise<NuproxyProcess> =>
    startNuproxy(
      work,
      name,
      {
        cache: { dir: cacheDir },
        storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: PREFIX, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } },
        upstreams: [{ name: 'origin', serviceIndex: upstream.serviceIndexUrl, retries: 0 }],
        log: { level: 'info' },
        shutdownGrace: '1s',
      },
      [],
      { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    );

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-crash-s3-'));
    cacheDir = join(work, 'cache');
    for (let r = 0; r < ROUNDS; r++) {
      rounds.push({
        big: Array.from({ length: BIG_PER_ROUND }, (_, k) => pkg(`CrashS3.Big${k}`, `${r + 1}.0.0`, BIG_BYTES)),
        small: pkg('CrashS3.Small', `${r + 1}.0.0`, 32 * 1024),
      });
    }
    s3 = await startS3('nupkgs');
    upstream = await startTestUpstream({ packages: rounds.flatMap((r) => [...r.big, r.small].map((p) => p.bytes)) });
  });
  afterAll(async () => {
    if (proxy && proxy.child.exitCode === null && proxy.child.signalCode === null) await proxy.stop();
    await upstream?.close();
    await s3?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it(`never leaves a partial object at a key, sweeps the spool at start, serves whole packages after (${ROUNDS} rounds)`, async () => {
    proxy = await start('serve-0');
    for (let r = 0; r < ROUNDS; r++) {
      const { big, small } = rounds[r]!;
      const label = `round ${r + 1}`;

      const done = await get(`${proxy.url}v3/flat/${small.path}`);
      expect(done.status, label).toBe(200);
      expect(done.body.equals(small.bytes), label).toBe(true);

      // the big ones are throttled and die after their first part went up
      for (const p of big) upstream.setFault(`/v3-flatcontainer/${p.path}`, { kind: 'throttle', bytesPerSecond: RATE });
      const pending = big.map((p) => getOutcome(`${proxy!.url}v3/flat/${p.path}`));
      const deadline = Date.now() + 15_000;
      for (;;) {
        const parts = (await spool(cacheDir)).filter((f) => f.name.endsWith('.part') && f.size >= 8.5 * 1024 * 1024);
        if (parts.length >= big.length) break;
        expect(Date.now() < deadline, `${label}: uploads under way`).toBe(true);
        await new Promise((res) => setTimeout(res, 25));
      }
      await new Promise((res) => setTimeout(res, r * 150)); // a different point each round
      proxy.child.kill('SIGKILL');
      await proxy.exited;
      for (const p of big) upstream.setFault(`/v3-flatcontainer/${p.path}`, undefined);
      for (const [k, res] of (await Promise.all(pending)).entries()) {
        expect(res.complete, `${label}: ${big[k]!.path} should have been cut off`).toBe(false);
        expect(res.body.length, `${label}: ${big[k]!.path}`).toBeLessThan(BIG_BYTES);
      }

      // the bucket: nothing at the interrupted keys; every object whole, its record true
      const killed = await rehash();
      expect(killed.problems, `${label}: after the kill`).toEqual([]);
      for (const p of big) expect(killed.keys, label).not.toContain(`packages/${p.path}`);
      expect(killed.keys, label).toContain(`packages/${small.path}`);
      const leftovers = (await spool(cacheDir)).length;
      expect(leftovers, `${label}: the interrupted uploads' spool files`).toBeGreaterThanOrEqual(big.length);

      // restart: the spool swept before it listens
      proxy = await start(`serve-${r + 1}`);
      expect(await spool(cacheDir), `${label}: spool after the restart`).toEqual([]);
      const swept = proxy.lines.find((l) => typeof l.swept === 'number');
      expect(swept?.swept, `${label}: the start-up log says what it swept`).toBeGreaterThanOrEqual(leftovers);

      for (const p of rounds.slice(0, r + 1).flatMap((x) => [...x.big, x.small])) {
        const got = await get(`${proxy.url}v3/flat/${p.path}`);
        expect(got.status, `${label}: ${p.path}`).toBe(200);
        expect(got.body.equals(p.bytes), `${label}: ${p.path} byte-identical`).toBe(true);
      }
      const settle = Date.now() + 10_000;
      while ((await spool(cacheDir)).length > 0 && Date.now() < settle) await new Promise((res) => setTimeout(res, 25));
      const after = await rehash();
      expect(after.problems, `${label}: after the restart`).toEqual([]);
      for (const p of rounds.slice(0, r + 1).flatMap((x) => [...x.big, x.small])) expect(after.keys, label).toContain(`packages/${p.path}`);
    }
    expect(await proxy.stop()).toBe(0);
  }, 240_000);
});
