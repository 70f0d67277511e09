import { readFile } from 'node:fs/promises';
import { readTail } from '../cache/fs-blob-store.js';
import { parseNuspecDependencies } from '../protocol/nuspec.js';
import { NuproxyError } from '../errors.js';

const EOCD = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/**
 * A .nupkg is a zip: its end-of-central-directory record sits in the last 22 + 65535 bytes. A body cut short or
 * padded by a faulty upstream fails this check even when the upstream announced no hash, so it never enters
 * the cache.
 */
export async function verifyZip(path: string, size: number, kept?: Buffer): Promise<void> {
  if (size < 22) throw new NuproxyError('INTEGRITY', 'package is too small to be a zip');
  const tail = kept && (kept.length >= 22 + 65535 || kept.length === size) ? kept : await readTail(path, 22 + 65535, size);
  const at = tail.lastIndexOf(EOCD);
  if (at < 0) throw new NuproxyError('INTEGRITY', 'package is not a complete zip (no end of central directory)');
  const commentLength = tail.readUInt16LE(at + 20);
  if (at + 22 + commentLength !== tail.length) {
    throw new NuproxyError('INTEGRITY', 'package has bytes after its zip end record');
  }
}

const MAX_NUSPEC = 4 * 1024 * 1024;

/**
 * A .nuspec is a whole XML document with an id and a version: an HTML page, an empty body or a document cut
 * short (nothing else vouches for a nuspec: no announced hash, no zip structure) never enters the cache.
 */
export async function verifyNuspec(path: string, size: number): Promise<void> {
  if (size === 0 || size > MAX_NUSPEC) throw new NuproxyError('INTEGRITY', 'upstream .nuspec is empty or too large');
  const text = (await readFile(path, 'utf8')).replace(/^\uFEFF/, '').trim();
  if (!text.startsWith('<') || /^<!doctype html|^<html/i.test(text) || !/<package[\s>]/.test(text) || !/<\/(?:[\w-]+:)?package>$/.test(text)) {
    throw new NuproxyError('INTEGRITY', 'upstream .nuspec is not a complete nuspec document');
  }
  try {
    const parsed = parseNuspecDependencies(text);
    if (!parsed.id || !parsed.version) throw new Error('no id or version');
  } catch (err) {
    throw new NuproxyError('INTEGRITY', `upstream .nuspec is not a valid nuspec document: ${(err as Error).message}`);
  }
}
