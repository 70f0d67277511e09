// `nuproxy export`: the cached packages (+ nuspecs) and the feed's vulnerability data into one bundle (the
// format: bundle-format.ts; the tar: bundle-export-tar.ts).
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Core } from '../app.js';
import type { BlobInfo, BlobStore } from '../cache/blob-store.js';
import { FsBlobStore } from '../cache/fs-blob-store.js';
import { BUNDLE_FORMAT, errorText, isBundleSegment, manifestSchema, parseBundlePath, writeFileAtomic, type BundleManifest } from './bundle-format.js';
import { CorruptFile, writeBundle, type Candidate, type ExportProblem } from './bundle-export-tar.js';
import { silentProgress, type ProgressSink } from './bundle-progress.js';
import { PACKAGES, packageFolder, vulnerabilityKey } from '../feed/cache-keys.js';
import { ADVISORIES_KEY, readAdvisories } from '../policy/advisory-store.js';

export type { ExportProblem } from './bundle-export-tar.js';

/**
 * What export reads: a blob store (or the directory of a disk store), and the feed when vulnerability data should
 * travel too.
 */
export type ExportSource = string | { blobs: BlobStore; feed?: Pick<Core['feed'], 'vulnerabilityIndex' | 'vulnerabilityPage'> & Partial<Pick<Core['feed'], 'policyDecision'>> };

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
  /** Malicious-package advisories carried (state/advisories.json; 0: none imported). */
  advisories: number;
  /** Cached files left out (corruption, no recorded hash): the export still succeeds, but says so. */
  problems: ExportProblem[];
  /**
   * Cached packages the supply-chain policy blocks (issue #16): left out, as the feed refuses them (they stay in
   * the cache). Empty without a policy.
   */
  blocked: { package: string; rule: string; reason: string }[];
  durationMs: number;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Complete package blobs in the store, through its listing and records alone: a package's nupkg (and its nuspec
 * when there is one), under the exact names export writes; stray names and folders are not ours. A blob with no
 * recorded SHA-512 is reported and left out: nothing would vouch for its bytes.
 */
async function walkPackages(blobs: BlobStore, problems: ExportProblem[]): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const lowerId of (await blobs.list(PACKAGES)).filter(isBundleSegment).sort(byName)) {
    for (const lowerVersion of (await blobs.list(packageFolder(lowerId))).filter(isBundleSegment).sort(byName)) {
      const folder = packageFolder(lowerId, lowerVersion);
      const names = new Set(await blobs.list(folder));
      const nupkg = `${folder}/${lowerId}.${lowerVersion}.nupkg`;
      const nuspec = `${folder}/${lowerId}.nuspec`;
      if (!parseBundlePath(nupkg)) continue; // not a cache key export would write: not ours
      if (!names.has(basename(nupkg))) continue; // no package (a nuspec alone does not make a restorable package)
      const pkgInfo = await statOrProblem(blobs, nupkg, problems);
      if (pkgInfo === null) continue; // listed, but not a blob (a folder of that name)
      // nuspec first: on import it is in place before its package
      const specInfo = names.has(basename(nuspec)) ? await statOrProblem(blobs, nuspec, problems) : null;
      for (const [path, info] of [[nuspec, specInfo], [nupkg, pkgInfo]] as const) {
        if (!info) continue;
        if (info.sha512 === undefined) {
          // the disk store's term is kept: it is what the command has always printed
          problems.push({ path, problem: 'no .meta sidecar next to the cached file; left out' });
          continue;
        }
        out.push({ path, size: info.size, expected: info.sha512 });
      }
    }
  }
  return out;
}

/** A blob's record; null when there is none, undefined (and a problem noted) when it cannot be read. */
async function statOrProblem(blobs: BlobStore, path: string, problems: ExportProblem[]): Promise<BlobInfo | null | undefined> {
  try {
    return (await blobs.stat(path)) ?? null;
  } catch (err) {
    problems.push({ path, problem: `cannot read: ${errorText(err)}` });
    return undefined;
  }
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
      const path = vulnerabilityKey({ name, tag });
      if (!parseBundlePath(path)) return { docs: [], note: `none exported: unexpected page name ${JSON.stringify(key)}` };
      const page = await feed.vulnerabilityPage(name, tag);
      if (!page) return { docs: [], note: `none exported: page ${key} could not be fetched` };
      docs.push({ path, body: Buffer.from(page.body, 'utf8') });
    }
    docs.push({ path: vulnerabilityKey('index.json'), body: Buffer.from(index.body, 'utf8') });
    const note = index.partial.length > 0 ? `incomplete: upstream(s) ${index.partial.join(', ')} did not answer` : undefined;
    return { docs, ...(note ? { note } : {}) };
  } catch (err) {
    return { docs: [], note: `none exported: upstreams could not be asked (${errorText(err)})` };
  }
}

/**
 * The imported malicious-package advisories (state/advisories.json), so the other side of an air gap blocks the
 * same packages: carried as stored, once they read back valid (a corrupt document is left out, with a problem).
 */
async function advisoriesDoc(blobs: BlobStore, problems: ExportProblem[]): Promise<{ docs: { path: string; body: Buffer }[]; count: number }> {
  const read = await readAdvisories(blobs);
  if (read.state === 'corrupt') problems.push({ path: ADVISORIES_KEY, problem: `left out: ${read.error}` });
  if (read.state !== 'ok') return { docs: [], count: 0 };
  const body = await blobs.read(ADVISORIES_KEY);
  return body ? { docs: [{ path: ADVISORIES_KEY, body }], count: read.set.size } : { docs: [], count: 0 };
}

/**
 * Writes a bundle of the cached packages (+ nuspecs) and the feed's vulnerability data to `outFile` (via
 * `<outFile>.partial`, renamed at the end), and its manifest next to it. A cached file that no longer matches
 * the SHA-512 its store recorded is left out and reported; the bundle never contains a byte its manifest does not vouch for.
 */
export async function exportBundle(source: ExportSource, outFile: string, opts: ExportOptions = {}): Promise<ExportSummary> {
  const started = Date.now();
  const blobs = typeof source === 'string' ? new FsBlobStore(source) : source.blobs;
  const out = resolve(outFile);
  const manifestPath = resolve(opts.manifestPath ?? `${out}.manifest.json`);
  const progress = opts.progress ?? silentProgress;
  const now = opts.now ?? (() => new Date());
  const problems: ExportProblem[] = [];

  const since = await loadSince(opts.since ?? []);
  const inSince = (path: string, sha512: string): boolean => since.has(`${path}\0${sha512}`);

  const vuln = await vulnerabilityDocs(source, opts.vulnerabilities !== false);
  const advisories = await advisoriesDoc(blobs, problems);
  const walked = await walkPackages(blobs, problems);

  let unchanged = 0;
  const docs = [...vuln.docs, ...advisories.docs].filter((d) => {
    const keep = !inSince(d.path, createHash('sha512').update(d.body).digest('base64'));
    if (!keep) unchanged++;
    return keep;
  });
  const { kept: allowed, blocked } = await withoutBlocked(source, walked);
  const entries = allowed.filter((w) => {
    const keep = !inSince(w.path, w.expected);
    if (!keep) unchanged++;
    return keep;
  });

  await mkdir(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  let written: { manifest: BundleManifest; manifestText: string };
  try {
    try {
      written = await writeBundle(partial, blobs, entries, docs, { verifyFirst: false, problems, progress, now });
    } catch (err) {
      if (!(err instanceof CorruptFile)) throw err;
      // Rare: a cached file was found corrupt after its tar entry was begun. Start over, checking each file
      // against its recorded hash before it goes in, so every corrupt file is found and left out in this one retry.
      written = await writeBundle(partial, blobs, entries, docs, { verifyFirst: true, problems, progress, now });
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
    advisories: advisories.count,
    problems,
    blocked,
    durationMs: Date.now() - started,
  };
}

/** The walked files without the packages the feed's policy blocks (both files of such a package), and those. */
async function withoutBlocked(source: ExportSource, walked: Candidate[]): Promise<{ kept: Candidate[]; blocked: ExportSummary['blocked'] }> {
  const decide = typeof source === 'string' ? undefined : source.feed?.policyDecision?.bind(source.feed);
  if (!decide) return { kept: walked, blocked: [] };
  const blocked: ExportSummary['blocked'] = [];
  const refused = new Set<string>();
  const seen = new Set<string>();
  for (const w of walked) {
    const p = parseBundlePath(w.path);
    if (!p || p.kind !== 'package') continue;
    const key = `${p.lowerId}@${p.lowerVersion}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const d = await decide(p.lowerId, p.lowerVersion);
    if (!d || d.allowed) continue;
    refused.add(key);
    blocked.push({ package: key, rule: d.rule ?? 'unknown', reason: d.reason ?? '' });
  }
  if (refused.size === 0) return { kept: walked, blocked };
  return {
    kept: walked.filter((w) => {
      const p = parseBundlePath(w.path);
      return !(p?.kind === 'package' && refused.has(`${p.lowerId}@${p.lowerVersion}`));
    }),
    blocked,
  };
}

