// Re-checks a nuproxy cache dir from scratch: every blob against its sidecar's SHA-512, every .nupkg as a complete
// zip (central directory, local headers, each entry inflated and CRC-checked), and what is left in `.tmp`.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';

export interface CacheAudit {
  /** Blob keys ("packages/{id}/{version}/{file}") that passed every check, sorted. */
  blobs: string[];
  /** Everything wrong, one line each (empty when the cache is sound). */
  problems: string[];
  /** Names directly in `<cache>/.tmp`. */
  tmp: string[];
}

/** Throws with a reason when `bytes` is not a complete, readable zip whose entries match their CRC-32. */
export function checkZip(bytes: Buffer): void {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (bytes.readUInt32LE(i) === EOCD && i + 22 + bytes.readUInt16LE(i + 20) === bytes.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('no end of central directory record at the end');
  const entries = bytes.readUInt16LE(eocd + 10);
  const cdSize = bytes.readUInt32LE(eocd + 12);
  const cdOffset = bytes.readUInt32LE(eocd + 16);
  if (entries === 0xffff || cdOffset === 0xffffffff) throw new Error('zip64 is not expected in a test package');
  if (cdOffset + cdSize > eocd) throw new Error('central directory overlaps the end record');
  let p = cdOffset;
  for (let n = 0; n < entries; n++) {
    if (bytes.readUInt32LE(p) !== 0x02014b50) throw new Error(`central directory entry ${n} has a bad signature`);
    const method = bytes.readUInt16LE(p + 10);
    const crc = bytes.readUInt32LE(p + 16);
    const compressed = bytes.readUInt32LE(p + 20);
    const size = bytes.readUInt32LE(p + 24);
    const nameLen = bytes.readUInt16LE(p + 28);
    const extraLen = bytes.readUInt16LE(p + 30);
    const commentLen = bytes.readUInt16LE(p + 32);
    const local = bytes.readUInt32LE(p + 42);
    const name = bytes.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    if (bytes.readUInt32LE(local) !== 0x04034b50) throw new Error(`${name}: local header has a bad signature`);
    const dataStart = local + 30 + bytes.readUInt16LE(local + 26) + bytes.readUInt16LE(local + 28);
    const raw = bytes.subarray(dataStart, dataStart + compressed);
    if (raw.length !== compressed) throw new Error(`${name}: data runs past the end of the file`);
    const data = method === 0 ? raw : method === 8 ? inflateRawSync(raw) : undefined;
    if (!data) throw new Error(`${name}: unexpected compression method ${method}`);
    if (data.length !== size) throw new Error(`${name}: ${data.length} bytes, the directory says ${size}`);
    if (crc32(data) >>> 0 !== crc) throw new Error(`${name}: CRC-32 mismatch`);
    p += 46 + nameLen + extraLen + commentLen;
  }
}

async function walk(dir: string, rel: string, out: string[]): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(join(dir, e.name), r, out);
    else out.push(r);
  }
}

/**
 * Audits `<cacheDir>/packages/**` and `<cacheDir>/.tmp`. `orphanSidecars: 'allow'` accepts a `.meta` whose blob
 * is absent (the sidecar is written before the blob is renamed into place: a kill between the two leaves one).
 */
export async function auditCache(cacheDir: string, opts: { orphanSidecars?: 'allow' | 'problem' } = {}): Promise<CacheAudit> {
  const problems: string[] = [];
  const blobs: string[] = [];
  const files: string[] = [];
  const packages = join(cacheDir, 'packages');
  if (existsSync(packages)) await walk(packages, 'packages', files);
  const all = new Set(files);
  for (const f of files) {
    if (f.endsWith('.meta')) {
      if (!all.has(f.slice(0, -'.meta'.length)) && opts.orphanSidecars !== 'allow') problems.push(`${f}: a sidecar without its blob`);
      continue;
    }
    const parts = f.split('/');
    const valid = parts.length === 4 && (f.endsWith('.nupkg') ? parts[3] === `${parts[1]}.${parts[2]}.nupkg` : parts[3] === `${parts[1]}.nuspec`);
    if (!valid) {
      problems.push(`${f}: not a package file name at its place (a stray or partial file?)`);
      continue;
    }
    const bytes = await readFile(join(cacheDir, f));
    let meta: { sha512?: unknown } | undefined;
    try {
      meta = JSON.parse(await readFile(join(cacheDir, `${f}.meta`), 'utf8')) as { sha512?: unknown };
    } catch (err) {
      problems.push(`${f}: sidecar missing or unreadable (${(err as Error).message})`);
      continue;
    }
    const actual = createHash('sha512').update(bytes).digest('base64');
    if (meta.sha512 !== actual) {
      problems.push(`${f}: SHA-512 ${actual.slice(0, 16)}… differs from its sidecar's ${String(meta.sha512).slice(0, 16)}…`);
      continue;
    }
    if (f.endsWith('.nupkg')) {
      try {
        checkZip(bytes);
      } catch (err) {
        problems.push(`${f}: not a valid zip: ${(err as Error).message}`);
        continue;
      }
    } else if (!/^\uFEFF?\s*</.test(bytes.toString('utf8')) || !/<\/package>\s*$/.test(bytes.toString('utf8'))) {
      problems.push(`${f}: not a complete nuspec document`);
      continue;
    }
    blobs.push(f);
  }
  const tmpDir = join(cacheDir, '.tmp');
  const tmp = existsSync(tmpDir) ? await readdir(tmpDir) : [];
  return { blobs: blobs.sort(), problems, tmp };
}

/** Polls until `.tmp` of the cache is empty (downloads that failed remove their temp file asynchronously). */
export async function waitForEmptyTmp(cacheDir: string, timeoutMs = 5000): Promise<string[]> {
  const tmpDir = join(cacheDir, '.tmp');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = existsSync(tmpDir) ? await readdir(tmpDir) : [];
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The files directly in a folder with their sizes (none when it does not exist; one removed meanwhile is left out). */
export async function filesIn(dir: string): Promise<{ name: string; size: number }[]> {
  if (!existsSync(dir)) return [];
  const out: { name: string; size: number }[] = [];
  for (const name of await readdir(dir)) {
    try {
      out.push({ name, size: (await stat(join(dir, name))).size });
    } catch {
      // removed in between
    }
  }
  return out;
}
