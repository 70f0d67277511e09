import { Readable } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import type { ByteReader } from '../cache/blob-store.js';
import { openFileReader } from '../cache/fs-byte-reader.js';
import { NuproxyError } from '../errors.js';

export interface NuspecIdentity {
  id: string;
  version: string;
}

const MAX_NUSPEC = 1024 * 1024;

/**
 * Reads <id> and <version> from the .nuspec at the root of a .nupkg file outside the store (a pushed package's
 * scratch copy; random access: no full read).
 */
export async function readNuspecIdentity(path: string): Promise<NuspecIdentity | undefined> {
  const content = await openFileReader(path).catch(() => undefined);
  if (!content) return undefined;
  try {
    const xml = (await readNuspecBytes(content))?.toString('utf8').replace(/^\uFEFF/, '');
    return xml === undefined ? undefined : parseIdentity(xml);
  } finally {
    await content.close();
  }
}

/** The bytes last..end of a body (for cheap format checks). */
export function readTail(content: ByteReader, length: number): Promise<Buffer> {
  const n = Math.min(length, content.size);
  return content.read(content.size - n, n);
}

/** yauzl's random access over a ByteReader (the zip directory and one entry are read, not the whole package). */
class ByteReaderAccess extends yauzl.RandomAccessReader {
  constructor(private readonly content: ByteReader) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const content = this.content;
    return Readable.from(
      (async function* () {
        for (let at = start; at < end; ) {
          const bytes = await content.read(at, Math.min(1024 * 1024, end - at));
          if (bytes.length === 0) throw new Error('zip read past the end of the package');
          at += bytes.length;
          yield bytes;
        }
      })(),
    );
  }
}

function openZip(content: ByteReader, options: yauzl.Options, cb: (err: Error | null, zip?: yauzl.ZipFile) => void): void {
  yauzl.fromRandomAccessReader(new ByteReaderAccess(content), content.size, options, (err, zip) => cb(err, zip));
}

/**
 * The .nuspec at the root of a .nupkg, as bytes (random access: no full read of the package); undefined when
 * there is none or the zip cannot be read. The reader stays open (its owner closes it).
 */
export function readNuspecBytes(content: ByteReader): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    openZip(content, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err || !zip) return resolve(undefined);
      let settled = false;
      const done = (v: Buffer | undefined): void => {
        if (settled) return;
        settled = true;
        zip.close();
        resolve(v);
      };
      zip.on('error', () => done(undefined));
      zip.on('end', () => done(undefined));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.includes('/') || !entry.fileName.toLowerCase().endsWith('.nuspec') || entry.uncompressedSize > MAX_NUSPEC) {
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return done(undefined);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', () => done(undefined));
          stream.on('end', () => done(Buffer.concat(chunks)));
        });
      });
      zip.readEntry();
    });
  });
}

function parseIdentity(xml: string): NuspecIdentity | undefined {
  const metadata = /<metadata[\s>][\s\S]*?<\/metadata>/.exec(xml)?.[0] ?? xml;
  const id = /<id>\s*([^<]+?)\s*<\/id>/.exec(metadata)?.[1];
  const version = /<version>\s*([^<]+?)\s*<\/version>/.exec(metadata)?.[1];
  return id && version ? { id, version } : undefined;
}


/** Largest .nuspec inside a package that the identity check reads (real ones are a few KB). */
const MAX_PACKAGE_NUSPEC = 4 * 1024 * 1024;
const EOCD_SIG = 0x06054b50;
const CD_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** A zip's end record with the longest comment: where the central directory is named. */
const END_AREA = 22 + 0xffff;

function notPackage(why: string): NuproxyError {
  return new NuproxyError('INTEGRITY', `package ${why}`);
}

/**
 * The bytes of the one .nuspec at the root of a .nupkg (random access), found through the zip's central directory. The
 * directory is read from `tail` (a blob writer keeps the file's last 64 KB, which hold the whole directory of
 * most packages) or else from the content; then only that entry is read and inflated. Why not yauzl: this runs on
 * the cold path before a download's last byte is released, once per package, and costs one or two small reads.
 * Zip64 archives (none among real packages) go through yauzl.
 *
 * Throws INTEGRITY when the package has no .nuspec at its root or more than one (NuGet refuses both), or when
 * the entry cannot be read.
 */
export async function nuspecOfPackage(content: ByteReader, tail?: Buffer): Promise<Buffer> {
  const { size } = content;
  const end = tail && tail.length >= Math.min(size, END_AREA) ? tail : await readTail(content, END_AREA);
  const tailStart = size - end.length;
  let at = -1;
  for (let i = end.length - 22; i >= 0; i--) {
    if (end.readUInt32LE(i) === EOCD_SIG && i + 22 + end.readUInt16LE(i + 20) === end.length) {
      at = i;
      break;
    }
  }
  if (at < 0) throw notPackage('is not a complete zip (no end of central directory)');
  const entries = end.readUInt16LE(at + 10);
  const cdSize = end.readUInt32LE(at + 12);
  const cdOffset = end.readUInt32LE(at + 16);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) return nuspecViaYauzl(content);
  if (cdOffset + cdSize > tailStart + at) throw notPackage('has a central directory that overlaps its end record');
  const cd = cdOffset >= tailStart ? end.subarray(cdOffset - tailStart, cdOffset - tailStart + cdSize) : await content.read(cdOffset, cdSize);
  let found: { method: number; compressed: number; size: number; local: number } | undefined;
  for (let p = 0, n = 0; n < entries; n++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CD_SIG) throw notPackage('has a damaged central directory');
    const nameLen = cd.readUInt16LE(p + 28);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    if (!name.includes('/') && name.toLowerCase().endsWith('.nuspec')) {
      if (found) throw notPackage('has more than one .nuspec at its root');
      found = { method: cd.readUInt16LE(p + 10), compressed: cd.readUInt32LE(p + 20), size: cd.readUInt32LE(p + 24), local: cd.readUInt32LE(p + 42) };
    }
    p += 46 + nameLen + cd.readUInt16LE(p + 30) + cd.readUInt16LE(p + 32);
  }
  if (!found) throw notPackage('has no .nuspec at its root');
  if (found.size > MAX_PACKAGE_NUSPEC || found.compressed > MAX_PACKAGE_NUSPEC) throw notPackage('has a .nuspec larger than 4 MB');
  const header = await content.read(found.local, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== LOCAL_SIG) throw notPackage('has a .nuspec entry without its local header');
  const dataAt = found.local + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (dataAt + found.compressed > cdOffset) throw notPackage('has a .nuspec entry that runs into its central directory');
  const raw = await content.read(dataAt, found.compressed);
  let bytes: Buffer;
  try {
    bytes = found.method === 0 ? raw : found.method === 8 ? inflateRawSync(raw, { maxOutputLength: MAX_PACKAGE_NUSPEC }) : Buffer.alloc(0);
  } catch {
    throw notPackage('has a .nuspec entry that does not inflate');
  }
  if (found.method !== 0 && found.method !== 8) throw notPackage(`has a .nuspec compressed with method ${found.method}`);
  if (bytes.length !== found.size) throw notPackage('has a .nuspec entry of another size than its directory says');
  return bytes;
}

/** nuspecOfPackage for a zip64 archive: every entry listed by yauzl (which reads zip64), the same rules. */
function nuspecViaYauzl(content: ByteReader): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    openZip(content, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err || !zip) return reject(notPackage(`is not a readable zip (${err?.message ?? 'unknown'})`));
      const finish = (e: Error | undefined, bytes?: Buffer): void => {
        zip.close();
        if (e) reject(e);
        else resolve(bytes!);
      };
      let found: yauzl.Entry | undefined;
      zip.on('error', (e: Error) => finish(notPackage(`is not a readable zip (${e.message})`)));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (!entry.fileName.includes('/') && entry.fileName.toLowerCase().endsWith('.nuspec')) {
          if (found) return finish(notPackage('has more than one .nuspec at its root'));
          found = entry;
        }
        zip.readEntry();
      });
      zip.on('end', () => {
        if (!found) return finish(notPackage('has no .nuspec at its root'));
        if (found.uncompressedSize > MAX_PACKAGE_NUSPEC) return finish(notPackage('has a .nuspec larger than 4 MB'));
        zip.openReadStream(found, (e, stream) => {
          if (e || !stream) return finish(notPackage('has a .nuspec entry that cannot be read'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', () => finish(notPackage('has a .nuspec entry that cannot be read')));
          stream.on('end', () => finish(undefined, Buffer.concat(chunks)));
        });
      });
      zip.readEntry();
    });
  });
}
