import { close, read, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { checkAnnounced } from './blob-commit.js';
import type { BlobInfo, BlobWriter, CommitCheck, FollowLimits } from './blob-store.js';
import { fdByteReader } from './fs-byte-reader.js';
import { fileReader, settledReader } from './follow-reader.js';
import { recordMetadata, storeFailure } from './s3-io.js';

/** How many trailing bytes a writer keeps in memory for the content check (a zip's end record area). */
const TAIL = 22 + 65535;
/**
 * Parts on the wire at once in this process, all uploads together (each holds one part in memory while it
 * goes: 8 × 8 MB), first come first served; the bytes wait in the spool files meanwhile.
 */
const PARTS_IN_FLIGHT = 8;
const slots = { inFlight: 0, waiting: [] as (() => void)[] };

async function takeSlot(): Promise<void> {
  if (slots.inFlight >= PARTS_IN_FLIGHT) await new Promise<void>((r) => slots.waiting.push(r));
  else slots.inFlight++;
}

function giveSlot(): void {
  const next = slots.waiting.shift();
  if (next) next(); // the slot passes on as it is
  else slots.inFlight--;
}

/** What the writer needs of its store. */
export interface S3WriterHome {
  readonly client: S3Client;
  readonly bucket: string;
  readonly location: string;
  /** Bytes per part; a blob smaller than one part goes up as one PutObject after the checks. */
  readonly partSize: number;
  objectKey(key: string): string;
  /** The committed blob's bytes from `start` (a reader that follows a writer after its commit). */
  openCommitted(key: string, start: number): Promise<Readable | undefined>;
  committed(key: string, info: BlobInfo): void;
  /**
   * Called once the blob is committed to the bucket, before its spool file is deleted: the local tier may move the
   * spool (checked bytes, exactly the blob's) into its folder, so the instance that fetched it never reads it back.
   * True when it took the file. Its failure never fails the commit.
   */
  keepSpool?: (key: string, info: BlobInfo, spoolPath: string) => Promise<boolean>;
}

interface Part {
  PartNumber: number;
  ETag: string;
}

/**
 * One blob being written: the bytes go to a local spool file (followers and the content checks read it, as on
 * the disk) and, part by part while they arrive, into a multipart upload at a staging key of this host
 * (`<prefix>.uploads/<host>-<hex>.part`, a name no blob key can have). Only once every check has passed is the
 * upload completed and copied to the blob's key with its record as metadata (the record holds the SHA-512,
 * known only at the end, and S3 takes metadata only when an object is created): nothing partial is ever visible
 * at a key. A failed or aborted writer aborts the upload; what a killed process leaves is swept at start-up.
 */
export class S3BlobWriter implements BlobWriter {
  readonly shareRef = undefined; // another process cannot follow a local spool: workers go through the lock
  written = 0;
  private closed = false;
  private stopped = false;
  private tailChunks: Buffer[] = [];
  private tailBytes = 0;
  private uploadId: Promise<string> | undefined;
  private nextPartStart = 0;
  private readonly parts: Promise<Part>[] = [];
  private readonly cancel = new AbortController();
  private committedInfo: BlobInfo | undefined;
  private stagedObject = false;

  constructor(
    readonly key: string,
    private readonly spoolPath: string,
    private readonly stagingKey: string,
    private readonly fd: number,
    private readonly home: S3WriterHome,
  ) {}

  write(chunk: Uint8Array, owned = false): void {
    if (this.closed) throw new Error('blob writer already closed');
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off, this.written + off);
    this.written += chunk.length;
    this.tailChunks.push(owned ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length) : Buffer.from(chunk));
    this.tailBytes += chunk.length;
    while (this.tailChunks.length > 1 && this.tailBytes - this.tailChunks[0]!.length >= TAIL) this.tailBytes -= this.tailChunks.shift()!.length;
    while (this.written - this.nextPartStart >= this.home.partSize) {
      this.startPart(this.nextPartStart, this.home.partSize);
      this.nextPartStart += this.home.partSize;
    }
  }

  follow(start: number, limits: FollowLimits): Readable {
    if (this.committedInfo) return settledReader(Promise.resolve(), () => this.home.openCommitted(this.key, start));
    return fileReader(this.spoolPath, start, limits); // throws once the spool is gone (aborted, failed)
  }

  private tail(): Buffer {
    const all = Buffer.concat(this.tailChunks);
    return all.length > TAIL ? all.subarray(all.length - TAIL) : all;
  }

  private begin(): Promise<string> {
    this.uploadId ??= this.home.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.home.bucket, Key: this.stagingKey, ContentType: 'application/octet-stream' }), { abortSignal: this.cancel.signal })
      .then((r) => {
        if (!r.UploadId) throw new Error('no UploadId in the answer');
        return r.UploadId;
      });
    return this.uploadId;
  }

  /** Uploads bytes [start, start+length) of the spool as the next part (read only when its turn comes). */
  private startPart(start: number, length: number): void {
    const PartNumber = this.parts.length + 1;
    const part = (async (): Promise<Part> => {
      const UploadId = await this.begin();
      await takeSlot();
      try {
        if (this.stopped) throw new Error('writer stopped');
        const Body = await this.readSpool(start, length);
        const r = await this.home.client.send(
          new UploadPartCommand({ Bucket: this.home.bucket, Key: this.stagingKey, UploadId, PartNumber, Body, ContentLength: Body.length }),
          { abortSignal: this.cancel.signal },
        );
        if (!r.ETag) throw new Error('no ETag in the answer');
        return { PartNumber, ETag: r.ETag };
      } finally {
        giveSlot();
      }
    })();
    part.catch(() => undefined); // seen at commit (or dropped with the writer)
    this.parts.push(part);
  }

  private readSpool(position: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const buf = Buffer.allocUnsafe(length);
      read(this.fd, buf, 0, length, position, (err, n) => (err ? reject(err) : n !== length ? reject(new Error('spool file shorter than written')) : resolve(buf)));
    });
  }

  async commit(sha512: string, check: CommitCheck = {}): Promise<BlobInfo> {
    const upstream = check.upstream;
    const { client, bucket } = this.home;
    const target = this.home.objectKey(this.key);
    try {
      if (this.closed) throw new Error('blob writer already closed');
      checkAnnounced(this.written, sha512, check);
      if (check.verify) await check.verify(fdByteReader(this.fd, this.written, false), this.tail());
      check.onVerified?.();
      const Metadata = recordMetadata(this.written, sha512, upstream);
      try {
        if (this.parts.length === 0) {
          // smaller than one part: one PutObject of the checked bytes
          const Body = await this.readSpool(0, this.written);
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: target, Body, ContentLength: Body.length, ContentType: 'application/octet-stream', Metadata }));
        } else {
          if (this.written > this.nextPartStart) this.startPart(this.nextPartStart, this.written - this.nextPartStart);
          const Parts = await Promise.all(this.parts);
          const UploadId = await this.begin();
          await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: this.stagingKey, UploadId, MultipartUpload: { Parts } }));
          this.stagedObject = true;
          await client.send(
            new CopyObjectCommand({ Bucket: bucket, Key: target, CopySource: copySource(bucket, this.stagingKey), MetadataDirective: 'REPLACE', Metadata, ContentType: 'application/octet-stream' }),
          );
          await this.dropStaged();
        }
      } catch (err) {
        throw storeFailure(this.home.location, 'storing a blob', err);
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
    const info: BlobInfo = { size: this.written, sha512, mtimeMs: Date.now(), ...(upstream ? { upstream } : {}) };
    this.committedInfo = info;
    this.tailChunks = [];
    this.close();
    const kept = this.home.keepSpool ? await this.home.keepSpool(this.key, info, this.spoolPath).catch(() => false) : false;
    if (!kept) await rm(this.spoolPath, { force: true }); // readers opened on it keep their descriptors
    this.home.committed(this.key, info);
    return info;
  }

  async abort(): Promise<void> {
    if (this.committedInfo) return; // committed: nothing of it is temporary any more
    this.stopped = true;
    this.cancel.abort();
    await Promise.allSettled(this.parts); // no read of the spool is left before its descriptor closes
    this.close();
    await rm(this.spoolPath, { force: true });
    if (this.uploadId) {
      const UploadId = await this.uploadId.catch(() => undefined);
      if (UploadId) {
        // any failure is left to the start-up sweep (and a bucket's AbortIncompleteMultipartUpload rule)
        await this.home.client.send(new AbortMultipartUploadCommand({ Bucket: this.home.bucket, Key: this.stagingKey, UploadId })).catch(() => undefined);
      }
    }
    await this.dropStaged();
  }

  /** Deletes the completed staging object (errors left to the start-up sweep). */
  private async dropStaged(): Promise<void> {
    if (!this.stagedObject) return;
    this.stagedObject = false;
    await this.home.client.send(new DeleteObjectCommand({ Bucket: this.home.bucket, Key: this.stagingKey })).catch(() => undefined);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd, () => undefined);
  }
}

/** CopySource is `bucket/key`, URL-encoded (the key's "/" kept). */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
