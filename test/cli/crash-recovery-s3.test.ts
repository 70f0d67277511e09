// The built `nuproxy serve` with storage.kind s3 (a real s3rver) killed with SIGKILL while it uploads packages,
// five times over on one bucket: a kill never leaves a partial object at a package's key (a full re-hash of the
// bucket finds every object whole, its record true); the killed process's multipart uploads are listed by the
// bucket until the next start aborts them (their part files gone from the server's disk) and sweeps its staging
// objects and spool; another host's fresh upload and staging object are left alone, anyone's day-old upload is
// not; and every package it serves afterwards is byte-identical to the upstream's.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
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
const STAGING = `${PREFIX}.uploads/`;
/** How nuproxy names this host in staging keys (src/cache/s3-blob-store.ts): the killed process's uploads carry it. */
const HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';
const MINE = `${STAGING}${HOST}-`;
/** Another instance sharing the bucket (a name that starts differently, never this host's prefix). */
const OTHER = `other${HOST}`.slice(0, 40);

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

  /** Every multipart upload under the staging prefix, as the bucket lists it (page by page). */
  async function uploads(): Promise<{ key: string; id: string }[]> {
    const out: { key: string; id: string }[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: STAGING, KeyMarker, UploadIdMarker, MaxUploads: 3 }));
      for (const u of page.Uploads ?? []) out.push({ key: u.Key!, id: u.UploadId! });
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
    return out;
  }
  const staged = async (): Promise<string[]> => ((await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: STAGING }))).Contents ?? []).map((o) => o.Key!).sort();
  /** A multipart upload with one part, as another instance leaves it while it works (or dies). */
  async function foreignUpload(Key: string): Promise<string> {
    const { UploadId } = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key }));
    const Body = Buffer.alloc(64 * 1024, 5);
    await s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key, UploadId, PartNumber: 1, Body, ContentLength: Body.length }));
    return UploadId!;
  }

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

  it(`never leaves a partial object at a key, aborts its uploads and sweeps staging and spool at start, serves whole packages after (${ROUNDS} rounds)`, async () => {
    // another host's work under way (fresh: left alone), and a day-old upload of a host that never came back
    const otherKey = `${STAGING}${OTHER}-0a1b2c3d.part`;
    const otherId = await foreignUpload(otherKey);
    const otherStaged = `${STAGING}${OTHER}-4e5f6a7b.part`;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: otherStaged, Body: Buffer.from('staged'), ContentLength: 6 }));
    const oldId = await foreignUpload(`${STAGING}gone${HOST}-8c9d0e1f.part`);
    const dayAgo = new Date(Date.now() - 2 * 24 * 3_600_000);
    await utimes(join(s3.uploadsDir, oldId, 'key'), dayAgo, dayAgo); // s3rver's Initiated
    expect((await uploads()).map((u) => u.id).sort()).toEqual([otherId, oldId].sort());

    proxy = await start('serve-0');
    expect((await uploads()).map((u) => u.id), 'the day-old upload is aborted at start, the fresh one kept').toEqual([otherId]);
    expect(existsSync(join(s3.uploadsDir, oldId))).toBe(false);
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
      // the bucket lists both uploads, their first part arriving on the server's disk
      for (;;) {
        const mine = (await uploads()).filter((u) => u.key.startsWith(MINE));
        const withPart = mine.filter((u) => existsSync(join(s3.uploadsDir, u.id, '1')));
        if (withPart.length >= big.length) break;
        expect(Date.now() < deadline, `${label}: ${mine.length} uploads listed, ${withPart.length} with a part on the server`).toBe(true);
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
      // the killed process's uploads stay listed, their parts on the server's disk, until someone aborts them
      const killedUploads = (await uploads()).filter((u) => u.key.startsWith(MINE));
      expect(killedUploads.length, `${label}: the killed uploads listed before the restart`).toBeGreaterThanOrEqual(big.length);
      for (const u of killedUploads) expect((await readdir(join(s3.uploadsDir, u.id))).filter((f) => /^\d+$/.test(f)).length, `${label}: ${u.key} parts`).toBeGreaterThan(0);
      // a staging object of this host, as a kill between Complete and the copy to the key leaves (too short a
      // window to hit by timing: put here)
      const myStaged = `${MINE}${(r + 1).toString(16).padStart(8, '0')}.part`;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: myStaged, Body: Buffer.from('partial'), ContentLength: 7 }));

      // restart: the uploads aborted, staging and spool swept before it listens
      proxy = await start(`serve-${r + 1}`);
      expect(await spool(cacheDir), `${label}: spool after the restart`).toEqual([]);
      expect((await uploads()).filter((u) => u.key.startsWith(MINE)), `${label}: this host's uploads after the restart`).toEqual([]);
      for (const u of killedUploads) expect(existsSync(join(s3.uploadsDir, u.id)), `${label}: ${u.key}'s part files on the server`).toBe(false);
      expect(await staged(), `${label}: staging objects after the restart`).toEqual([otherStaged]);
      expect((await uploads()).map((u) => u.id), `${label}: the other host's fresh upload`).toEqual([otherId]);
      expect(existsSync(join(s3.uploadsDir, otherId, '1')), `${label}: the other host's part`).toBe(true);
      const swept = proxy.lines.find((l) => typeof l.swept === 'number');
      expect(swept?.swept, `${label}: the start-up log says what it swept`).toBeGreaterThanOrEqual(leftovers + killedUploads.length + 1);

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
