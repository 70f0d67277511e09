// The proxy's own copies of a pushed package (publish.ts): the copy of the package part it reads the id from
// (`packageCopy`, fed by `teeInto` while the body streams on), and for a token with id scopes the whole body
// spooled first (`spoolPush`), since the id is inside the .nupkg and must be known before the upstream may see it.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { NuproxyError } from '../errors.js';
import { readNuspecIdentity, type NuspecIdentity } from './nuspec.js';

/** Passes chunks on while also writing them into `sink`, waiting for it when it asks to. */
export function teeInto(sink: NodeJS.WritableStream): Transform {
  let open = true;
  sink.on('error', () => (open = false));
  sink.on('close', () => (open = false));
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (!open || sink.write(chunk)) cb(null, chunk);
      else sink.once('drain', () => cb(null, chunk));
    },
    flush(cb) {
      if (open) sink.end();
      cb();
    },
  });
}

/**
 * Where the copy of a pushed package goes: the first multipart part's bytes (what the upstream takes as the
 * package, §5.1), or the raw body when the push is not multipart.
 */
export function packageCopy(contentType: string, path: string): { input: NodeJS.WritableStream & { destroy(): void }; done: Promise<void> } {
  const file = createWriteStream(path);
  const fileDone = new Promise<void>((resolve) => {
    file.on('close', () => resolve());
    file.on('error', () => resolve());
  });
  if (!/^multipart\/form-data/i.test(contentType)) return { input: file, done: fileDone };
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: { 'content-type': contentType }, limits: { files: 1, fields: 10, fieldSize: 64 * 1024 } });
  } catch {
    file.destroy();
    const sink = new PassThrough();
    sink.resume();
    return { input: sink, done: fileDone };
  }
  let taken = false;
  parser.on('file', (_name, stream) => {
    // a cut upload makes busboy destroy the part stream with an error: never let that go unhandled
    stream.on('error', () => file.destroy());
    if (taken) return stream.resume();
    taken = true;
    stream.pipe(file);
  });
  parser.on('error', () => file.destroy());
  parser.on('close', () => {
    if (!taken) file.end();
  });
  return { input: parser, done: fileDone };
}

/** A push body held on disk: the bytes as the client sent them, and the identity of the package inside. */
export interface SpooledPush {
  path: string;
  bytes: number;
  /** Undefined: no readable .nuspec (not a package, or a broken one). */
  identity: NuspecIdentity | undefined;
  /** Removes the spooled body (call it in every outcome). */
  remove(): Promise<void>;
}

/**
 * Reads the whole push body into a temp file under `dir` (at most `max` bytes, else PAYLOAD_TOO_LARGE), with the
 * package part copied beside it for its nuspec. Nothing is left on disk when this throws; the copy is gone
 * when it returns, the body stays until `remove`.
 */
export async function spoolPush(body: Readable, contentType: string, dir: string, max: number): Promise<SpooledPush> {
  const tag = randomBytes(8).toString('hex');
  const path = join(dir, `push-${tag}.body`);
  const copyPath = join(dir, `push-${tag}.nupkg`);
  const remove = async (): Promise<void> => {
    await rm(path, { force: true });
  };
  let bytes = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > max) return cb(new NuproxyError('PAYLOAD_TOO_LARGE', `package is larger than the ${max}-byte limit`));
      cb(null, chunk);
    },
  });
  const copy = packageCopy(contentType, copyPath);
  try {
    await pipeline(body, limiter, teeInto(copy.input), createWriteStream(path));
    await copy.done;
    const identity = await readNuspecIdentity(copyPath);
    return { path, bytes, identity, remove };
  } catch (err) {
    copy.input.destroy();
    await remove();
    throw err;
  } finally {
    await copy.done.catch(() => undefined);
    await rm(copyPath, { force: true });
  }
}
