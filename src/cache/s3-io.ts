/**
 * What the S3 blob store and its writer share: how an S3 failure becomes a NuproxyError that names the store
 * (never a key or a signature: only the error's name and HTTP status, clipped), and the checks on what a
 * bucket sends back (an object store is outside nuproxy's trust like any upstream).
 */
import { Readable } from 'node:stream';
import { NuproxyError } from '../errors.js';

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

const status = (err: unknown): number | undefined => (err as SdkError | undefined)?.$metadata?.httpStatusCode;
const nameOf = (err: unknown): string => String((err as SdkError | undefined)?.name ?? (err as SdkError | undefined)?.code ?? 'Error');

export const isNotFound = (err: unknown): boolean => ['NotFound', 'NoSuchKey'].includes(nameOf(err)) || status(err) === 404;

/** The server has no such operation (S3-compatible stores differ: s3rver alone has no ListMultipartUploads). */
export const isNotImplemented = (err: unknown): boolean => ['NotImplemented', 'MethodNotAllowed'].includes(nameOf(err)) || status(err) === 501 || status(err) === 405;

/** A failure of the store as the layers above see it: the store could not answer (502/504 at the edge). */
export function storeFailure(location: string, op: string, err: unknown): NuproxyError {
  if (err instanceof NuproxyError) return err;
  const name = nameOf(err).replace(/[^A-Za-z0-9._-]/g, '').slice(0, 60);
  const st = status(err);
  const timeout = /timeout/i.test(name) || ['ETIMEDOUT', 'TimeoutError'].includes(name);
  return new NuproxyError(timeout ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE', `blob store ${location}: ${op} failed: ${name}${st ? ` (HTTP ${st})` : ''}`, { store: location });
}

/**
 * The body of a GET, checked to hold exactly `length` bytes: a short or long answer errors the stream (a
 * client sees a truncated body, never a wrong one).
 */
export function exactly(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, length: number): Readable {
  return Readable.from(
    (async function* () {
      let got = 0;
      for await (const chunk of body) {
        got += chunk.length;
        if (got > length) throw new Error(`the blob store sent more than the ${length} bytes asked for`);
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      }
      if (got !== length) throw new Error(`the blob store sent ${got} of ${length} bytes`);
    })(),
    { objectMode: false },
  );
}

const SHA512_B64 = /^[A-Za-z0-9+/]{86}==$/;
const UPSTREAM_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The record of a blob as object metadata (S3 lower-cases the names; values are plain ASCII). */
export function recordMetadata(size: number, sha512: string, upstream: string | undefined): Record<string, string> {
  return { size: String(size), sha512, ...(upstream ? { upstream } : {}) };
}

/** The record read back, each field checked; undefined when the object is not a whole blob of ours. */
export function parseRecord(length: number | undefined, meta: Record<string, string> | undefined): { size: number; sha512?: string; upstream?: string } | undefined {
  if (length === undefined || !Number.isSafeInteger(length) || length < 0) return undefined;
  const m = meta ?? {};
  // a recorded size other than the object's: not the blob that was committed
  if (m.size !== undefined && m.size !== String(length)) return undefined;
  return {
    size: length,
    ...(m.sha512 && SHA512_B64.test(m.sha512) ? { sha512: m.sha512 } : {}),
    ...(m.upstream && UPSTREAM_NAME.test(m.upstream) ? { upstream: m.upstream } : {}),
  };
}
