// Bundles speak the BlobStore interface only: exported from and imported into a store that is not the disk (a
// small in-memory one, whose every method bundles must not need throws), with the same checks, conflicts and
// problems as on the disk.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobInfo, BlobStore, BlobWriter, ByteReader, CommitCheck } from '../../src/cache/blob-store.js';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { NuproxyError } from '../../src/errors.js';
import { exportBundle, importBundle, type BundleManifest, type ExportSource } from '../../src/cli/bundle.js';
import { makeNupkg, makeNuspecXml } from '../support/nupkg.js';

const sha512 = (b: Uint8Array): string => createHash('sha512').update(b).digest('base64');
const unused = (what: string): never => {
  throw new Error(`bundles must not need BlobStore.${what}`);
};

/** Blobs in a Map: what an object store looks like to bundles (no files, no paths). */
class MemoryBlobs implements BlobStore {
  readonly kind = 'memory';
  readonly sharedAcrossInstances = false;
  readonly location = 'memory:';
  readonly blobs = new Map<string, { bytes: Buffer; info: BlobInfo }>();

  async init(): Promise<{ swept: number }> {
    return { swept: 0 };
  }
  async stat(key: string): Promise<BlobInfo | undefined> {
    return this.blobs.get(key)?.info;
  }
  async open(key: string, range?: { start: number; endInclusive: number }): Promise<Readable | undefined> {
    const b = this.blobs.get(key);
    if (!b) return undefined;
    return Readable.from([range ? b.bytes.subarray(range.start, range.endInclusive + 1) : b.bytes]);
  }
  async read(key: string): Promise<Buffer | undefined> {
    return this.blobs.get(key)?.bytes;
  }
  async list(prefix: string): Promise<string[]> {
    const names = new Set<string>();
    for (const key of this.blobs.keys()) if (key.startsWith(`${prefix}/`)) names.add(key.slice(prefix.length + 1).split('/')[0]!);
    return [...names];
  }
  /** Stores without checks, with the record given: how a test plants what a cache may hold. */
  plant(key: string, bytes: Uint8Array, recorded: string | undefined, upstream = 'up0'): void {
    this.blobs.set(key, { bytes: Buffer.from(bytes), info: { size: bytes.length, mtimeMs: 0, upstream, ...(recorded ? { sha512: recorded } : {}) } });
  }
  async import(key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo> {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(Buffer.from(c));
    const bytes = Buffer.concat(chunks);
    const hash = sha512(bytes);
    if (check.expectedLength !== undefined && check.expectedLength !== bytes.length) throw new NuproxyError('INTEGRITY', 'length');
    if (check.expectedSha512 !== undefined && check.expectedSha512 !== hash) throw new NuproxyError('INTEGRITY', 'sha512');
    const existing = this.blobs.get(key);
    if (existing && !check.replace) {
      if ((existing.info.sha512 ?? sha512(existing.bytes)) !== hash) throw new NuproxyError('CONFLICT', 'other bytes', { key });
      return existing.info;
    }
    if (check.verify) {
      const content: ByteReader = { size: bytes.length, read: async (p, n) => bytes.subarray(p, p + n), close: async () => {} };
      await check.verify(content, bytes.subarray(Math.max(0, bytes.length - (22 + 65535))));
    }
    check.onVerified?.();
    const info: BlobInfo = { size: bytes.length, sha512: hash, mtimeMs: Date.now(), ...(check.upstream ? { upstream: check.upstream } : {}) };
    this.blobs.set(key, { bytes, info });
    return info;
  }
  reader(): Promise<ByteReader | undefined> {
    return unused('reader');
  }
  send(): void {
    unused('send');
  }
  createWriter(): Promise<BlobWriter> {
    return unused('createWriter');
  }
  put(): Promise<BlobInfo> {
    return unused('put');
  }
  delete(): Promise<boolean> {
    return unused('delete');
  }
  takeReads(): string[] {
    return unused('takeReads');
  }
  noteRead(): void {
    return unused('noteRead');
  }
}

const pkgs = [
  { id: 'Mem.Alpha', version: '1.0.0' },
  { id: 'Mem.Beta', version: '2.0.0-rc.1' },
];
const key = (p: { id: string; version: string }, file: 'nupkg' | 'nuspec'): string => {
  const id = p.id.toLowerCase();
  const v = p.version.toLowerCase();
  return `packages/${id}/${v}/${file === 'nupkg' ? `${id}.${v}.nupkg` : `${id}.nuspec`}`;
};

/** The feed's vulnerability documents, as export asks for them. */
const feed = {
  vulnerabilityIndex: async () => ({ body: '[{"@name":"base","@id":"https://nuproxy.invalid/v3/vulnerabilities/base/0.json"}]', pages: new Map([['base/0', {}]]), partial: [] }),
  vulnerabilityPage: async () => ({ body: '{"mem.alpha":[{"severity":2}]}' }),
} as unknown as Exclude<ExportSource, string>['feed'];

describe('bundles through any BlobStore', () => {
  let work: string;
  let fromDisk: string;
  let diskManifest: BundleManifest;
  const bytes = new Map<string, Uint8Array>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-bundle-store-'));
    const disk = new FsBlobStore(join(work, 'disk'));
    await disk.init();
    for (const p of pkgs) {
      bytes.set(key(p, 'nupkg'), makeNupkg(p));
      bytes.set(key(p, 'nuspec'), Buffer.from(makeNuspecXml(p)));
    }
    for (const [k, b] of bytes) await disk.put(k, b, { upstream: 'up0' });
    fromDisk = join(work, 'from-disk.tar');
    const summary = await exportBundle({ blobs: disk, feed }, fromDisk);
    expect(summary).toMatchObject({ files: 6, packages: 2, problems: [], vulnerabilities: { documents: 2 } });
    diskManifest = JSON.parse(await readFile(summary.manifest, 'utf8')) as BundleManifest;
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('imports into the store at the same keys, recorded as supplied by import; exports from it the same files back', async () => {
    const mem = new MemoryBlobs();
    const summary = await importBundle({ blobs: mem }, fromDisk);
    expect(summary).toMatchObject({ cacheDir: 'memory:', files: 6, newFiles: 6, presentFiles: 0, newPackages: 2, vulnerabilityDocuments: 2, conflicts: [] });
    expect([...mem.blobs.keys()].sort()).toEqual(diskManifest.files.map((f) => f.path).sort());
    for (const [k, b] of bytes) {
      expect(mem.blobs.get(k)!.bytes.equals(Buffer.from(b)), k).toBe(true);
      expect(mem.blobs.get(k)!.info).toMatchObject({ sha512: sha512(b), upstream: 'import' });
    }
    expect(mem.blobs.get('vulnerabilities/base/0.json')!.bytes.toString('utf8')).toBe('{"mem.alpha":[{"severity":2}]}');
    expect((await importBundle({ blobs: mem }, fromDisk)).presentFiles).toBe(6);

    const back = join(work, 'from-memory.tar');
    const again = await exportBundle({ blobs: mem }, back);
    expect(again).toMatchObject({ files: 4, packages: 2, problems: [] });
    const manifest = JSON.parse(await readFile(again.manifest, 'utf8')) as BundleManifest;
    expect(manifest.files).toEqual(diskManifest.files.filter((f) => f.path.startsWith('packages/')));
    expect(manifest.packages).toEqual(diskManifest.packages);
    // and onto a disk again: the same bytes
    const fresh = join(work, 'fresh-disk');
    expect(await importBundle(fresh, back)).toMatchObject({ newFiles: 4, newPackages: 2 });
    for (const [k, b] of bytes) expect((await readFile(join(fresh, k))).equals(Buffer.from(b)), k).toBe(true);
  });

  it('keeps a different valid blob (a conflict), replaces a damaged one, as on the disk', async () => {
    const mem = new MemoryBlobs();
    const other = makeNupkg({ ...pkgs[0]!, description: 'another build' });
    mem.plant(key(pkgs[0]!, 'nupkg'), other, sha512(other), 'elsewhere');
    const good = bytes.get(key(pkgs[1]!, 'nupkg'))!;
    const damaged = Buffer.from(good);
    damaged[20] = damaged[20]! ^ 0xff;
    mem.plant(key(pkgs[1]!, 'nupkg'), damaged, sha512(good));

    const summary = await importBundle({ blobs: mem }, fromDisk);
    expect(summary).toMatchObject({ newFiles: 5, presentFiles: 0, conflicts: [key(pkgs[0]!, 'nupkg')] });
    expect(mem.blobs.get(key(pkgs[0]!, 'nupkg'))!.bytes.equals(Buffer.from(other))).toBe(true);
    expect(mem.blobs.get(key(pkgs[0]!, 'nupkg'))!.info.upstream).toBe('elsewhere');
    expect(mem.blobs.get(key(pkgs[1]!, 'nupkg'))!.bytes.equals(Buffer.from(good))).toBe(true);
    expect(mem.blobs.get(key(pkgs[1]!, 'nupkg'))!.info.upstream).toBe('import');
  });

  it('export leaves out, and reports, a blob whose bytes no longer match its record and one with no recorded hash', async () => {
    const mem = new MemoryBlobs();
    for (const [k, b] of bytes) mem.plant(k, b, sha512(b));
    const alpha = bytes.get(key(pkgs[0]!, 'nupkg'))!;
    const flipped = Buffer.from(alpha);
    flipped[flipped.length >> 1] = flipped[flipped.length >> 1]! ^ 0x01;
    mem.plant(key(pkgs[0]!, 'nupkg'), flipped, sha512(alpha));
    mem.plant(key(pkgs[1]!, 'nuspec'), bytes.get(key(pkgs[1]!, 'nuspec'))!, undefined);

    const summary = await exportBundle({ blobs: mem }, join(work, 'damaged.tar'));
    expect(summary.problems.map((p) => p.path).sort()).toEqual([key(pkgs[0]!, 'nupkg'), key(pkgs[1]!, 'nuspec')].sort());
    expect(summary.problems.find((p) => p.path === key(pkgs[0]!, 'nupkg'))!.problem).toMatch(/cache corruption/);
    const manifest = JSON.parse(await readFile(summary.manifest, 'utf8')) as BundleManifest;
    expect(manifest.files.map((f) => f.path).sort()).toEqual([key(pkgs[0]!, 'nuspec'), key(pkgs[1]!, 'nupkg')].sort());
  });
});
