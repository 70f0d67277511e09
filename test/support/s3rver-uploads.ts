// ListMultipartUploads and AbortMultipartUpload for s3rver 3.7.1, which answers NotImplemented to the first and
// MethodNotAllowed to the second. Test server only (see the top of s3.ts): built on s3rver's own multipart state
// on disk, `<dir>/<bucket>/._S3rver_uploads/<uploadId>/` holding `key`, `metadata` and one file per part
// (`1`, `1.md5`, …), so the listing shows what initiate and upload-part really left there.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface Store {
  getResourcePath(bucket: string, key: string | undefined, kind: string): string;
  putPart(bucket: string, uploadId: string, partNumber: number | string, content: NodeJS.ReadableStream): Promise<unknown>;
  putObjectMultipart(bucket: string, uploadId: string, parts: unknown): Promise<unknown>;
}
interface Ctx {
  params: { bucket: string; key?: string; queryMethod?: string };
  query: Record<string, string | string[] | undefined>;
  app: { store: Store };
  status: number;
  body: unknown;
}
type Next = () => Promise<unknown>;
interface Layer {
  path: string;
  methods: string[];
}
interface Router {
  stack: Layer[];
  get(path: string, fn: (ctx: Ctx, next: Next) => unknown): Router;
  delete(path: string, fn: (ctx: Ctx, next: Next) => unknown): Router;
  patchedUploads?: boolean;
}
type S3ErrorCtor = new (code: string, message: string, detail?: Record<string, string>) => Error;

const requireCjs = createRequire(import.meta.url);
const S3Error = requireCjs('s3rver/lib/models/error.js') as S3ErrorCtor;
const bucketCtrl = requireCjs('s3rver/lib/controllers/bucket.js') as { bucketExists(ctx: Ctx): Promise<void> };
const OWNER = { ID: '123456789000', DisplayName: 'S3rver' }; // s3rver's DUMMY_ACCOUNT
/** s3rver's upload ids are 32 hex digits; anything else names no upload (and never a path). */
const UPLOAD_ID = /^[0-9a-f]{32}$/;

const uploadsDir = (store: Store, bucket: string): string => store.getResourcePath(bucket, undefined, 'uploads');
const noSuchUpload = (id: string): Error => new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: id });

/** The upload's key, or undefined when there is no such upload (never initiated, aborted or completed). */
async function uploadKey(store: Store, bucket: string, id: string): Promise<string | undefined> {
  if (!UPLOAD_ID.test(id)) return undefined;
  return readFile(join(uploadsDir(store, bucket), id, 'key'), 'utf8').catch(() => undefined);
}

interface Upload {
  key: string;
  id: string;
  initiated: Date;
}

/** Every upload of the bucket, by key then upload id (S3 orders one key's uploads by initiation time). */
async function allUploads(store: Store, bucket: string): Promise<Upload[]> {
  const root = uploadsDir(store, bucket);
  const ids = await readdir(root).catch(() => [] as string[]);
  const found = await Promise.all(
    ids.map(async (id): Promise<Upload | undefined> => {
      const keyFile = join(root, id, 'key');
      // one being initiated (no key file yet) or aborted meanwhile is not listed
      const [key, st] = await Promise.all([readFile(keyFile, 'utf8').catch(() => undefined), stat(keyFile).catch(() => undefined)]);
      return key !== undefined && st ? { key, id, initiated: st.mtime } : undefined;
    }),
  );
  return found.filter((u): u is Upload => !!u).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const one = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));

/** GET /bucket?uploads: prefix, key-marker, upload-id-marker, max-uploads, encoding-type=url (no delimiter). */
async function listUploads(ctx: Ctx): Promise<void> {
  await bucketCtrl.bucketExists(ctx);
  const q = ctx.query;
  if (one(q.delimiter)) throw new S3Error('NotImplemented', 'ListMultipartUploads with a delimiter is not implemented by this test server');
  const rawMax = one(q['max-uploads']);
  const max = rawMax === '' ? 1000 : Number(rawMax);
  if (!/^\d{1,9}$/.test(rawMax || '0') || !Number.isSafeInteger(max)) throw new S3Error('InvalidArgument', 'max-uploads must be a non-negative integer', { ArgumentName: 'max-uploads', ArgumentValue: rawMax });
  const limit = Math.min(max, 1000);
  const prefix = one(q.prefix);
  const keyMarker = one(q['key-marker']);
  // S3 ignores upload-id-marker without key-marker
  const idMarker = keyMarker ? one(q['upload-id-marker']) : '';
  const after = (u: Upload): boolean => !keyMarker || u.key > keyMarker || (!!idMarker && u.key === keyMarker && u.id > idMarker);
  const matching = (await allUploads(ctx.app.store, ctx.params.bucket)).filter((u) => u.key.startsWith(prefix) && after(u));
  const page = matching.slice(0, limit);
  const last = page[page.length - 1];
  const url = one(q['encoding-type']) === 'url';
  const enc = (s: string): string => (url ? s.split('/').map(encodeURIComponent).join('/') : s);
  ctx.body = {
    ListMultipartUploadsResult: {
      '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      Bucket: ctx.params.bucket,
      KeyMarker: enc(keyMarker),
      UploadIdMarker: idMarker,
      NextKeyMarker: last ? enc(last.key) : '',
      NextUploadIdMarker: last ? last.id : '',
      Prefix: enc(prefix),
      ...(url ? { EncodingType: 'url' } : {}),
      MaxUploads: limit,
      IsTruncated: matching.length > page.length,
      Upload: page.map((u) => ({ Key: enc(u.key), UploadId: u.id, Initiator: OWNER, Owner: OWNER, StorageClass: 'STANDARD', Initiated: u.initiated.toISOString() })),
    },
  };
}

/** DELETE /bucket/key?uploadId=…: 204, the upload and its part files gone; NoSuchUpload (404) for an unknown one. */
async function abortUpload(ctx: Ctx): Promise<void> {
  const id = one(ctx.query.uploadId);
  if ((await uploadKey(ctx.app.store, ctx.params.bucket, id)) !== ctx.params.key) throw noSuchUpload(id);
  await rm(join(uploadsDir(ctx.app.store, ctx.params.bucket), id), { recursive: true, force: true });
  ctx.status = 204;
}

/** Puts `mine` (just pushed) right before the route layer `path`/`method` that would otherwise answer first. */
function moveBefore(router: Router, path: string, method: string): void {
  const mine = router.stack.pop()!;
  const at = router.stack.findIndex((l) => l.path === path && l.methods.includes(method));
  if (at < 0) throw new Error(`s3rver's router has no ${method} ${path} route to patch`);
  router.stack.splice(at, 0, mine);
}

/**
 * Adds the two operations to s3rver's router (ahead of its own routes, after its authentication and query
 * checks), and makes UploadPart and CompleteMultipartUpload on an upload that is gone answer NoSuchUpload (404)
 * as S3 does, where s3rver would recreate the upload's folder or fail with an InternalError.
 */
export function addMultipartListingAndAbort(): void {
  const router = requireCjs('s3rver/lib/routes.js') as Router;
  if (router.patchedUploads) return;
  router.patchedUploads = true;
  router.get('/:bucket', (ctx, next) => (ctx.params.queryMethod === 'uploads' ? listUploads(ctx) : next()));
  moveBefore(router, '/:bucket', 'GET');
  router.delete('/:bucket/:key+', (ctx, next) => (ctx.params.queryMethod === 'uploadId' ? abortUpload(ctx) : next()));
  moveBefore(router, '/:bucket/:key+', 'DELETE');

  const proto = (requireCjs('s3rver/lib/stores/filesystem.js') as { prototype: Store }).prototype;
  const putPart = proto.putPart;
  proto.putPart = async function (this: Store, bucket, uploadId, partNumber, content) {
    if ((await uploadKey(this, bucket, uploadId)) === undefined) {
      // read the body first: a client still sending would see a reset instead of the answer
      await new Promise<void>((done) => {
        content.on('end', done).on('error', () => done());
        content.resume();
      });
      throw noSuchUpload(uploadId);
    }
    return putPart.call(this, bucket, uploadId, partNumber, content);
  };
  const complete = proto.putObjectMultipart;
  proto.putObjectMultipart = async function (this: Store, bucket, uploadId, parts) {
    if ((await uploadKey(this, bucket, uploadId)) === undefined) throw noSuchUpload(uploadId);
    return complete.call(this, bucket, uploadId, parts);
  };
}
