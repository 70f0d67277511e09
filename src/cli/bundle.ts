// `nuproxy export` / `nuproxy import`: carrying a cache across an air gap in one tar file.
//
// A bundle is a plain tar of regular files:
//   packages/<lowerid>/<lowerversion>/<lowerid>.<lowerversion>.nupkg   (and <lowerid>.nuspec)
//   vulnerabilities/index.json, vulnerabilities/<name>/<tag>.json       (as the feed renders them, placeholder base)
//   manifest.json                                                        (last: hashes are computed while streaming)
// Export streams every file from the cache into the tar, hashing as it goes; import stages every entry inside the
// cache root, checks all of it against the manifest, and only then moves files into place. Nothing is ever held
// whole in memory except the (small) vulnerability documents and the manifest.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, copyFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { extract as tarExtract, pack as tarPack, type Pack } from 'tar-stream';
import { z } from 'zod';
import { createCore, type Core } from '../app.js';
import { FsBlobStore } from '../cache/fs-blob-store.js';
import { verifyNuspecOf, verifyPackage } from '../feed/verify.js';
import type { CliCommand, CliContext } from './context.js';

export const BUNDLE_FORMAT = 'nuproxy-bundle/1';
const MANIFEST_ENTRY = 'manifest.json';
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
const MAX_VULN_DOC_BYTES = 64 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** Fixed entry time: the same cache gives the same tar layout (only `created` in the manifest differs). */
const ENTRY_MTIME = new Date(Date.UTC(2000, 0, 1));

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
const manifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  created: z.string(),
  files: z.array(z.object({ path: z.string(), size: z.number().int().nonnegative(), sha512: z.string().regex(SHA512_B64) })),
  packages: z.array(z.object({ id: z.string(), version: z.string() })),
});

const SEGMENT = /^[a-z0-9_+-][a-z0-9._+-]{0,199}$/;
const VULN_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;

export type BundlePath =
  | { kind: 'package'; lowerId: string; lowerVersion: string; file: 'nupkg' | 'nuspec' }
  | { kind: 'vulnerability'; segments: string[] };

/**
 * What a bundle path means, or undefined for anything a bundle may not hold. Only the exact shapes export writes
 * are accepted: lowercase package files named after their folder, vulnerability documents; no `..`, no absolute
 * paths, no `.meta` sidecars (import writes those itself), nothing else.
 */
export function parseBundlePath(path: string): BundlePath | undefined {
  if (path.length > 600 || path.includes('\\') || path.includes('\0')) return undefined;
  const s = path.split('/');
  if (s[0] === 'packages' && s.length === 4) {
    const [, id, version, name] = s as [string, string, string, string];
    if (!SEGMENT.test(id) || !SEGMENT.test(version) || id === '..' || version === '..' || id === '.' || version === '.') return undefined;
    if (name === `${id}.${version}.nupkg`) return { kind: 'package', lowerId: id, lowerVersion: version, file: 'nupkg' };
    if (name === `${id}.nuspec`) return { kind: 'package', lowerId: id, lowerVersion: version, file: 'nuspec' };
    return undefined;
  }
  if (s[0] === 'vulnerabilities') {
    if (s.length === 2 && s[1] === 'index.json') return { kind: 'vulnerability', segments: ['index.json'] };
    if (s.length === 3) {
      const m = /^(.+)\.json$/.exec(s[2]!);
      if (VULN_SEGMENT.test(s[1]!) && m && VULN_SEGMENT.test(m[1]!)) return { kind: 'vulnerability', segments: [s[1]!, s[2]!] };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Progress

export interface ProgressSink {
  start(label: string, total: number): void;
  update(done: number, note?: string): void;
  end(): void;
}

const silentProgress: ProgressSink = { start() {}, update() {}, end() {} };

/** A redrawn bar on a terminal; on anything else a line every ~10%. */
export function streamProgress(out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): ProgressSink {
  let label = '';
  let total = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  let done = 0;
  let note = '';
  let active = false;
  const tty = out.isTTY === true;
  const draw = (): void => {
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    const width = 24;
    const filled = Math.round((pct / 100) * width);
    const text = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)}${note ? ` ${note}` : ''}`;
    const cols = Math.max(20, (out.columns ?? 100) - 1);
    out.write(`\r\x1b[K${text.length > cols ? text.slice(0, cols) : text}`);
  };
  return {
    start(l, t) {
      label = l;
      total = t;
      done = 0;
      note = '';
      lastDraw = 0;
      lastDecile = -1;
      active = true;
      if (tty) draw();
      else {
        out.write(`${label}: 0% of ${formatBytes(total)}\n`);
        lastDecile = 0;
      }
    },
    update(d, n) {
      if (!active) return;
      done = d;
      if (n !== undefined) note = n;
      if (tty) {
        const now = Date.now();
        if (now - lastDraw >= 100) {
          lastDraw = now;
          draw();
        }
        return;
      }
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (decile > lastDecile && decile < 10) {
        lastDecile = decile;
        out.write(`${label}: ${decile * 10}% (${formatBytes(done)} of ${formatBytes(total)})\n`);
      }
    },
    end() {
      if (!active) return;
      active = false;
      done = total;
      if (tty) {
        draw();
        out.write('\n');
      } else out.write(`${label}: 100% (${formatBytes(total)})\n`);
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Small file helpers

async function hashFile(path: string): Promise<{ sha512: string; size: number }> {
  const h = createHash('sha512');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha512: h.digest('base64'), size };
}

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

/** Writes a file whole, atomically: a temp file beside it, then rename. */
async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
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

/** rename(), falling back to copy + rename when the staging dir turns out to be on another file system. */
async function moveInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = join(dirname(to), `.${basename(to)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await copyFile(from, tmp);
      await rename(tmp, to);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await rm(from, { force: true });
  }
}

async function readSidecar(path: string): Promise<{ sha512?: string; upstream?: string } | undefined> {
  let text: string;
  try {
    text = await readFile(`${path}.meta`, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const meta = JSON.parse(text) as { sha512?: unknown; upstream?: unknown };
    return {
      ...(typeof meta.sha512 === 'string' ? { sha512: meta.sha512 } : {}),
      ...(typeof meta.upstream === 'string' ? { upstream: meta.upstream } : {}),
    };
  } catch {
    return {};
  }
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------------------------
// Export

/** What export reads: the cache root, and the feed when vulnerability data should travel too. */
export type ExportSource = string | { blobs: { root: string }; feed?: Pick<Core['feed'], 'vulnerabilityIndex' | 'vulnerabilityPage'> };

export interface ExportOptions {
  /** Earlier manifests: files whose path and SHA-512 one of them lists are left out. */
  since?: string[];
  /** Where the manifest copy goes (default `<out>.manifest.json`). */
  manifestPath?: string;
  /** false: no vulnerability data even when the feed has some. */
  vulnerabilities?: boolean;
  progress?: ProgressSink;
  now?: () => Date;
}

export interface ExportProblem {
  path: string;
  problem: string;
}

export interface ExportSummary {
  bundle: string;
  manifest: string;
  /** Files in the bundle (the manifest itself not counted). */
  files: number;
  packages: number;
  /** Bytes of the files in the bundle. */
  bytes: number;
  /** Size of the tar. */
  bundleBytes: number;
  /** Files left out because an earlier manifest (--since) has them with the same hash. */
  unchanged: number;
  vulnerabilities: { documents: number; note?: string };
  /** Cached files left out (corruption, missing sidecar): the export still succeeds, but says so. */
  problems: ExportProblem[];
  durationMs: number;
}

interface Candidate {
  path: string;
  abs: string;
  size: number;
  /** From the sidecar (or a pre-hash when the sidecar has none). */
  expected: string;
}

const CORRUPT = 'cached file no longer matches the SHA-512 in its sidecar (cache corruption)';

type Walked = Omit<Candidate, 'expected'> & { expected: string | undefined };

class CorruptFile extends Error {
  constructor(readonly path: string) {
    super(`${path}: ${CORRUPT}`);
  }
}

async function dirEntries(path: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Complete package files in the cache: real files (no links) with their sidecar, never `.tmp/` or stray names. */
async function walkPackages(root: string, problems: ExportProblem[]): Promise<Walked[]> {
  const out: Walked[] = [];
  const base = join(root, 'packages');
  const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const idDir of (await dirEntries(base)).filter((e) => e.isDirectory()).sort(byName)) {
    for (const verDir of (await dirEntries(join(base, idDir.name))).filter((e) => e.isDirectory()).sort(byName)) {
      const folder = join(base, idDir.name, verDir.name);
      const names = new Map((await dirEntries(folder)).map((e) => [e.name, e]));
      const nupkg = `${idDir.name}.${verDir.name}.nupkg`;
      const nuspec = `${idDir.name}.nuspec`;
      const nupkgPath = `packages/${idDir.name}/${verDir.name}/${nupkg}`;
      if (!parseBundlePath(nupkgPath)) continue; // not a cache key export would write (e.g. upper case): not ours
      const pkgEntry = names.get(nupkg);
      if (!pkgEntry?.isFile()) continue; // no package (a nuspec alone does not make a restorable package)
      const files: string[] = [];
      if (names.get(nuspec)?.isFile()) files.push(nuspec); // nuspec first: on import it is in place before its package
      files.push(nupkg);
      for (const name of files) {
        const abs = join(folder, name);
        const path = `packages/${idDir.name}/${verDir.name}/${name}`;
        const meta = await readSidecar(abs);
        if (!meta) {
          problems.push({ path, problem: 'no .meta sidecar next to the cached file; left out' });
          continue;
        }
        let size: number;
        try {
          size = (await stat(abs)).size;
        } catch (err) {
          problems.push({ path, problem: `cannot read: ${errorText(err)}` });
          continue;
        }
        out.push({ path, abs, size, expected: meta.sha512 });
      }
    }
  }
  return out;
}

async function loadSince(paths: string[]): Promise<Set<string>> {
  const known = new Set<string>();
  for (const p of paths) {
    let parsed;
    try {
      parsed = manifestSchema.parse(JSON.parse(await readFile(p, 'utf8')));
    } catch (err) {
      throw new Error(`--since ${p}: not a ${BUNDLE_FORMAT} manifest (${errorText(err).split('\n')[0]})`);
    }
    for (const f of parsed.files) known.add(`${f.path}\0${f.sha512}`);
  }
  return known;
}

async function vulnerabilityDocs(source: ExportSource, enabled: boolean): Promise<{ docs: { path: string; body: Buffer }[]; note?: string }> {
  if (!enabled) return { docs: [], note: 'not exported (--no-vulnerabilities)' };
  const feed = typeof source === 'string' ? undefined : source.feed;
  if (!feed) return { docs: [], note: 'not exported (no feed to ask)' };
  try {
    const index = await feed.vulnerabilityIndex();
    if (!index) return { docs: [], note: 'none exported: no upstream offers vulnerability data' };
    const docs: { path: string; body: Buffer }[] = [];
    for (const key of [...index.pages.keys()].sort()) {
      const [name, tag] = key.split('/') as [string, string];
      const path = `vulnerabilities/${name}/${tag}.json`;
      if (!parseBundlePath(path)) return { docs: [], note: `none exported: unexpected page name ${JSON.stringify(key)}` };
      const page = await feed.vulnerabilityPage(name, tag);
      if (!page) return { docs: [], note: `none exported: page ${key} could not be fetched` };
      docs.push({ path, body: Buffer.from(page.body, 'utf8') });
    }
    docs.push({ path: 'vulnerabilities/index.json', body: Buffer.from(index.body, 'utf8') });
    const note = index.partial.length > 0 ? `incomplete: upstream(s) ${index.partial.join(', ')} did not answer` : undefined;
    return { docs, ...(note ? { note } : {}) };
  } catch (err) {
    return { docs: [], note: `none exported: upstreams could not be asked (${errorText(err)})` };
  }
}

/** Adds one entry from memory; resolves when the tar has taken it. */
function addBuffer(pack: Pack, name: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, size: body.length, mode: 0o644, mtime: ENTRY_MTIME, type: 'file' }, body, (err) => (err ? reject(err) : resolve()));
  });
}

/** Streams one file into the tar, hashing it on the way; resolves with its SHA-512 once the tar has all of it. */
function addFile(pack: Pack, name: string, abs: string, size: number, onBytes: (n: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha512');
    const rs = size > 0 ? createReadStream(abs, { start: 0, end: size - 1, highWaterMark: READ_CHUNK }) : undefined;
    const sink = pack.entry({ name, size, mode: 0o644, mtime: ENTRY_MTIME, type: 'file' }, (err) => {
      if (err) {
        rs?.destroy();
        reject(new Error(`${name}: ${errorText(err)}${errorText(err) === 'Size mismatch' ? ' (the cached file changed size during export)' : ''}`));
      } else resolve(hash.digest('base64'));
    });
    if (!rs) {
      sink.end(undefined);
      return;
    }
    rs.on('data', (chunk) => {
      const buf = chunk as Buffer;
      hash.update(buf);
      onBytes(buf.length);
      if (!sink.write(buf)) {
        rs.pause();
        sink.once('drain', () => rs.resume());
      }
    });
    rs.once('end', () => sink.end(undefined));
    rs.once('error', (err) => sink.destroy(err));
  });
}

/** One attempt at writing the bundle. Throws CorruptFile (bundle discarded) when `verifyFirst` is off. */
async function writeBundle(
  partial: string,
  entries: Candidate[],
  docs: { path: string; body: Buffer }[],
  opts: { verifyFirst: boolean; problems: ExportProblem[]; progress: ProgressSink; now: () => Date },
): Promise<{ manifest: BundleManifest; manifestText: string }> {
  const pack = tarPack();
  const fh = await open(partial, 'w');
  const writing = (async () => {
    for await (const chunk of pack) await writeAll(fh, chunk as Uint8Array);
  })();
  writing.catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  const total = entries.reduce((n, e) => n + e.size, 0) + docs.reduce((n, d) => n + d.body.length, 0);
  let done = 0;
  opts.progress.start(opts.verifyFirst ? 'export (checking hashes first)' : 'export', total);
  try {
    const files: ManifestFile[] = [];
    for (const d of docs) {
      await addBuffer(pack, d.path, d.body);
      files.push({ path: d.path, size: d.body.length, sha512: createHash('sha512').update(d.body).digest('base64') });
      done += d.body.length;
      opts.progress.update(done);
    }
    const packages: { id: string; version: string }[] = [];
    for (const e of entries) {
      if (opts.verifyFirst) {
        const actual = await hashFile(e.abs);
        if (actual.sha512 !== e.expected || actual.size !== e.size) {
          opts.problems.push({ path: e.path, problem: `${CORRUPT}; left out` });
          done += e.size;
          continue;
        }
      }
      const sha512 = await addFile(pack, e.path, e.abs, e.size, (n) => {
        done += n;
        opts.progress.update(done, `${files.length + 1}/${entries.length + docs.length} files`);
      });
      if (sha512 !== e.expected) {
        if (!opts.verifyFirst) throw new CorruptFile(e.path);
        throw new Error(`${e.path}: the cached file changed while it was being exported; run export again`);
      }
      files.push({ path: e.path, size: e.size, sha512 });
      const p = parseBundlePath(e.path);
      if (p?.kind === 'package' && p.file === 'nupkg') packages.push({ id: p.lowerId, version: p.lowerVersion });
    }
    const manifest: BundleManifest = { format: BUNDLE_FORMAT, created: opts.now().toISOString(), files, packages };
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    await addBuffer(pack, MANIFEST_ENTRY, Buffer.from(manifestText, 'utf8'));
    pack.finalize();
    await writing;
    await fh.sync();
    return { manifest, manifestText };
  } catch (err) {
    pack.destroy(err instanceof Error ? err : new Error(String(err)));
    await writing.catch(() => undefined);
    throw err;
  } finally {
    opts.progress.end();
    await fh.close();
  }
}

/**
 * Writes a bundle of the cached packages (+ nuspecs) and the feed's vulnerability data to `outFile` (via
 * `<outFile>.partial`, renamed at the end), and its manifest next to it. A cached file that no longer matches
 * its sidecar is left out and reported; the bundle never contains a byte its manifest does not vouch for.
 */
export async function exportBundle(source: ExportSource, outFile: string, opts: ExportOptions = {}): Promise<ExportSummary> {
  const started = Date.now();
  const root = resolve(typeof source === 'string' ? source : source.blobs.root);
  const out = resolve(outFile);
  const manifestPath = resolve(opts.manifestPath ?? `${out}.manifest.json`);
  const progress = opts.progress ?? silentProgress;
  const now = opts.now ?? (() => new Date());
  const problems: ExportProblem[] = [];

  const since = await loadSince(opts.since ?? []);
  const inSince = (path: string, sha512: string): boolean => since.has(`${path}\0${sha512}`);

  const vuln = await vulnerabilityDocs(source, opts.vulnerabilities !== false);
  const walked = await walkPackages(root, problems);

  let unchanged = 0;
  const docs = vuln.docs.filter((d) => {
    const keep = !inSince(d.path, createHash('sha512').update(d.body).digest('base64'));
    if (!keep) unchanged++;
    return keep;
  });
  const entries: Candidate[] = [];
  for (const w of walked) {
    // a sidecar without a hash (not written by nuproxy): hash it now, so --since and the corruption check work
    const expected = w.expected ?? (await hashFile(w.abs)).sha512;
    if (inSince(w.path, expected)) {
      unchanged++;
      continue;
    }
    entries.push({ ...w, expected });
  }

  await mkdir(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  let written: { manifest: BundleManifest; manifestText: string };
  try {
    try {
      written = await writeBundle(partial, entries, docs, { verifyFirst: false, problems, progress, now });
    } catch (err) {
      if (!(err instanceof CorruptFile)) throw err;
      // Rare: a cached file was found corrupt after its tar entry was begun. Start over, checking each file
      // against its sidecar before it goes in, so every corrupt file is found and left out in this one retry.
      written = await writeBundle(partial, entries, docs, { verifyFirst: true, problems, progress, now });
    }
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  await writeFileAtomic(manifestPath, written.manifestText);
  const { manifest } = written;
  return {
    bundle: out,
    manifest: manifestPath,
    files: manifest.files.length,
    packages: manifest.packages.length,
    bytes: manifest.files.reduce((n, f) => n + f.size, 0),
    bundleBytes: (await stat(out)).size,
    unchanged,
    vulnerabilities: {
      documents: manifest.files.filter((f) => f.path.startsWith('vulnerabilities/')).length,
      ...(vuln.note ? { note: vuln.note } : {}),
    },
    problems,
    durationMs: Date.now() - started,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Import

export class BundleRefused extends Error {
  constructor(readonly problems: string[]) {
    super(`bundle refused: ${problems[0] ?? 'unknown reason'}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
    this.name = 'BundleRefused';
  }
}

export type ImportTarget = string | { blobs: FsBlobStore };

export interface ImportOptions {
  /** A manifest carried separately (e.g. `<bundle>.manifest.json`): the bundle's own must be identical to it. */
  manifestPath?: string;
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
        throw new BundleRefused([`${JSON.stringify(name)}: not a path a bundle may hold (only packages/… and vulnerabilities/…)`]);
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
      if (p.kind === 'package' && p.file === 'nupkg') await verifyPackage(p)(s.file, s.size);
      else if (p.kind === 'package') await verifyNuspecOf(p)(s.file, s.size);
      else {
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
    return `1${p.lowerId}/${p.lowerVersion}/${p.file === 'nuspec' ? '0' : '1'}`;
  };
  const ra = rank(a);
  const rb = rank(b);
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

/**
 * Verifies a bundle completely inside `<cache>/.tmp/import-*` and only then moves its files into the cache.
 * Throws BundleRefused (with every reason found) and leaves the cache untouched when anything is wrong.
 */
export async function importBundle(target: ImportTarget, file: string, opts: ImportOptions = {}): Promise<ImportSummary> {
  const started = Date.now();
  const blobs = typeof target === 'string' ? new FsBlobStore(target) : target.blobs;
  const bundle = resolve(file);
  const progress = opts.progress ?? silentProgress;
  await stat(bundle); // a missing file is an error of its own (ENOENT), not a refused bundle
  await mkdir(blobs.tmpDir, { recursive: true });
  const stage = join(blobs.tmpDir, `import-${randomBytes(8).toString('hex')}`);
  await mkdir(stage);
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

    // Pass 2: everything checked; move into place.
    let newFiles = 0;
    let presentFiles = 0;
    const newPackages = new Set<string>();
    const conflicts: string[] = [];
    let m = 0;
    for (const f of [...manifest.files].sort(importOrder)) {
      const s = staged.get(f.path)!;
      const p = parseBundlePath(f.path)!;
      if (p.kind === 'vulnerability') {
        const final = join(blobs.root, 'vulnerabilities', ...p.segments);
        if ((await isRegularFile(final)) && (await hashFile(final)).sha512 === f.sha512) {
          presentFiles++;
          continue;
        }
        await mkdir(dirname(final), { recursive: true });
        await moveInto(s.file, final);
        newFiles++;
        continue;
      }
      const final = blobs.pathOf(f.path);
      if (await isRegularFile(final)) {
        // the cached copy is hashed, not taken on its sidecar's word: "present" means the same bytes
        const meta = await readSidecar(final);
        const actual = (await hashFile(final)).sha512;
        if (actual === f.sha512 && meta?.sha512 === f.sha512) {
          presentFiles++;
          continue;
        }
        if (actual !== f.sha512 && meta?.sha512 === actual) {
          // a valid, different file under the same name (another upstream's build of it): never replaced
          conflicts.push(f.path);
          continue;
        }
        // otherwise the cached copy is damaged or its sidecar is missing or wrong: the checked one replaces it
      }
      await mkdir(dirname(final), { recursive: true });
      // The sidecar goes first (written whole, then renamed): a blob at its key always has its hash beside it.
      const metaTmp = join(stage, `${m++}.meta`);
      await writeFile(metaTmp, `${JSON.stringify({ sha512: f.sha512, upstream: 'import' })}\n`);
      await moveInto(metaTmp, `${final}.meta`);
      await moveInto(s.file, final);
      blobs.forget(f.path);
      newFiles++;
      if (p.file === 'nupkg') newPackages.add(`${p.lowerId}/${p.lowerVersion}`);
    }
    return {
      bundle,
      cacheDir: blobs.root,
      files: manifest.files.length,
      packages: manifest.files.filter((f) => f.path.endsWith('.nupkg')).length,
      bytes: manifest.files.reduce((n, f) => n + f.size, 0),
      newFiles,
      presentFiles,
      newPackages: newPackages.size,
      vulnerabilityDocuments: manifest.files.filter((f) => f.path.startsWith('vulnerabilities/')).length,
      conflicts,
      durationMs: Date.now() - started,
    };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CLI

export const EXPORT_USAGE = 'nuproxy export <out.tar> [--since <earlier-manifest.json>]... [--manifest <out-manifest.json>] [--no-vulnerabilities] [--quiet] [--json] [--config FILE]';
export const IMPORT_USAGE = 'nuproxy import <bundle.tar> [--manifest <bundle-manifest.json>] [--quiet] [--json] [--config FILE]';

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, ctx: CliContext, usage: string): { values: Record<string, unknown>; positionals: string[] } | undefined {
  try {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    ctx.stderr.write(`${errorText(err)}\nusage: ${usage}\n`);
    return undefined;
  }
}

const COMMON = {
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
  // accepted (and ignored) here so that main.ts may pass the whole command line
  config: { type: 'string', short: 'c' },
} as const;

/**
 * `nuproxy export <out.tar>`. `args` are the words after `export`. Exit codes: 0 written; 3 written, but some
 * cached files were left out (listed on stderr); 1 failed (nothing written); 2 usage.
 */
export const exportCommand: CliCommand = async (args, ctx) => {
  const parsed = parse(
    args,
    { ...COMMON, since: { type: 'string', multiple: true }, manifest: { type: 'string' }, 'no-vulnerabilities': { type: 'boolean' } },
    ctx,
    EXPORT_USAGE,
  );
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    ctx.stderr.write(`usage: ${EXPORT_USAGE}\n`);
    return 2;
  }
  const quiet = values.quiet === true;
  const out = resolve(ctx.cwd, positionals[0]!);
  let core: Core | undefined;
  try {
    core = await createCore(ctx.loaded, { logger: ctx.logger, sweepTemp: false });
    const summary = await exportBundle(core, out, {
      since: ((values.since as string[] | undefined) ?? []).map((p) => resolve(ctx.cwd, p)),
      ...(typeof values.manifest === 'string' ? { manifestPath: resolve(ctx.cwd, values.manifest) } : {}),
      vulnerabilities: values['no-vulnerabilities'] !== true,
      ...(quiet ? {} : { progress: streamProgress(ctx.stderr) }),
    });
    for (const p of summary.problems) ctx.stderr.write(`nuproxy export: warning: ${p.path}: ${p.problem}\n`);
    if (values.json === true) ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    else if (!quiet) {
      const v = summary.vulnerabilities;
      ctx.stdout.write(
        `exported ${summary.files} files (${summary.packages} packages, ${formatBytes(summary.bytes)}) to ${summary.bundle} (${formatBytes(summary.bundleBytes)}) in ${(summary.durationMs / 1000).toFixed(1)} s\n` +
          (summary.unchanged > 0 ? `  ${summary.unchanged} files left out: the earlier bundle(s) already have them\n` : '') +
          `  vulnerability data: ${v.documents} documents${v.note ? ` (${v.note})` : ''}\n` +
          `  manifest: ${summary.manifest}\n` +
          (summary.problems.length > 0 ? `  ${summary.problems.length} cached files left out because of problems (see above)\n` : ''),
      );
    }
    return summary.problems.length > 0 ? 3 : 0;
  } catch (err) {
    ctx.stderr.write(`nuproxy export: failed: ${errorText(err)}\n`);
    return 1;
  } finally {
    await core?.close();
  }
};

/**
 * `nuproxy import <bundle.tar>` into the configured cache.dir. Needs no upstream (and does not sweep the cache's
 * temp folder, so it is safe beside a running instance). Exit codes: 0 imported; 1 refused or failed; 2 usage.
 */
export const importCommand: CliCommand = async (args, ctx) => {
  const parsed = parse(args, { ...COMMON, manifest: { type: 'string' } }, ctx, IMPORT_USAGE);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    ctx.stderr.write(`usage: ${IMPORT_USAGE}\n`);
    return 2;
  }
  const quiet = values.quiet === true;
  const cacheDir = resolve(ctx.cwd, ctx.loaded.config.cache.dir);
  try {
    const summary = await importBundle(cacheDir, resolve(ctx.cwd, positionals[0]!), {
      ...(typeof values.manifest === 'string' ? { manifestPath: resolve(ctx.cwd, values.manifest) } : {}),
      ...(quiet ? {} : { progress: streamProgress(ctx.stderr) }),
    });
    for (const c of summary.conflicts) ctx.stderr.write(`nuproxy import: warning: ${c}: the cache already has a different, valid file under this name; kept it\n`);
    if (values.json === true) ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    else if (!quiet) {
      ctx.stdout.write(
        `imported ${summary.bundle} into ${summary.cacheDir} in ${(summary.durationMs / 1000).toFixed(1)} s: ${summary.files} files (${summary.packages} packages, ${formatBytes(summary.bytes)}), ` +
          `${summary.newFiles} new, ${summary.presentFiles} already present${summary.conflicts.length ? `, ${summary.conflicts.length} kept (conflicts)` : ''}; ` +
          `${summary.newPackages} new packages, ${summary.vulnerabilityDocuments} vulnerability documents\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof BundleRefused) {
      ctx.stderr.write(`nuproxy import: ${err.message}\n`);
      for (const p of err.problems.slice(1, 50)) ctx.stderr.write(`  also: ${p}\n`);
      if (values.json === true) ctx.stdout.write(`${JSON.stringify({ refused: true, problems: err.problems })}\n`);
    } else ctx.stderr.write(`nuproxy import: failed: ${errorText(err)}\n`);
    return 1;
  }
};
