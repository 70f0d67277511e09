/**
 * What every backend's writes share, so the rules are written once: the checks a writer runs before its
 * commit, and put/import expressed through a backend's own writer (the disk's and the bucket's alike).
 */
import { createHash } from 'node:crypto';
import { NuproxyError } from '../errors.js';
import type { BlobInfo, BlobWriter, CommitCheck } from './blob-store.js';

/** The announced length and hash against what was written; INTEGRITY when either differs. */
export function checkAnnounced(written: number, sha512: string, check: CommitCheck): void {
  if (check.expectedLength !== undefined && check.expectedLength !== written) {
    throw new NuproxyError('INTEGRITY', `upstream body length ${written} differs from Content-Length ${check.expectedLength}`);
  }
  if (check.expectedSha512 !== undefined && check.expectedSha512 !== sha512) {
    throw new NuproxyError('INTEGRITY', 'upstream body does not match the SHA-512 the upstream announced');
  }
}

/** What put and import need of a backend. */
export interface WritableBlobs {
  stat(key: string): Promise<BlobInfo | undefined>;
  createWriter(key: string): Promise<BlobWriter>;
  /** The SHA-512 of a stored blob that has none recorded. */
  hashOf(key: string): Promise<string | undefined>;
}

/** BlobStore.put through the backend's writer (atomic like every write). */
export async function putVia(blobs: WritableBlobs, key: string, bytes: Uint8Array, opts: { upstream?: string; check?: CommitCheck } = {}): Promise<BlobInfo> {
  const writer = await blobs.createWriter(key);
  writer.write(bytes);
  return writer.commit(createHash('sha512').update(bytes).digest('base64'), { ...opts.check, ...(opts.upstream ? { upstream: opts.upstream } : {}) });
}

/**
 * BlobStore.import through the backend's writer: the same checks and atomicity as a download; CONFLICT when
 * other bytes are at the key unless `replace`; the same bytes again are no change.
 */
export async function importVia(blobs: WritableBlobs, key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo> {
  const { replace, ...commitCheck } = check;
  const existing = await blobs.stat(key);
  const writer = await blobs.createWriter(key);
  const hash = createHash('sha512');
  let sha512: string;
  try {
    for await (const chunk of body) {
      writer.write(chunk);
      hash.update(chunk);
    }
    sha512 = hash.digest('base64');
    if (existing && !replace) {
      if (check.expectedLength !== undefined && check.expectedLength !== writer.written) throw new NuproxyError('INTEGRITY', `body length ${writer.written} differs from the expected ${check.expectedLength}`);
      if (check.expectedSha512 !== undefined && check.expectedSha512 !== sha512) throw new NuproxyError('INTEGRITY', 'body does not match the expected SHA-512');
      if ((existing.sha512 ?? (await blobs.hashOf(key))) !== sha512) throw new NuproxyError('CONFLICT', 'another blob is already stored at this key', { key });
      await writer.abort();
      return existing;
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.commit(sha512, commitCheck);
}
