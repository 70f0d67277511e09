/** The S3 store's listing, start-up sweep and send loop (kept apart so the store reads as its interface). */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { NuproxyError } from '../errors.js';
import type { ByteSink, SendProgress } from './blob-store.js';
import { isNotImplemented } from './s3-io.js';

/** What is older than this is a leftover whoever left it (a host that never came back). */
const STALE_MS = 24 * 3_600_000;

/** Every object (and, with a delimiter, every common prefix, as `dir`) under `Prefix`, page by page. */
export async function* listObjects(client: S3Client, Bucket: string, Prefix: string, Delimiter?: string): AsyncGenerator<{ Key?: string; LastModified?: Date; dir?: boolean }> {
  let ContinuationToken: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix, Delimiter, ContinuationToken }));
    for (const o of page.Contents ?? []) yield o;
    for (const p of page.CommonPrefixes ?? []) yield { Key: p.Prefix, dir: true };
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
}

/**
 * Removes what a killed writer of `host` left under the staging prefix (multipart uploads, completed staging
 * objects) and in the spool directory, and anyone's leftovers older than a day. Returns how many.
 */
export async function sweepLeftovers(client: S3Client, Bucket: string, staging: string, host: string, spoolDir: string, fail: (op: string, err: unknown) => NuproxyError): Promise<number> {
  let swept = 0;
  const mine = `${staging}${host}-`;
  const cutoff = Date.now() - STALE_MS;
  try {
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: staging, KeyMarker, UploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !(u.Key.startsWith(mine) || (u.Initiated?.getTime() ?? Infinity) < cutoff)) continue;
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId }));
        swept++;
      }
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (KeyMarker);
  } catch (err) {
    // a store without the operation keeps going (its bucket's lifecycle rule is the only sweep then); any other
    // failure is an error (s3rver in the tests has it: test/support/s3rver-uploads.ts)
    if (!isNotImplemented(err)) throw fail('sweeping multipart uploads', err);
  }
  try {
    for await (const obj of listObjects(client, Bucket, staging)) {
      if (!obj.Key || !(obj.Key.startsWith(mine) || (obj.LastModified?.getTime() ?? Infinity) < cutoff)) continue;
      await client.send(new DeleteObjectCommand({ Bucket, Key: obj.Key }));
      swept++;
    }
  } catch (err) {
    throw fail('sweeping staging objects', err);
  }
  for (const f of await readdir(spoolDir)) {
    const path = join(spoolDir, f);
    const old = await stat(path).then((st) => st.mtimeMs < cutoff, () => false);
    if (f.startsWith(`${host}-`) || old) {
      await rm(path, { force: true, recursive: true });
      swept++;
    }
  }
  return swept;
}

/**
 * Streams a GET's body into a sink whose head is written, with the sink's backpressure, and ends it. A failed
 * read destroys the sink (a truncated body, never a wrong one); a sink that closes early cancels the GET.
 */
export function sendBody(get: (signal: AbortSignal) => Promise<Readable | undefined>, sink: ByteSink, progress?: SendProgress): void {
  const cancel = new AbortController();
  let gone = false;
  const closed = new Promise<void>((r) =>
    sink.once('close', () => {
      if (!sink.writableFinished) {
        gone = true;
        cancel.abort();
      }
      r();
    }),
  );
  void (async () => {
    const body = await get(cancel.signal);
    if (!body) throw new Error('the blob is gone');
    try {
      for await (const chunk of body) {
        if (gone) break;
        const n = (chunk as Buffer).length;
        const more = sink.write(chunk, (err) => {
          if (!err && progress) progress.bytesSent += n;
        });
        if (!more) await Promise.race([new Promise((r) => sink.once('drain', r)), closed]);
      }
    } finally {
      body.destroy();
    }
    if (!gone) sink.end();
  })().catch(() => {
    if (!gone) sink.destroy();
  });
}
