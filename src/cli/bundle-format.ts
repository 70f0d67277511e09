// The bundle format of `nuproxy export` / `nuproxy import`: carrying a cache across an air gap in one tar file.
//
// A bundle is a plain tar of regular files:
//   packages/<lowerid>/<lowerversion>/<lowerid>.<lowerversion>.nupkg   (and <lowerid>.nuspec)
//   vulnerabilities/index.json, vulnerabilities/<name>/<tag>.json       (as the feed renders them, placeholder base)
//   state/advisories.json                                                (imported malicious-package advisories)
//   manifest.json                                                        (last: hashes are computed while streaming)
// Export (bundle-export.ts) streams every file from the cache into the tar, hashing as it goes; import
// (bundle-import.ts) stages every entry, checks all of it against the manifest, and only then stores it. Nothing is
// ever held whole in memory except the (small) vulnerability documents and the manifest. This file: what a bundle
// may hold, its manifest, and the small helpers both directions share.
import { createHash, randomBytes } from 'node:crypto';
import { rename, rm, writeFile, mkdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import type { BlobStore } from '../cache/blob-store.js';
import { ADVISORIES_KEY } from '../policy/advisory-store.js';

export const BUNDLE_FORMAT = 'nuproxy-bundle/1';
export const MANIFEST_ENTRY = 'manifest.json';
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
export const MAX_VULN_DOC_BYTES = 64 * 1024 * 1024;
export const READ_CHUNK = 1024 * 1024;
/** Fixed entry time: the same cache gives the same tar layout (only `created` in the manifest differs). */
export const ENTRY_MTIME = new Date(Date.UTC(2000, 0, 1));

// ---------------------------------------------------------------------------------------------------------------
// Manifest and paths

export interface ManifestFile {
  path: string;
  size: number;
  /** base64 SHA-512 of the file's bytes. */
  sha512: string;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  created: string;
  files: ManifestFile[];
  packages: { id: string; version: string }[];
}

const SHA512_B64 = /^[A-Za-z0-9+/]{86}==$/;
export const manifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  created: z.string(),
  files: z.array(z.object({ path: z.string(), size: z.number().int().nonnegative(), sha512: z.string().regex(SHA512_B64) })),
  packages: z.array(z.object({ id: z.string(), version: z.string() })),
});

const SEGMENT = /^[a-z0-9_+-][a-z0-9._+-]{0,199}$/;
const VULN_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;

/** A name a bundle may use for a package id or version folder (lowercase, no `.` or `..`). */
export function isBundleSegment(name: string): boolean {
  return SEGMENT.test(name) && name !== '.' && name !== '..';
}

export type BundlePath =
  | { kind: 'package'; lowerId: string; lowerVersion: string; file: 'nupkg' | 'nuspec' }
  | { kind: 'vulnerability'; segments: string[] }
  /** The imported advisories (policy/advisory-store.ts): merged into the target's by advisory id, never overwriting it. */
  | { kind: 'advisories' };

/**
 * What a bundle path means, or undefined for anything a bundle may not hold. Only the exact shapes export writes
 * are accepted: lowercase package files named after their folder, vulnerability documents; no `..`, no absolute
 * paths, no `.meta` sidecars (the disk store writes those itself), nothing else.
 */
export function parseBundlePath(path: string): BundlePath | undefined {
  if (path.length > 600 || path.includes('\\') || path.includes('\0')) return undefined;
  const s = path.split('/');
  if (s[0] === 'packages' && s.length === 4) {
    const [, id, version, name] = s as [string, string, string, string];
    if (!isBundleSegment(id) || !isBundleSegment(version)) return undefined;
    if (name === `${id}.${version}.nupkg`) return { kind: 'package', lowerId: id, lowerVersion: version, file: 'nupkg' };
    if (name === `${id}.nuspec`) return { kind: 'package', lowerId: id, lowerVersion: version, file: 'nuspec' };
    return undefined;
  }
  if (path === ADVISORIES_KEY) return { kind: 'advisories' };
  if (s[0] === 'vulnerabilities') {
    if (s.length === 2 && s[1] === 'index.json') return { kind: 'vulnerability', segments: ['index.json'] };
    if (s.length === 3) {
      const m = /^(.+)\.json$/.exec(s[2]!);
      if (VULN_SEGMENT.test(s[1]!) && m && VULN_SEGMENT.test(m[1]!)) return { kind: 'vulnerability', segments: [s[1]!, s[2]!] };
    }
  }
  return undefined;
}

export class BundleRefused extends Error {
  constructor(readonly problems: string[]) {
    super(`bundle refused: ${problems[0] ?? 'unknown reason'}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
    this.name = 'BundleRefused';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

/** SHA-512 and size of a stream's bytes. */
export async function hashStream(body: AsyncIterable<Uint8Array>): Promise<{ sha512: string; size: number }> {
  const h = createHash('sha512');
  let size = 0;
  for await (const chunk of body) {
    h.update(chunk);
    size += chunk.length;
  }
  return { sha512: h.digest('base64'), size };
}

/** The stored blob hashed as it is now (not taken on the record's word); undefined when there is none. */
export async function hashBlob(blobs: BlobStore, key: string): Promise<{ sha512: string; size: number } | undefined> {
  const body = await blobs.open(key);
  return body && hashStream(body);
}

export async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

/** Writes a file whole, atomically: a temp file beside it, then rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

