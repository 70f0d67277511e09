import { constants as fsc, open as openCb } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LRUCache } from 'lru-cache';
import { NuproxyError } from '../errors.js';
import type { BlobInfo, BlobStore, BlobWriter, ByteReader, ByteSink, CommitCheck, SendProgress } from './blob-store.js';
import { importVia, putVia } from './blob-commit.js';
import { exactly, isNotFound, parseRecord, storeFailure } from './s3-io.js';
import { listObjects, sendBody, sweepLeftovers } from './s3-sweep.js';
import { S3BlobWriter, type S3WriterHome } from './s3-blob-writer.js';
import { ReadLog } from './read-log.js';
import { createPresigner } from './s3-presign.js';

export interface S3BlobStoreOptions {
  /** Absent: AWS itself (the region's endpoint). */
  endpoint?: string;
  bucket: string;
  region: string;
  /** Key prefix inside the bucket ("" or ending in "/"; a missing "/" is added). */
  prefix: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A local directory for spool files (the disk cache's temp area: app.ts gives it). */
  scratchDir: string;
  /** How many stats are kept in memory (a share of cache.memoryMaxMB). */
  maxStats?: number;
  /** Bytes per part of a multipart upload (S3's minimum is 5 MB, default 8 MB); smaller blobs go up in one PutObject. */
  partSize?: number;
  /** The bucket's address as clients reach it, for presigned URLs (absent: `endpoint`). */
  publicEndpoint?: string;
}

const SEGMENT = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}$/;
/** Spool files, staging objects and uploads carry the host's name: instances sharing a bucket sweep only their own. */
const HOST = hostname().replace(/[^A-Za-z0-9]/g, '').slice(0, 40) || 'host';
/** Staging objects and uploads live here (a dot segment: no blob key can start so). */
const STAGING = '.uploads/';
const DEFAULT_PART = 8 * 1024 * 1024;

/**
 * Immutable blobs in an S3-compatible bucket under a key prefix: the blob at `<prefix><key>`, its record (size,
 * SHA-512, supplier) as the object's metadata. Writes spool locally and go up while they arrive (see
 * S3BlobWriter); nothing appears at a key before its checks have passed. Keys follow the disk store's rules
 * (the same segments), so bundles and caches move between the backends unchanged. Everything the bucket sends
 * back is checked (the record's fields, each body's length) before it is believed.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly sharedAcrossInstances = true;
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly scratchDir: string;
  private readonly partSize: number;
  private readonly infoCache: LRUCache<string, BlobInfo>;
  private readonly reads = new ReadLog();
  private readonly home: S3WriterHome;
  private readonly sign: (objectKey: string, ttlSeconds: number) => Promise<string>;

  constructor(opts: S3BlobStoreOptions) {
    this.bucket = opts.bucket;
    this.prefix = opts.prefix === '' || opts.prefix.endsWith('/') ? opts.prefix : `${opts.prefix}/`;
    this.location = `s3://${opts.bucket}/${this.prefix}${opts.endpoint ? ` at ${opts.endpoint}` : ` (${opts.region})`}`;
    this.scratchDir = resolve(opts.scratchDir);
    this.partSize = opts.partSize ?? DEFAULT_PART; // app.ts keeps it at S3's 5 MB minimum or more; tests go lower
    this.infoCache = new LRUCache<string, BlobInfo>({ max: Math.max(1, opts.maxStats ?? 10_000) });
    this.client = new S3Client({
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.credentials,
      maxAttempts: 3,
      // checksums only where S3 requires them: S3-compatible servers differ in which extra ones they accept
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
    });
    this.sign = createPresigner(this.client, opts);
    const self = this;
    this.home = {
      client: this.client,
      bucket: this.bucket,
      location: this.location,
      partSize: this.partSize,
      objectKey: (key) => this.objectKey(key),
      openCommitted: (key, start) => self.openFrom(key, start),
      committed: (key, info) => this.infoCache.set(key, info),
    };
  }

  /** The object key of a blob key; BAD_REQUEST for anything that is not a plain relative key of safe segments. */
  private objectKey(key: string): string {
    const segments = key.split('/');
    if (key.length > 512 || segments.some((s) => !SEGMENT.test(s))) throw new NuproxyError('BAD_REQUEST', 'invalid cache key', { key: key.slice(0, 120) });
    return this.prefix + key;
  }

  private fail(op: string, err: unknown): NuproxyError {
    return storeFailure(this.location, op, err);
  }

  /**
   * Checks that the bucket can be written (a probe object put and deleted), then sweeps what a killed writer of
   * this host left: multipart uploads, staging objects, spool files (and anyone's older than a day).
   */
  async init(opts: { sweep?: boolean } = {}): Promise<{ swept: number }> {
    await mkdir(this.scratchDir, { recursive: true });
    const probe = `${this.prefix}.probe-${HOST}`;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: Buffer.alloc(0), ContentLength: 0 }));
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe }));
    } catch (err) {
      const why = this.fail('the start-up write check', err).message;
      throw new NuproxyError('CONFIG_INVALID', `storage.s3: the bucket cannot be written: ${why}`, { store: this.location });
    }
    if (opts.sweep === false) return { swept: 0 };
    return { swept: await sweepLeftovers(this.client, this.bucket, this.prefix + STAGING, HOST, this.scratchDir, (op, err) => this.fail(op, err)) };
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    const cached = this.infoCache.get(key);
    if (cached) return cached;
    const info = await this.head(key);
    if (info) this.infoCache.set(key, info);
    return info;
  }

  /** The record of a key from the bucket itself (no cache). */
  private async head(key: string): Promise<BlobInfo | undefined> {
    const Key = this.objectKey(key);
    let r;
    try {
      r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.fail('stat', err);
    }
    const rec = parseRecord(r.ContentLength, r.Metadata);
    return rec && { ...rec, mtimeMs: r.LastModified?.getTime() ?? Date.now() };
  }

  /** Bytes start..endInclusive of the object at `key` (checked for length), or undefined when it is gone. */
  private async get(key: string, start: number, endInclusive: number, signal?: AbortSignal): Promise<Readable | undefined> {
    const length = endInclusive - start + 1;
    if (length <= 0) return exactly([], 0);
    let r;
    try {
      r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: `bytes=${start}-${endInclusive}` }), signal ? { abortSignal: signal } : {});
    } catch (err) {
      if (isNotFound(err)) {
        this.infoCache.delete(key); // removed behind our back
        return undefined;
      }
      throw this.fail('read', err);
    }
    if (!r.Body) throw this.fail('read', new Error('no body'));
    return exactly(r.Body as AsyncIterable<Uint8Array>, length);
  }

  private async openFrom(key: string, start: number): Promise<Readable | undefined> {
    const info = await this.stat(key);
    return info && this.get(key, start, info.size - 1);
  }

  async open(key: string, range?: { start: number; endInclusive: number }): Promise<Readable | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const body = await this.get(key, range ? range.start : 0, range ? Math.min(range.endInclusive, info.size - 1) : info.size - 1);
    if (body) this.reads.add(key);
    return body;
  }

  async read(key: string): Promise<Buffer | undefined> {
    const Key = this.objectKey(key);
    let r;
    try {
      r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.fail('read', err);
    }
    const chunks: Buffer[] = [];
    try {
      for await (const c of exactly(r.Body as AsyncIterable<Uint8Array>, r.ContentLength ?? -1)) chunks.push(c as Buffer);
    } catch (err) {
      throw this.fail('read', err);
    }
    this.reads.add(key);
    return Buffer.concat(chunks);
  }

  async reader(key: string): Promise<ByteReader | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    return {
      size: info.size,
      read: async (position, length) => {
        const end = Math.min(position + length, info.size) - 1;
        if (end < position) return Buffer.alloc(0);
        const body = await this.get(key, position, end);
        if (!body) throw this.fail('read', new Error('the blob is gone'));
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        return Buffer.concat(chunks);
      },
      close: async () => undefined,
    };
  }

  send(key: string, _info: BlobInfo, sink: ByteSink, start: number, endInclusive: number, progress?: SendProgress): void {
    this.reads.add(key);
    if (endInclusive < start) {
      sink.end();
      return;
    }
    sendBody((signal) => this.get(key, start, endInclusive, signal), sink, progress);
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.objectKey(prefix) + '/';
    const names: string[] = [];
    try {
      for await (const o of listObjects(this.client, this.bucket, base, '/')) {
        const name = o.Key?.slice(base.length).replace(/\/$/, '');
        if (name && SEGMENT.test(name)) names.push(name); // what the bucket says is checked like a key
      }
    } catch (err) {
      throw this.fail('list', err);
    }
    return names;
  }

  createWriter(key: string): Promise<BlobWriter> {
    this.objectKey(key); // an invalid key throws here, before anything is created
    const id = `${HOST}-${randomBytes(8).toString('hex')}`;
    const spool = join(this.scratchDir, `${id}.part`);
    const staging = `${this.prefix}${STAGING}${id}.part`;
    return new Promise<BlobWriter>((resolve, reject) =>
      openCb(spool, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o600, (err, fd) => (err ? reject(err) : resolve(new S3BlobWriter(key, spool, staging, fd, this.home)))),
    );
  }

  put(key: string, bytes: Uint8Array, opts: { upstream?: string; check?: CommitCheck } = {}): Promise<BlobInfo> {
    return putVia(this, key, bytes, opts);
  }

  import(key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo> {
    return importVia(this, key, body, check);
  }

  /** The SHA-512 of a stored blob without one recorded (put there by something else). */
  async hashOf(key: string): Promise<string | undefined> {
    const bytes = await this.read(key).catch(() => undefined);
    return bytes && createHash('sha512').update(bytes).digest('base64');
  }

  async delete(key: string): Promise<boolean> {
    const Key = this.objectKey(key);
    this.infoCache.delete(key);
    const existed = (await this.head(key)) !== undefined;
    if (!existed) return false;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      throw this.fail('delete', err);
    }
    this.infoCache.delete(key); // a stat that ran meanwhile
    return true;
  }

  /**
   * A presigned GET of a committed blob (redirect mode), valid `ttlSeconds`; undefined when absent. Only what has
   * a record is signed for: an object is at its key only once its checks passed (staging keys are never signed).
   */
  async presign(key: string, ttlSeconds: number): Promise<string | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const url = await this.sign(this.objectKey(key), ttlSeconds);
    this.reads.add(key); // served, if by the bucket: eviction must see it in use
    return url;
  }

  noteRead(key: string): void {
    this.reads.add(key);
  }

  takeReads(): string[] {
    return this.reads.take();
  }

  /** Hands each committed spool file to `keep` before it is deleted (the local tier, local-tier-blob-store.ts). */
  keepSpools(keep: NonNullable<S3WriterHome['keepSpool']>): void {
    this.home.keepSpool = keep;
  }

  /** Closes the client's connections (tests; a process that ends needs nothing). */
  destroy(): void {
    this.client.destroy();
  }
}
