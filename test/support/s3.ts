// A real S3-compatible server for tests (s3rver, in this process): its own free port and temp directory, one
// bucket created at start, stop/restart on the same port and data (the fault tests stop it mid-upload).
// s3rver keeps objects in plain files, answers with real S3 XML and checks SigV4 signatures (keys S3RVER).
// Patched in the test server only: two of its bugs (listing with a delimiter, PUTs that are not atomic) below,
// and the two multipart operations it lacks, ListMultipartUploads and AbortMultipartUpload (with UploadPart and
// Complete on an aborted upload answering NoSuchUpload), in s3rver-uploads.ts, so the start-up sweep of a killed
// writer's uploads (src/cache/s3-sweep.ts) runs against a real answer here.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './net.js';
import { addMultipartListingAndAbort } from './s3rver-uploads.js';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const requireCjs = createRequire(import.meta.url);
const S3rver = requireCjs('s3rver') as S3rverCtor;

interface ListOptions {
  delimiter?: string;
  prefix?: string;
  maxKeys?: number;
  [k: string]: unknown;
}
interface ListResult {
  objects: { key: string }[];
  commonPrefixes: string[];
  isTruncated: boolean;
}
interface StoredObject {
  bucket: string;
  key: string;
  content: NodeJS.ReadableStream | Buffer;
  metadata: Record<string, string>;
}
interface FilesystemStoreProto {
  listObjects(bucket: string, options: ListOptions): Promise<ListResult>;
  putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
  copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, meta: unknown): Promise<unknown>;
  getResourcePath(bucket: string, key: string, kind: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  getMetadata(bucket: string, key: string): Promise<unknown>;
}

/**
 * s3rver 3.7.1's disk store writes an object in place (and answers before the file is flushed), so two PUTs of
 * one key interleave their bytes and a HEAD during a PUT or copy sees part of the object, where S3 and every
 * real store replace an object atomically. Patched here, in the test server only: the bytes go to a temp file
 * renamed over the object after its record is written, and writes of one key take turns.
 */
function fixAtomicPut(proto: FilesystemStoreProto): void {
  const turns = new Map<string, Promise<unknown>>();
  const inTurn = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const run = (turns.get(id) ?? Promise.resolve()).catch(() => undefined).then(fn);
    turns.set(id, run);
    void run.finally(() => turns.get(id) === run && turns.delete(id)).catch(() => undefined);
    return run;
  };
  const copy = proto.copyObject;
  proto.copyObject = function (this: FilesystemStoreProto, srcBucket, srcKey, destBucket, destKey, meta) {
    return inTurn(`${destBucket}/${destKey}`, async () => {
      const src = this.getResourcePath(srcBucket, srcKey, 'object');
      const dest = this.getResourcePath(destBucket, destKey, 'object');
      if (!meta || src === dest) return copy.call(this, srcBucket, srcKey, destBucket, destKey, meta);
      // a copy with new metadata: bytes to a temp file, the record first, then the bytes renamed into place
      await mkdir(dirname(dest), { recursive: true });
      const temp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
      await copyFile(src, temp);
      const md5 = createHash('md5').update(await readFile(temp)).digest('hex');
      await this.putMetadata(destBucket, destKey, meta as Record<string, string>, md5);
      await rename(temp, dest);
      return this.getMetadata(destBucket, destKey);
    });
  };
  proto.putObject = function (this: FilesystemStoreProto, object: StoredObject) {
    return inTurn(`${object.bucket}/${object.key}`, async () => {
      const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
      await mkdir(dirname(objectPath), { recursive: true });
      const temp = `${objectPath}.${randomBytes(6).toString('hex')}.tmp`;
      const md5 = createHash('md5');
      let size = 0;
      const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : (object.content as Readable);
      const counted = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          md5.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(source, counted, createWriteStream(temp));
      const digest = md5.digest('hex');
      // the record first, then the bytes: a new key shows nothing until both are there
      await this.putMetadata(object.bucket, object.key, object.metadata, digest);
      await rename(temp, objectPath);
      return { size, md5: digest };
    });
  };
}

/**
 * s3rver 3.7.1's disk store misses common prefixes that hold no object directly (it prunes the walk below them
 * before it has seen one: `a/1.0.0/x` under `a/` is never found with Delimiter "/"); S3, MinIO and the rest group
 * by prefix as documented. Patched here, in the test server only: a listing with a delimiter walks everything
 * under the prefix and groups as S3 does.
 */
function fixTestServer(): void {
  const proto = (requireCjs('s3rver/lib/stores/filesystem.js') as { prototype: FilesystemStoreProto & { fixedByNuproxy?: boolean } }).prototype;
  if (proto.fixedByNuproxy) return;
  proto.fixedByNuproxy = true;
  fixAtomicPut(proto);
  addMultipartListingAndAbort();
  const original = proto.listObjects;
  proto.listObjects = async function (this: unknown, bucket: string, options: ListOptions): Promise<ListResult> {
    const { delimiter, prefix = '', maxKeys = Infinity } = options;
    if (!delimiter) return original.call(this, bucket, options);
    const all = await original.call(this, bucket, { ...options, delimiter: '', maxKeys: Infinity });
    const common = new Set<string>();
    const objects: { key: string }[] = [];
    let isTruncated = false;
    for (const o of all.objects) {
      const idx = o.key.slice(prefix.length).indexOf(delimiter);
      if (idx !== -1) common.add(o.key.slice(0, prefix.length + idx + delimiter.length));
      else if (objects.length < maxKeys) objects.push(o);
      else {
        isTruncated = true;
        break;
      }
    }
    return { objects, commonPrefixes: [...common].sort(), isTruncated };
  };
}

/** s3rver's fixed credentials (test-only, not secrets). */
export const S3RVER_KEY = 'S3RVER';
export const S3RVER_SECRET = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  port: number;
  /** s3rver's data directory. */
  dir: string;
  /** Where s3rver keeps the bucket's multipart uploads: one folder per upload id, with its part files. */
  uploadsDir: string;
  /** A client of the server for the test's own checks (path style, s3rver's keys). */
  client: S3Client;
  /** Closes the server, cutting the connections open now (data kept). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data (stops it first when running). */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

export function testS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Starts s3rver on a free loopback port with `bucket` (3+ characters) created. */
export async function startS3(bucket = 'nupkgs'): Promise<TestS3> {
  fixTestServer();
  const dir = await mkdtemp(join(tmpdir(), 'nuproxy-s3rver-'));
  const port = await freePort();
  let server: S3rverInstance | undefined;
  const start = async (): Promise<void> => {
    const s = new S3rver({ address: '127.0.0.1', port, directory: dir, silent: true, configureBuckets: [{ name: bucket }], vhostBuckets: false });
    await s.run();
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closing = s.close();
    s.httpServer?.closeAllConnections();
    await closing;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = testS3Client(endpoint);
  return {
    endpoint,
    bucket,
    port,
    dir,
    uploadsDir: join(dir, bucket, '._S3rver_uploads'),
    client,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      client.destroy();
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every object key in the test bucket, page by page. */
export async function bucketKeys(s3: Pick<TestS3, 'client' | 'bucket'>): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
