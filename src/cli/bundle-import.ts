// `nuproxy import`: a bundle checked completely against its manifest before anything of it enters the cache
// (the format: bundle-format.ts).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { extract as tarExtract } from 'tar-stream';
import type { BlobStore } from '../cache/blob-store.js';
import { FsBlobStore } from '../cache/fs-blob-store.js';
import { openFileReader } from '../cache/fs-byte-reader.js';
import { NuproxyError } from '../errors.js';
import { MAX_ADVISORY_DOC_BYTES, mergeAdvisoryDocument, parseAdvisoryDocument } from '../policy/advisory-store.js';
import { verifyNuspecOf, verifyPackage, type ContentCheck } from '../feed/verify.js';
import {
  BUNDLE_FORMAT,
  BundleRefused,
  MANIFEST_ENTRY,
  MAX_MANIFEST_BYTES,
  MAX_VULN_DOC_BYTES,
  READ_CHUNK,
  errorText,
  hashBlob,
  manifestSchema,
  parseBundlePath,
  writeAll,
  type BundleManifest,
  type BundlePath,
  type ManifestFile,
} from './bundle-format.js';
import { formatBytes, silentProgress, type ProgressSink } from './bundle-progress.js';

/** Where import stores: a blob store (or the directory of a disk store). */
export type ImportTarget = string | { blobs: BlobStore };

export interface ImportOptions {
  /** A manifest carried separately (e.g. `<bundle>.manifest.json`): the bundle's own must be identical to it. */
  manifestPath?: string;
  /**
   * Where the bundle's entries are staged while they are checked (default: the OS temp dir); never the store's
   * own scratch space, so any backend takes bundles. Removed afterwards.
   */
  stagingDir?: string;
  progress?: ProgressSink;
}

export interface ImportSummary {
  bundle: string;
  cacheDir: string;
  files: number;
  packages: number;
  bytes: number;
  newFiles: number;
  presentFiles: number;
  newPackages: number;
  vulnerabilityDocuments: number;
  /** The bundle's malicious-package advisories, merged into the target's by advisory id (absent: it had none). */
  advisories?: { added: number; updated: number; total: number };
  /** Package files the cache already holds with other, valid content: kept as they are. */
  conflicts: string[];
  durationMs: number;
}

interface Staged {
  file: string;
  size: number;
  sha512: string;
}

/** Pass 1: every entry into the staging dir, hashed; the manifest in memory. Throws BundleRefused. */
async function stageBundle(file: string, stage: string, progress: ProgressSink): Promise<{ staged: Map<string, Staged>; manifestBytes: Buffer }> {
  const total = (await stat(file)).size;
  const staged = new Map<string, Staged>();
  let manifestBytes: Buffer | undefined;
  const extract = tarExtract();
  const rs = createReadStream(file, { highWaterMark: READ_CHUNK });
  rs.on('error', (err) => extract.destroy(err));
  rs.on('data', () => progress.update(rs.bytesRead));
  progress.start('import: reading and checking', total);
  rs.pipe(extract as unknown as NodeJS.WritableStream);
  let n = 0;
  try {
    for await (const entry of extract) {
      const { name, type, size } = entry.header;
      if (type !== 'file') throw new BundleRefused([`${JSON.stringify(name)}: ${type} entries are not allowed (only regular files)`]);
      if (name !== MANIFEST_ENTRY && !parseBundlePath(name)) {
        throw new BundleRefused([`${JSON.stringify(name)}: not a path a bundle may hold (only packages/…, vulnerabilities/… and state/advisories.json)`]);
      }
      if (staged.has(name) || (name === MANIFEST_ENTRY && manifestBytes)) throw new BundleRefused([`${name}: appears twice in the bundle`]);
      if (name === MANIFEST_ENTRY) {
        if (size > MAX_MANIFEST_BYTES) throw new BundleRefused([`${name}: too large (${formatBytes(size)})`]);
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        manifestBytes = Buffer.concat(chunks);
        continue;
      }
      const target = join(stage, `${n++}.blob`);
      const fh = await open(target, 'wx');
      const hash = createHash('sha512');
      let written = 0;
      try {
        for await (const c of entry) {
          const buf = c as Buffer;
          hash.update(buf);
          written += buf.length;
          await writeAll(fh, buf);
        }
      } finally {
        await fh.close();
      }
      staged.set(name, { file: target, size: written, sha512: hash.digest('base64') });
    }
  } catch (err) {
    rs.destroy();
    // our own refusals, and file system errors (reading the bundle, staging: ENOSPC…) are what they are
    if (err instanceof BundleRefused || typeof (err as NodeJS.ErrnoException).code === 'string') throw err;
    throw new BundleRefused([`not a complete tar (${errorText(err)}): truncated or damaged`]);
  } finally {
    progress.end();
  }
  if (!manifestBytes) throw new BundleRefused([`no ${MANIFEST_ENTRY} in the bundle (not a nuproxy bundle, or cut short)`]);
  return { staged, manifestBytes };
}

/** The content check a bundle's blob passes (staged, and again as the store commits it), as for a download. */
function contentCheck(p: BundlePath): ContentCheck | undefined {
  // a package must be what its path says (its nuspec's id and version)
  if (p.kind === 'package') return p.file === 'nupkg' ? verifyPackage(p) : verifyNuspecOf(p);
  return undefined;
}

/** Runs a content check on a staged file (outside the store: the checks speak ByteReader, whatever holds the bytes). */
async function checkStagedFile(check: ContentCheck, file: string): Promise<void> {
  const content = await openFileReader(file);
  try {
    await check(content);
  } finally {
    await content.close();
  }
}

/** Everything the manifest promises, checked against what was staged. Returns the reasons to refuse. */
async function checkStaged(manifest: BundleManifest, staged: Map<string, Staged>): Promise<string[]> {
  const problems: string[] = [];
  const listed = new Set<string>();
  for (const f of manifest.files) {
    if (!parseBundlePath(f.path)) {
      problems.push(`${JSON.stringify(f.path)}: the manifest lists a path a bundle may not hold`);
      continue;
    }
    if (listed.has(f.path)) {
      problems.push(`${f.path}: listed twice in the manifest`);
      continue;
    }
    listed.add(f.path);
    const s = staged.get(f.path);
    if (!s) {
      problems.push(`${f.path}: listed in the manifest but missing from the bundle`);
      continue;
    }
    if (s.size !== f.size) {
      problems.push(`${f.path}: ${s.size} bytes, the manifest says ${f.size}`);
      continue;
    }
    if (s.sha512 !== f.sha512) {
      problems.push(`${f.path}: SHA-512 mismatch`);
      continue;
    }
    const p = parseBundlePath(f.path)!;
    try {
      // a package must be what its path says (its nuspec's id and version), as for a download
      const check = contentCheck(p);
      if (check) await checkStagedFile(check, s.file);
      else if (p.kind === 'advisories') {
        if (s.size > MAX_ADVISORY_DOC_BYTES) throw new Error('too large for an advisories document');
        parseAdvisoryDocument(await readFile(s.file, 'utf8')); // every advisory valid, or the bundle is refused
      } else {
        if (s.size > MAX_VULN_DOC_BYTES) throw new Error('too large for a vulnerability document');
        JSON.parse(await readFile(s.file, 'utf8'));
      }
    } catch (err) {
      problems.push(`${f.path}: ${errorText(err)}`);
    }
  }
  for (const path of staged.keys()) if (!listed.has(path)) problems.push(`${path}: in the bundle but not in the manifest`);
  return problems;
}

/** Import order: vulnerability pages before their index, each package's nuspec before its package. */
function importOrder(a: ManifestFile, b: ManifestFile): number {
  const rank = (f: ManifestFile): string => {
    const p = parseBundlePath(f.path)!;
    if (p.kind === 'vulnerability') return `0${p.segments[0] === 'index.json' ? '1' : '0'}${f.path}`;
    if (p.kind === 'advisories') return '2';
    return `1${p.lowerId}/${p.lowerVersion}/${p.file === 'nuspec' ? '0' : '1'}`;
  };
  const ra = rank(a);
  const rb = rank(b);
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

/** A disk store at `dir`, prepared without sweeping (safe beside a running instance). */
async function openDiskStore(dir: string): Promise<BlobStore> {
  const blobs = new FsBlobStore(dir);
  await blobs.init({ sweep: false });
  return blobs;
}

/**
 * Verifies a bundle completely in a staging dir of its own and only then stores its files.
 * Throws BundleRefused (with every reason found) and leaves the cache untouched when anything is wrong.
 */
export async function importBundle(target: ImportTarget, file: string, opts: ImportOptions = {}): Promise<ImportSummary> {
  const started = Date.now();
  const bundle = resolve(file);
  const progress = opts.progress ?? silentProgress;
  await stat(bundle); // a missing file is an error of its own (ENOENT), not a refused bundle
  const blobs = typeof target === 'string' ? await openDiskStore(target) : target.blobs;
  const stage = await mkdtemp(join(opts.stagingDir ?? tmpdir(), 'nuproxy-import-'));
  try {
    const { staged, manifestBytes } = await stageBundle(bundle, stage, progress);
    let manifest: BundleManifest;
    try {
      manifest = manifestSchema.parse(JSON.parse(manifestBytes.toString('utf8'))) as BundleManifest;
    } catch (err) {
      throw new BundleRefused([`${MANIFEST_ENTRY}: not a ${BUNDLE_FORMAT} manifest (${errorText(err).split('\n')[0]})`]);
    }
    if (opts.manifestPath) {
      const carried = await readFile(resolve(opts.manifestPath));
      if (!carried.equals(manifestBytes)) throw new BundleRefused([`${MANIFEST_ENTRY}: differs from ${opts.manifestPath}`]);
    }
    const problems = await checkStaged(manifest, staged);
    if (problems.length > 0) throw new BundleRefused(problems);

    // Pass 2: everything checked; into the store, each blob held to the same checks again as it is committed.
    let newFiles = 0;
    let presentFiles = 0;
    const newPackages = new Set<string>();
    const conflicts: string[] = [];
    let advisories: ImportSummary['advisories'];
    for (const f of [...manifest.files].sort(importOrder)) {
      const p = parseBundlePath(f.path)!;
      if (p.kind === 'advisories') {
        // merged by advisory id: the target may hold advisories imported there that the bundle's site never saw
        advisories = await mergeAdvisoryDocument(blobs, await readFile(staged.get(f.path)!.file, 'utf8'));
        continue;
      }
      const current = await blobs.stat(f.path);
      if (current) {
        // the stored copy is hashed, not taken on its record's word: "present" means the same bytes
        const actual = (await hashBlob(blobs, f.path))?.sha512;
        if (actual === f.sha512 && (p.kind === 'vulnerability' || current.sha512 === f.sha512)) {
          presentFiles++;
          continue;
        }
        if (p.kind === 'package' && actual !== f.sha512 && current.sha512 === actual) {
          // a valid, different file under the same name (another upstream's build of it): never replaced
          conflicts.push(f.path);
          continue;
        }
        // otherwise the stored copy is damaged or its record is missing or wrong: the checked one replaces it
      }
      const check = contentCheck(p);
      try {
        await blobs.import(f.path, createReadStream(staged.get(f.path)!.file, { highWaterMark: READ_CHUNK }), {
          expectedLength: f.size,
          expectedSha512: f.sha512,
          upstream: 'import',
          ...(check ? { verify: check } : {}),
          replace: current !== undefined,
        });
      } catch (err) {
        // stored meanwhile (a running instance downloaded it) with other bytes: kept, like any conflict
        if (current === undefined && err instanceof NuproxyError && err.code === 'CONFLICT') {
          conflicts.push(f.path);
          continue;
        }
        throw err;
      }
      newFiles++;
      if (p.kind === 'package' && p.file === 'nupkg') newPackages.add(`${p.lowerId}/${p.lowerVersion}`);
    }
    return {
      bundle,
      cacheDir: blobs.location,
      files: manifest.files.length,
      packages: manifest.files.filter((f) => f.path.endsWith('.nupkg')).length,
      bytes: manifest.files.reduce((n, f) => n + f.size, 0),
      newFiles,
      presentFiles,
      newPackages: newPackages.size,
      vulnerabilityDocuments: manifest.files.filter((f) => f.path.startsWith('vulnerabilities/')).length,
      ...(advisories ? { advisories } : {}),
      conflicts,
      durationMs: Date.now() - started,
    };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

