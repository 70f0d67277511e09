import type { ByteReader } from '../cache/blob-store.js';
import { openFileReader } from '../cache/fs-byte-reader.js';
import { parseNuspecDependencies, type NuspecDependencies } from '../protocol/nuspec.js';
import { lowerNormalizedVersion } from '../protocol/version.js';
import { NuproxyError } from '../errors.js';
import { nuspecOfPackage, readTail } from './nuspec.js';

const EOCD = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/**
 * A commit's content check (fits CommitCheck.verify: `tail` is what the writer kept of the end), also callable on a file by its path and size.
 * @deprecated the path form: bundle only, until it moves onto BlobStore.
 */
export type ContentCheck = ((content: ByteReader, tail?: Buffer) => Promise<void>) & ((path: string, size: number) => Promise<void>);

/** A check on a ByteReader, made callable on a file path too (see ContentCheck). */
function contentCheck(check: (content: ByteReader, tail?: Buffer) => Promise<void>): ContentCheck {
  return (async (content: ByteReader | string, tail?: Buffer | number): Promise<void> => {
    if (typeof content !== 'string') return check(content, tail as Buffer | undefined);
    const reader = await openFileReader(content);
    try {
      await check(reader);
    } finally {
      await reader.close();
    }
  }) as ContentCheck;
}

/** What a package file was asked for as: its nuspec must say the same (NuGet equality). */
export interface ExpectedPackage {
  lowerId: string;
  /** Lowercase, normalized (src/protocol/version.ts). */
  lowerVersion: string;
  /** Who supplied it, for the error a client sees. */
  upstream?: string;
}

/**
 * A .nupkg is a zip: its end-of-central-directory record sits in the last 22 + 65535 bytes. A body cut short or
 * padded by a faulty upstream fails this check even when the upstream announced no hash, so it never enters
 * the cache.
 */
export async function verifyZip(content: ByteReader, kept?: Buffer): Promise<void> {
  const { size } = content;
  if (size < 22) throw new NuproxyError('INTEGRITY', 'package is too small to be a zip');
  const tail = kept && (kept.length >= 22 + 65535 || kept.length === size) ? kept : await readTail(content, 22 + 65535);
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
export async function verifyNuspec(content: ByteReader, maxBytes = MAX_NUSPEC): Promise<NuspecDependencies> {
  const { size } = content;
  if (size === 0 || size > maxBytes) throw new NuproxyError('INTEGRITY', 'upstream .nuspec is empty or too large');
  const text = (await content.read(0, size)).toString('utf8').replace(/^\uFEFF/, '').trim();
  if (!text.startsWith('<') || /^<!doctype html|^<html/i.test(text) || !/<package[\s>]/.test(text) || !/<\/(?:[\w-]+:)?package>$/.test(text)) {
    throw new NuproxyError('INTEGRITY', 'upstream .nuspec is not a complete nuspec document');
  }
  try {
    const parsed = parseNuspecDependencies(text);
    if (!parsed.id || !parsed.version) throw new Error('no id or version');
    return parsed;
  } catch (err) {
    throw new NuproxyError('INTEGRITY', `upstream .nuspec is not a valid nuspec document: ${(err as Error).message}`);
  }
}

/**
 * Throws unless a nuspec names the package it was asked for: id case-insensitive, version normalized (1.0 is
 * 1.0.0, prerelease labels case-insensitive, build metadata ignored). Without this a package served under
 * another name (`wrongid/1.0.0` holding `Evil.Other 6.6.6`) would be kept and reported as that other package.
 * The message never repeats what the nuspec says (it is the upstream's text, not ours to relay).
 */
export function checkIdentity(nuspec: Pick<NuspecDependencies, 'id' | 'version'>, expected: ExpectedPackage, what: 'package' | '.nuspec'): void {
  const from = expected.upstream ? `upstream ${expected.upstream} sent a ${what}` : `the ${what}`;
  const details = expected.upstream ? { upstream: expected.upstream } : {};
  if (nuspec.id.toLowerCase() !== expected.lowerId) {
    throw new NuproxyError('INTEGRITY', `${from} whose nuspec names another id than ${expected.lowerId}`, details);
  }
  if (lowerNormalizedVersion(nuspec.version) !== expected.lowerVersion) {
    throw new NuproxyError('INTEGRITY', `${from} whose nuspec names another version than ${expected.lowerVersion}`, details);
  }
}

function parseNuspecBytes(bytes: Buffer): NuspecDependencies {
  try {
    return parseNuspecDependencies(bytes.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new NuproxyError('INTEGRITY', `package has a .nuspec that does not parse: ${(err as Error).message}`);
  }
}

/**
 * The check a .nupkg passes before it is committed: a complete zip, whose one .nuspec at the root names the
 * package asked for. `onNuspec` receives that nuspec (kept beside the package without reading it again).
 */
export function verifyPackage(expected: ExpectedPackage, onNuspec?: (bytes: Buffer) => void): ContentCheck {
  return contentCheck(async (content, tail) => {
    await verifyZip(content, tail);
    const bytes = await nuspecOfPackage(content, tail);
    checkIdentity(parseNuspecBytes(bytes), expected, 'package');
    onNuspec?.(bytes);
  });
}

/** The check a .nuspec fetched on its own passes before it is committed: whole, and naming the package asked for. */
export function verifyNuspecOf(expected: ExpectedPackage, maxBytes = MAX_NUSPEC): ContentCheck {
  return contentCheck(async (content) => {
    checkIdentity(await verifyNuspec(content, maxBytes), expected, '.nuspec');
  });
}
