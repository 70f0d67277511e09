import { createHash } from 'node:crypto';
import type { BlobInfo, BlobStore } from '../cache/blob-store.js';
import type { RedisBlobTier } from '../cache/redis-blob-tier.js';
import { SharedDownload } from '../cache/shared-download.js';
import { NuproxyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PackageFile, PackageSource } from './package-source.js';
import { verifyNuspecOf, verifyPackage, type ContentCheck } from './verify.js';

/**
 * A miss for a package up to this size (most packages; by its Content-Length, or as long as no more has
 * arrived) is answered only once the whole file has passed its checks: a package that fails them (wrong
 * identity, cut short, wrong hash) is a 502 with a JSON body, not a cut connection. Larger ones stream to their
 * clients as they arrive, and a failed check cuts the connection (the last byte is never sent).
 */
const ANSWER_WHEN_VERIFIED = 2 * 1024 * 1024;

export interface PackageWanted {
  key: string;
  lowerId: string;
  lowerVersion: string;
  file: PackageFile;
}

/**
 * Opens the upstream body and starts storing it. Resolves once clients may be answered (see
 * ANSWER_WHEN_VERIFIED); a download that fails before that rejects, so waiting clients get an error status.
 * `created` sees the download first (the clients waiting for it hold it from then on); `stored` gets the
 * package's own nuspec when its identity check read it.
 */
export async function startDownload(
  blobs: BlobStore,
  log: Logger,
  source: PackageSource,
  p: PackageWanted,
  created: (dl: SharedDownload) => void,
  stored: (info: BlobInfo, nuspec: Buffer | undefined) => void,
): Promise<SharedDownload | undefined> {
  const { key, lowerId, lowerVersion, file } = p;
  const res = await source.openPackage(lowerId, lowerVersion, file, 'GET');
  if (!res || res.kind === 'not-found') return undefined;
  let writer;
  try {
    writer = await blobs.createWriter(key);
  } catch (err) {
    res.body.destroy();
    throw err;
  }
  let nuspec: Buffer | undefined; // the package's own, found by its identity check
  const expected = { lowerId, lowerVersion, upstream: source.name };
  const abandonAfterMs = res.abandonAfterMs;
  const dl = new SharedDownload(
    writer,
    res.body,
    res.length,
    {
      ...(res.length !== undefined ? { expectedLength: res.length } : {}),
      ...(res.sha512 && file === 'nupkg' ? { expectedSha512: res.sha512 } : {}),
      // the size limit was enforced while the body streamed (limits.nuspecBytes)
      verify: file === 'nupkg' ? verifyPackage(expected, (b) => (nuspec = b)) : verifyNuspecOf(expected, Infinity),
      upstream: source.name,
    },
    {
      abandonAfterMs,
      abandonError: () => new NuproxyError('UPSTREAM_UNREACHABLE', `download from upstream ${source.name} cancelled: no client read it for ${abandonAfterMs / 1000} s (limits.abandonAfter)`, { upstream: source.name }),
    },
  );
  dl.done.then(
    (info) => {
      log.info({ key, upstream: source.name, bytes: info.size }, 'package stored');
      stored(info, nuspec);
    },
    (err: Error) => log.warn({ key, upstream: source.name, err: err.message }, 'package download failed; nothing stored'),
  );
  created(dl);
  try {
    await dl.ready(ANSWER_WHEN_VERIFIED);
  } catch (err) {
    throw naming(err, source.name);
  }
  return dl;
}

/** A HEAD of a package nobody has stored: asked upstream, nothing stored. */
export async function headUpstream(source: PackageSource, p: PackageWanted): Promise<{ length: number | undefined } | undefined> {
  const res = await source.openPackage(p.lowerId, p.lowerVersion, p.file, 'HEAD');
  if (!res || res.kind === 'not-found') return undefined;
  res.body.destroy(new Error('HEAD has no body'));
  return { length: res.length };
}

/**
 * A package from the shared tier, written to this instance's store first: hash, zip and identity checked like
 * a download (another instance, or an older version of nuproxy, may have put anything there).
 */
export async function copyFromTier(tier: RedisBlobTier, blobs: BlobStore, log: Logger, p: PackageWanted): Promise<BlobInfo | undefined> {
  const blob = await tier.get(p.key);
  if (!blob) return undefined;
  try {
    const writer = await blobs.createWriter(p.key);
    writer.write(blob.bytes);
    const hash = createHash('sha512').update(blob.bytes).digest('base64');
    const verify = contentCheck(p.file, { lowerId: p.lowerId, lowerVersion: p.lowerVersion, ...(blob.upstream ? { upstream: blob.upstream } : {}) });
    return await writer.commit(hash, { expectedSha512: blob.sha512, verify, ...(blob.upstream ? { upstream: blob.upstream } : {}) });
  } catch (err) {
    log.warn({ key: p.key, err: (err as Error).message }, 'package in the shared tier failed its checks; fetching it again');
    return undefined;
  }
}

/** The content check of a package file asked for as `expected` (the same for downloads and the shared tier). */
function contentCheck(file: PackageFile, expected: { lowerId: string; lowerVersion: string; upstream?: string }): ContentCheck {
  return file === 'nupkg' ? verifyPackage(expected) : verifyNuspecOf(expected);
}

/** A download's failure as a client sees it: naming the upstream that supplied the bytes. */
function naming(err: unknown, upstream: string): unknown {
  if (!(err instanceof NuproxyError) || typeof err.details.upstream === 'string') return err;
  return new NuproxyError(err.code, err.message, { ...err.details, upstream }, err);
}
