// Writing the tar of an export: every file streamed in and hashed on the way, the manifest last.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import type { BlobStore } from '../cache/blob-store.js';
import { BUNDLE_FORMAT, ENTRY_MTIME, MANIFEST_ENTRY, errorText, hashBlob, parseBundlePath, writeAll, type BundleManifest, type ManifestFile } from './bundle-format.js';
import type { ProgressSink } from './bundle-progress.js';

/** A problem with one cached file that export leaves out (and reports). */
export interface ExportProblem {
  path: string;
  problem: string;
}

/** A cached blob to export: `path` is its key in the store and its name in the bundle. */
export interface Candidate {
  path: string;
  size: number;
  /** The SHA-512 the store recorded when it committed the blob. */
  expected: string;
}

// the wording of the disk store's terms is kept: it is what the command has always printed
export const CORRUPT = 'cached file no longer matches the SHA-512 in its sidecar (cache corruption)';

export class CorruptFile extends Error {
  constructor(readonly path: string) {
    super(`${path}: ${CORRUPT}`);
  }
}

/** Adds one entry from memory; resolves when the tar has taken it. */
function addBuffer(pack: Pack, name: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, size: body.length, mode: 0o644, mtime: ENTRY_MTIME, type: 'file' }, body, (err) => (err ? reject(err) : resolve()));
  });
}

/** Streams one stored blob into the tar, hashing it on the way; resolves with its SHA-512 once the tar has all of it. */
async function addBlob(pack: Pack, blobs: BlobStore, name: string, size: number, onBytes: (n: number) => void): Promise<string> {
  const rs = size > 0 ? await blobs.open(name, { start: 0, endInclusive: size - 1 }) : undefined;
  if (size > 0 && !rs) throw new Error(`${name}: the cached file was removed during export; run export again`);
  return new Promise((resolve, reject) => {
    const hash = createHash('sha512');
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
export async function writeBundle(
  partial: string,
  blobs: BlobStore,
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
        const actual = await hashBlob(blobs, e.path);
        if (!actual) throw new Error(`${e.path}: the cached file was removed during export; run export again`);
        if (actual.sha512 !== e.expected || actual.size !== e.size) {
          opts.problems.push({ path: e.path, problem: `${CORRUPT}; left out` });
          done += e.size;
          continue;
        }
      }
      const sha512 = await addBlob(pack, blobs, e.path, e.size, (n) => {
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

