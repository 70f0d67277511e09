// 7. The two S3 client libraries the issue names, the AWS SDK v3 S3 client (what nuproxy uses) and the MinIO JS
// client, making exactly the requests nuproxy makes, against one s3rver (test/support/s3.ts, in a process of its
// own: bench/s3-server.ts, so this process's CPU time is the client's). Cold row: a miss stored, as
// src/cache/s3-blob-writer.ts does it (one PutObject up to a part; over it CreateMultipartUpload, UploadPart of
// 8 MB parts, at most 8 parts on the wire, CompleteMultipartUpload, CopyObject staging -> key, DeleteObject
// staging). Warm row: a hit from the bucket (HeadObject once, as the store caches the stat, then GetObject with a
// Range streamed to a sink). Each measurement runs for a fixed time; both clients are measured back to back on
// every row, the one going first alternating by run and row; ratios are taken within a run.
import { createHash, randomBytes } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Client as MinioClient, CopyDestinationOptions, CopySourceOptions } from 'minio';
import type { Ctx, Scenario } from '../lib/context.js';
import type { Scope } from '../lib/proc.js';
import { startS3Server } from '../lib/s3proc.js';
import { fmt, median, type ScenarioOutput } from '../lib/report.js';

const SIZES = [
  { label: '10 KB', bytes: 10_000 },
  { label: '1 MB', bytes: 1_000_000 },
  { label: '20 MB', bytes: 20_000_000 },
];
const COLD_CONC = [1, 8];
const WARM_CONC = [1, 32];
const PART = 8 * 1024 * 1024; // the store's default part size
const PARTS_IN_FLIGHT = 8; // as s3-blob-writer.ts: all uploads of the process together
const TYPE = 'application/octet-stream';
const KEY = 'S3RVER'; // s3rver's fixed test credentials (not secrets)

/** The S3 calls nuproxy makes, one implementation per client library. */
interface Calls {
  put(key: string, body: Buffer, meta: Record<string, string>): Promise<void>;
  begin(key: string): Promise<string>;
  part(key: string, uploadId: string, n: number, body: Buffer): Promise<string>;
  complete(key: string, uploadId: string, etags: string[]): Promise<void>;
  copy(from: string, to: string, meta: Record<string, string>): Promise<void>;
  del(key: string): Promise<void>;
  head(key: string): Promise<number>;
  range(key: string, start: number, end: number): Promise<Readable>;
  close(): void;
}
type Name = 'aws' | 'minio';

function awsCalls(endpoint: string, Bucket: string): Calls {
  // as src/cache/s3-blob-store.ts configures it
  const c = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: KEY, secretAccessKey: KEY },
    maxAttempts: 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
  });
  const src = (key: string): string => `${Bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return {
    put: async (Key, Body, Metadata) => void (await c.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: Body.length, ContentType: TYPE, Metadata }))),
    begin: async (Key) => (await c.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: TYPE }))).UploadId!,
    part: async (Key, UploadId, PartNumber, Body) => (await c.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.length }))).ETag!,
    complete: async (Key, UploadId, etags) =>
      void (await c.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) } }))),
    copy: async (from, Key, Metadata) => void (await c.send(new CopyObjectCommand({ Bucket, Key, CopySource: src(from), MetadataDirective: 'REPLACE', Metadata, ContentType: TYPE }))),
    del: async (Key) => void (await c.send(new DeleteObjectCommand({ Bucket, Key }))),
    head: async (Key) => (await c.send(new HeadObjectCommand({ Bucket, Key }))).ContentLength!,
    range: async (Key, start, end) => (await c.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${start}-${end}` }))).Body as Readable,
    close: () => c.destroy(),
  };
}

function minioCalls(endpoint: string, bucket: string): Calls {
  const u = new URL(endpoint);
  // the region given, as with the SDK: no bucket-location request first
  const c = new MinioClient({ endPoint: u.hostname, port: Number(u.port), useSSL: false, accessKey: KEY, secretKey: KEY, region: 'us-east-1', pathStyle: true });
  return {
    put: async (key, body, meta) => void (await c.putObject(bucket, key, body, body.length, { 'Content-Type': TYPE, ...meta })),
    // the multipart calls nuproxy needs (complete only after its own checks) are public methods of the v8
    // client, though its documentation lists only putObject, which completes by itself
    begin: (key) => c.initiateNewMultipartUpload(bucket, key, { 'Content-Type': TYPE }),
    part: async (key, uploadID, partNumber, body) => (await c.uploadPart({ bucketName: bucket, objectName: key, uploadID, partNumber, headers: { 'Content-Length': body.length } }, body)).etag,
    complete: async (key, id, etags) => void (await c.completeMultipartUpload(bucket, key, id, etags.map((etag, i) => ({ part: i + 1, etag })))),
    copy: async (from, to, meta) =>
      void (await c.copyObject(new CopySourceOptions({ Bucket: bucket, Object: from }), new CopyDestinationOptions({ Bucket: bucket, Object: to, MetadataDirective: 'REPLACE', UserMetadata: meta, Headers: { 'Content-Type': TYPE } }))),
    del: (key) => c.removeObject(bucket, key),
    head: async (key) => (await c.statObject(bucket, key)).size,
    range: (key, start, end) => c.getPartialObject(bucket, key, start, end - start + 1),
    close: () => undefined,
  };
}

const slots = { free: PARTS_IN_FLIGHT, waiting: [] as (() => void)[] };
async function inSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (slots.free > 0) slots.free--;
  else await new Promise<void>((r) => slots.waiting.push(r));
  try {
    return await fn();
  } finally {
    const next = slots.waiting.shift();
    if (next) next();
    else slots.free++;
  }
}

/** A miss stored, request for request as the S3 writer does it. */
async function store(c: Calls, key: string, body: Buffer, meta: Record<string, string>): Promise<void> {
  if (body.length <= PART) return c.put(key, body, meta);
  const staging = `.uploads/bench-${key.replace(/\//g, '-')}.part`;
  const id = await c.begin(staging);
  const starts = Array.from({ length: Math.ceil(body.length / PART) }, (_, i) => i * PART);
  const etags = await Promise.all(starts.map((s, i) => inSlot(() => c.part(staging, id, i + 1, body.subarray(s, Math.min(body.length, s + PART))))));
  await c.complete(staging, id, etags);
  await c.copy(staging, key, meta);
  await c.del(staging);
}

async function drain(body: Readable): Promise<number> {
  let n = 0;
  await pipeline(body, new Writable({ write: (chunk: Buffer, _e, cb) => ((n += chunk.length), cb()) }));
  return n;
}

interface Sample {
  ops: number;
  perSec: number;
  mbPerSec: number;
  p50: number;
  p99: number;
  /** CPU time of this process (the client's: the server runs elsewhere) per operation, ms. */
  cpuMs: number;
}

/** `conc` loops doing `op` until `seconds` have passed; `op` returns the bytes it moved. */
async function measure(scope: Scope, conc: number, seconds: number, op: (i: number) => Promise<number>): Promise<Sample> {
  scope.check();
  const lat: number[] = [];
  let bytes = 0;
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const moved = await op(next++); // (not `bytes += await`: that would add to a stale total)
        bytes += moved;
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const at = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!;
  return { ops: lat.length, perSec: lat.length / secs, mbPerSec: bytes / 1e6 / secs, p50: at(0.5), p99: at(0.99), cpuMs: (cpu.user + cpu.system) / 1000 / lat.length };
}

interface Row {
  size: number;
  conc: number;
  runs: Record<Name, Sample>[];
}

async function run(ctx: Ctx): Promise<ScenarioOutput> {
  const { s, scope, log } = ctx;
  const seconds = s.wrkSeconds * 0.4;
  const server = await startS3Server(scope, 'bench-clients');
  const clients: Record<Name, Calls> = { aws: awsCalls(server.endpoint, server.bucket), minio: minioCalls(server.endpoint, server.bucket) };
  scope.onClose(() => Object.values(clients).forEach((c) => c.close()));
  const checker = clients.aws;
  const bodies = SIZES.map((z) => randomBytes(z.bytes));
  const metas = bodies.map((b) => ({ size: String(b.length), sha512: createHash('sha512').update(b).digest('base64') }));
  for (const [z, b] of bodies.entries()) await checker.put(`warm/${z}`, b, metas[z]!);

  const coldOp = (c: Calls, name: Name, z: number, tag: string, keys: string[]) => async (i: number): Promise<number> => {
    const key = `cold/${name}/${tag}/${i}`;
    keys.push(key);
    await store(c, key, bodies[z]!, metas[z]!);
    return bodies[z]!.length;
  };
  const warmOp = (c: Calls, z: number) => async (): Promise<number> => {
    const n = await drain(await c.range(`warm/${z}`, 0, bodies[z]!.length - 1));
    if (n !== bodies[z]!.length) throw new Error(`a ranged GET of ${SIZES[z]!.label} gave ${n} bytes`);
    return n;
  };
  /** One cold measurement, its objects checked (whole, with their record) and removed after (not timed). */
  const cold = async (name: Name, z: number, conc: number, tag: string, secs: number): Promise<Sample> => {
    const keys: string[] = [];
    const r = await measure(scope, conc, secs, coldOp(clients[name], name, z, tag, keys));
    const size = await checker.head(keys[0]!);
    if (size !== bodies[z]!.length) throw new Error(`${name} stored ${size} of ${bodies[z]!.length} bytes`);
    for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((k) => checker.del(k)));
    return r;
  };
  const warm = async (name: Name, z: number, conc: number, secs: number): Promise<Sample> => {
    if ((await clients[name].head(`warm/${z}`)) !== bodies[z]!.length) throw new Error(`${name}: HeadObject gave another size`);
    return measure(scope, conc, secs, warmOp(clients[name], z));
  };

  // warm-up, discarded: each client's code paths (JIT) and connections, every size once
  for (const name of ['aws', 'minio'] as const) {
    for (const z of SIZES.keys()) {
      await cold(name, z, 8, 'warmup', 0.5);
      await warm(name, z, 32, 0.5);
    }
  }
  const coldRows: Row[] = SIZES.flatMap((_, z) => COLD_CONC.map((conc) => ({ size: z, conc, runs: [] })));
  const warmRows: Row[] = SIZES.flatMap((_, z) => WARM_CONC.map((conc) => ({ size: z, conc, runs: [] })));
  for (let r = 0; r < s.runs; r++) {
    for (const [kind, rows] of [['cold', coldRows], ['warm', warmRows]] as const) {
      for (const [j, row] of rows.entries()) {
        const order: Name[] = (r + j) % 2 === 0 ? ['aws', 'minio'] : ['minio', 'aws'];
        const pair: Partial<Record<Name, Sample>> = {};
        for (const name of order) pair[name] = kind === 'cold' ? await cold(name, row.size, row.conc, `${r}-${j}`, seconds) : await warm(name, row.size, row.conc, seconds);
        row.runs.push(pair as Record<Name, Sample>);
        const l = (n: Name): string => `${n} ${fmt(pair[n]!.perSec)}/s ${fmt(pair[n]!.mbPerSec)} MB/s`;
        log(`s3-clients: run ${r + 1}/${s.runs} ${kind} ${SIZES[row.size]!.label} ×${row.conc}: ${l('aws')}, ${l('minio')}`);
      }
    }
  }

  const m = (row: Row, n: Name, f: (x: Sample) => number): string => fmt(median(row.runs.map((p) => f(p[n]))));
  const ratio = (row: Row, f: (x: Sample) => number): string => `${fmt(median(row.runs.map((p) => f(p.minio) / f(p.aws))))}×`;
  const label = (row: Row): string[] => [SIZES[row.size]!.label, String(row.conc)];
  return {
    tables: [
      {
        title: `7a. Cold (a miss stored: PutObject, or multipart + copy + delete over 8 MB), ${fmt(seconds)} s per figure, median of ${s.runs}`,
        columns: ['Size', 'conc', 'aws puts/s', 'minio puts/s', 'minio/aws', 'aws MB/s', 'minio MB/s', 'aws CPU ms/put', 'minio CPU ms/put'],
        rows: coldRows.map((row) => [...label(row), m(row, 'aws', (x) => x.perSec), m(row, 'minio', (x) => x.perSec), ratio(row, (x) => x.perSec), m(row, 'aws', (x) => x.mbPerSec), m(row, 'minio', (x) => x.mbPerSec), m(row, 'aws', (x) => x.cpuMs), m(row, 'minio', (x) => x.cpuMs)]),
      },
      {
        title: `7b. Warm (a hit from the bucket: ranged GetObject to a sink), ${fmt(seconds)} s per figure, median of ${s.runs}`,
        columns: ['Size', 'conc', 'aws req/s', 'minio req/s', 'minio/aws', 'aws MB/s', 'minio MB/s', 'aws p50 ms', 'minio p50 ms', 'aws p99 ms', 'minio p99 ms', 'aws CPU ms/req', 'minio CPU ms/req'],
        rows: warmRows.map((row) => [
          ...label(row),
          m(row, 'aws', (x) => x.perSec),
          m(row, 'minio', (x) => x.perSec),
          ratio(row, (x) => x.perSec),
          m(row, 'aws', (x) => x.mbPerSec),
          m(row, 'minio', (x) => x.mbPerSec),
          m(row, 'aws', (x) => x.p50),
          m(row, 'minio', (x) => x.p50),
          m(row, 'aws', (x) => x.p99),
          m(row, 'minio', (x) => x.p99),
          m(row, 'aws', (x) => x.cpuMs),
          m(row, 'minio', (x) => x.cpuMs),
        ]),
      },
    ],
    checks: [],
    notes: [
      'Both clients in this process, the server (s3rver) in another: CPU ms are the client\'s own. Over plain HTTP both hash every body they send (SHA-256, signed in x-amz-content-sha256): the same work for both.',
    ],
    data: { seconds, cold: coldRows, warm: warmRows },
  };
}

export const s3ClientsScenario: Scenario = { name: 's3-clients', title: 'S3 client libraries: AWS SDK v3 vs MinIO', run };
