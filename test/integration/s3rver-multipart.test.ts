// The test server's ListMultipartUploads and AbortMultipartUpload (test/support/s3rver-uploads.ts), through the
// AWS SDK as nuproxy calls them: what the SDK parses out of the listing, paging with max-uploads and the markers,
// and an abort that takes the upload and its part files away for good (a later part or complete: NoSuchUpload).
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type TestS3 } from '../support/s3.js';

describe('test server: ListMultipartUploads and AbortMultipartUpload', () => {
  let s3: TestS3;
  const begin = async (Key: string): Promise<string> => (await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key }))).UploadId!;
  const part = (Key: string, UploadId: string, PartNumber: number, Body: Buffer) =>
    s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key, UploadId, PartNumber, Body, ContentLength: Body.length }));
  const list = (input: { Prefix?: string; KeyMarker?: string; UploadIdMarker?: string; MaxUploads?: number } = {}) => s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, ...input }));
  const errorOf = (p: Promise<unknown>): Promise<{ name?: string; $metadata?: { httpStatusCode?: number } }> =>
    p.then(
      () => ({ name: 'no error' }),
      (e: unknown) => e as { name?: string },
    );

  beforeAll(async () => {
    s3 = await startS3('uploads');
  });
  afterAll(async () => {
    await s3?.close();
  });

  it('lists an initiated upload with the fields the SDK parses, filtered by prefix', async () => {
    const before = Date.now();
    const id = await begin('list/a.part');
    await part('list/a.part', id, 1, Buffer.alloc(1000, 1));
    const other = await begin('elsewhere/b.part');
    const page = await list({ Prefix: 'list/' });
    expect(page.Bucket).toBe(s3.bucket);
    expect(page.IsTruncated).toBe(false);
    expect(page.MaxUploads).toBe(1000);
    expect(page.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([['list/a.part', id]]);
    const u = page.Uploads![0]!;
    expect(u.StorageClass).toBe('STANDARD');
    expect(u.Initiator?.ID).toBe('123456789000');
    expect(u.Owner?.DisplayName).toBe('S3rver');
    expect(u.Initiated).toBeInstanceOf(Date);
    expect(u.Initiated!.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    expect(u.Initiated!.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect((await list()).Uploads?.map((x) => x.UploadId).sort()).toEqual([id, other].sort());
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: 'list/a.part', UploadId: id }));
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: 'elsewhere/b.part', UploadId: other }));
    expect((await list()).Uploads ?? []).toEqual([]);
  });

  it('pages with max-uploads, key-marker and upload-id-marker, every upload once, in key order', async () => {
    const made: [string, string][] = [];
    for (const k of ['page/c', 'page/a', 'page/b', 'page/b', 'page/a']) made.push([k, await begin(k)]);
    const want = [...made].sort(([ka, ia], [kb, ib]) => (ka === kb ? (ia < ib ? -1 : 1) : ka < kb ? -1 : 1));
    const seen: [string, string][] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await list({ Prefix: 'page/', MaxUploads: 2, KeyMarker, UploadIdMarker });
      pages++;
      expect(page.MaxUploads).toBe(2);
      expect(page.Uploads!.length).toBeLessThanOrEqual(2);
      for (const u of page.Uploads ?? []) seen.push([u.Key!, u.UploadId!]);
      if (!page.IsTruncated) break;
      expect(page.NextKeyMarker).toBe(seen[seen.length - 1]![0]);
      expect(page.NextUploadIdMarker).toBe(seen[seen.length - 1]![1]);
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(want);
    // a key-marker alone: the keys after it
    expect((await list({ Prefix: 'page/', KeyMarker: 'page/a' })).Uploads!.map((u) => u.Key)).toEqual(['page/b', 'page/b', 'page/c']);
    // a marker of an upload aborted meanwhile still places the next page (what a sweep that aborts as it pages needs)
    const [k1, i1] = want[1]!;
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: k1, UploadId: i1 }));
    expect((await list({ Prefix: 'page/', KeyMarker: k1, UploadIdMarker: i1 })).Uploads!.map((u) => u.UploadId)).toEqual(want.slice(2).map(([, i]) => i));
    for (const [Key, UploadId] of want.filter(([, i]) => i !== i1)) await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId }));
    expect((await list({ Prefix: 'page/' })).Uploads ?? []).toEqual([]);
  });

  it('abort removes the upload and its part files: a later part or complete is NoSuchUpload, nothing is created', async () => {
    const Key = 'abort/x.part';
    const UploadId = await begin(Key);
    const p1 = await part(Key, UploadId, 1, Buffer.alloc(64 * 1024, 7));
    await part(Key, UploadId, 2, Buffer.alloc(1024, 8));
    const folder = join(s3.uploadsDir, UploadId);
    expect((await readdir(folder)).sort()).toEqual(['1', '1.md5', '2', '2.md5', 'key', 'metadata']);

    // an abort naming another key is not this upload's
    expect((await errorOf(s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: 'abort/y.part', UploadId })))).name).toBe('NoSuchUpload');
    expect(existsSync(folder)).toBe(true);

    const r = await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId }));
    expect(r.$metadata.httpStatusCode).toBe(204);
    expect(existsSync(folder)).toBe(false);
    expect((await list({ Prefix: 'abort/' })).Uploads ?? []).toEqual([]);

    const again = await errorOf(s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId })));
    expect([again.name, again.$metadata?.httpStatusCode]).toEqual(['NoSuchUpload', 404]);
    const late = await errorOf(part(Key, UploadId, 3, Buffer.alloc(256 * 1024, 9)));
    expect([late.name, late.$metadata?.httpStatusCode]).toEqual(['NoSuchUpload', 404]);
    expect(existsSync(folder)).toBe(false); // s3rver alone would have made the folder again
    const done = await errorOf(s3.client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag! }] } })));
    expect([done.name, done.$metadata?.httpStatusCode]).toEqual(['NoSuchUpload', 404]);
    expect((await errorOf(s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key })))).$metadata?.httpStatusCode).toBe(404);
    // an id that is not one of s3rver's never reaches the disk
    expect((await errorOf(s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId: '../../etc' })))).name).toBe('NoSuchUpload');
  });

  it('a completed upload is no longer listed (s3rver removes its folder), and its object is whole', async () => {
    const Key = 'done/z.part';
    const UploadId = await begin(Key);
    const a = await part(Key, UploadId, 1, Buffer.alloc(5000, 1));
    const b = await part(Key, UploadId, 2, Buffer.alloc(3000, 2));
    expect((await list({ Prefix: 'done/' })).Uploads?.length).toBe(1);
    await s3.client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: a.ETag! }, { PartNumber: 2, ETag: b.ETag! }] } }));
    expect((await list({ Prefix: 'done/' })).Uploads ?? []).toEqual([]);
    expect((await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key }))).ContentLength).toBe(8000);
  });

  it('refuses a delimiter it does not implement and a bad max-uploads, instead of a wrong answer', async () => {
    expect((await errorOf(s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Delimiter: '/' })))).name).toBe('NotImplemented');
    expect((await errorOf(s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, MaxUploads: -1 })))).name).toBe('InvalidArgument');
    expect((await errorOf(s3.client.send(new ListMultipartUploadsCommand({ Bucket: 'no-such-bucket' })))).name).toBe('NoSuchBucket');
  });
});
