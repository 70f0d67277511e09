import { readTail } from '../cache/fs-blob-store.js';
import { NuproxyError } from '../errors.js';

const EOCD = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/**
 * A .nupkg is a zip: its end-of-central-directory record sits in the last 22 + 65535 bytes. A body cut short or
 * padded by a faulty upstream fails this check even when the upstream announced no hash, so it never enters
 * the cache.
 */
export async function verifyZip(path: string, size: number): Promise<void> {
  if (size < 22) throw new NuproxyError('INTEGRITY', 'package is too small to be a zip');
  const tail = await readTail(path, 22 + 65535, size);
  const at = tail.lastIndexOf(EOCD);
  if (at < 0) throw new NuproxyError('INTEGRITY', 'package is not a complete zip (no end of central directory)');
  const commentLength = tail.readUInt16LE(at + 20);
  if (at + 22 + commentLength !== tail.length) {
    throw new NuproxyError('INTEGRITY', 'package has bytes after its zip end record');
  }
}

/** A .nuspec is XML: reject an HTML page or an empty body. */
export async function verifyNuspec(path: string, size: number): Promise<void> {
  const head = (await readTail(path, Math.min(size, 4096), Math.min(size, 4096))).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (!head.startsWith('<') || /^<!doctype html|^<html/i.test(head) || !/<package[\s>]/.test(head)) {
    throw new NuproxyError('INTEGRITY', 'upstream .nuspec is not a nuspec document');
  }
}
