// The package path's two steps, over a real disk store: cached() answers from what this process has and asks no
// upstream; fetch() makes one download from the source the feed chose, joined by every caller meanwhile.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/cache/fs-blob-store.js';
import { PackageFiles, type PackageFile, type PackageHandle, type PackageSource } from '../../../src/feed/packages.js';
import type { BlobResult } from '../../../src/upstream/nuget-upstream.js';
import { readAll } from '../../contract/blob-store.contract.js';
import { createLogSink } from '../../support/log-sink.js';
import { makeNupkg } from '../../support/nupkg.js';
import { deferred, waitFor } from '../../support/wait.js';

/** An upstream's flat container in memory, counting what it is asked; `gate` holds every body's last chunk. */
class BytesSource implements PackageSource {
  opened = 0;
  gate: Promise<void> = Promise.resolve();
  constructor(
    readonly name: string,
    private readonly files: Map<string, Uint8Array> | undefined,
  ) {}
  async openPackage(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD'): Promise<BlobResult | undefined> {
    this.opened++;
    if (!this.files) return undefined; // no flat container
    const bytes = this.files.get(`${lowerId}/${lowerVersion}/${file}`);
    if (!bytes) return { kind: 'not-found' };
    const gate = this.gate;
    const body = Readable.from(
      (async function* () {
        if (method === 'HEAD') return;
        yield Buffer.from(bytes.subarray(0, 100));
        await gate;
        yield Buffer.from(bytes.subarray(100));
      })(),
    );
    body.on('error', () => undefined); // a HEAD's body is destroyed with an error, as undici's is
    return { kind: 'ok', length: bytes.length, body, abandonAfterMs: 60_000 };
  }
}

async function bodyOf(h: PackageHandle | undefined): Promise<Buffer | undefined> {
  if (!h || h.kind === 'head' || h.kind === 'redirect') return undefined;
  if (h.kind === 'stream') return (await readAll(h.stream)).bytes;
  return h.bytes;
}

describe('PackageFiles: cached() and fetch(source)', () => {
  let dir: string;
  let blobs: FsBlobStore;
  let packages: PackageFiles;
  const nupkg = Buffer.from(makeNupkg({ id: 'Pkg.One', version: '1.0.0', padBytes: 64 * 1024 }));
  const files = new Map([['pkg.one/1.0.0/nupkg', nupkg]]);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-packages-'));
    blobs = new FsBlobStore(dir);
    await blobs.init();
    packages = new PackageFiles(blobs, createLogSink().logger);
  });
  afterEach(async () => {
    await packages.drain();
    await rm(dir, { recursive: true, force: true });
  });

  it('cached() is undefined for a package nobody stored', async () => {
    expect(await packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET')).toBeUndefined();
  });

  it('concurrent fetches make one download; every caller gets the exact bytes; then cached() has it in memory', async () => {
    const source = new BytesSource('up', files);
    const handles = await Promise.all(Array.from({ length: 5 }, () => packages.fetch('pkg.one', '1.0.0', 'nupkg', 'GET', source)));
    expect(source.opened).toBe(1);
    expect(handles.map((h) => h?.outcome).sort()).toEqual(['miss', 'shared', 'shared', 'shared', 'shared']);
    for (const h of handles) expect((await bodyOf(h))?.equals(nupkg)).toBe(true);
    await packages.drain();
    const hit = await packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET');
    expect(hit).toMatchObject({ kind: 'file', outcome: 'hit', upstream: 'up' });
    expect((await bodyOf(hit))?.equals(nupkg)).toBe(true);
    expect(source.opened).toBe(1);
  });

  it('a hit from the memory tier is still a read the store sees (eviction must not take a package in use)', async () => {
    const source = new BytesSource('up', files);
    await bodyOf(await packages.fetch('pkg.one', '1.0.0', 'nupkg', 'GET', source));
    await packages.drain();
    await bodyOf(await packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET')); // read into the memory tier
    blobs.takeReads();
    const hit = await packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET');
    expect(hit).toMatchObject({ kind: 'file', outcome: 'hit' });
    expect(hit?.kind === 'file' && hit.bytes?.equals(nupkg)).toBe(true); // from memory, not the store
    expect(blobs.takeReads()).toEqual(['packages/pkg.one/1.0.0/pkg.one.1.0.0.nupkg']);
  });

  it('cached() joins a download under way in this process without asking any upstream', async () => {
    const source = new BytesSource('up', files);
    const open = deferred();
    source.gate = open.promise;
    const first = packages.fetch('pkg.one', '1.0.0', 'nupkg', 'GET', source);
    // small packages are answered once verified: the download is under way (registered) before that
    await waitFor('the download under way', () => packages.active === 1);
    const joined = packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET');
    open.resolve();
    const [a, b] = await Promise.all([first, joined]);
    expect(a?.outcome).toBe('miss');
    expect(b?.outcome).toBe('shared');
    expect((await bodyOf(b))?.equals(nupkg)).toBe(true);
    expect(source.opened).toBe(1);
  });

  it('a fetch after the file was stored (since the caller asked cached) serves it instead of fetching again', async () => {
    const source = new BytesSource('up', files);
    await bodyOf(await packages.fetch('pkg.one', '1.0.0', 'nupkg', 'GET', source));
    await packages.drain();
    const again = await packages.fetch('pkg.one', '1.0.0', 'nupkg', 'GET', source);
    expect(again).toMatchObject({ kind: 'file', outcome: 'hit' });
    expect(source.opened).toBe(1);
  });

  it('is undefined when the source lacks the file or has no flat container; nothing is stored', async () => {
    expect(await packages.fetch('pkg.two', '1.0.0', 'nupkg', 'GET', new BytesSource('up', files))).toBeUndefined();
    expect(await packages.fetch('pkg.one', '1.0.0', 'nupkg', 'GET', new BytesSource('flatless', undefined))).toBeUndefined();
    expect(await packages.cached('pkg.two', '1.0.0', 'nupkg', 'GET')).toBeUndefined();
    expect(await packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET')).toBeUndefined();
  });

  it('a HEAD miss asks the source and stores nothing', async () => {
    const source = new BytesSource('up', files);
    expect(await packages.fetch('pkg.one', '1.0.0', 'nupkg', 'HEAD', source)).toEqual({ kind: 'head', length: nupkg.length, outcome: 'bypass', upstream: 'up' });
    expect(await packages.cached('pkg.one', '1.0.0', 'nupkg', 'GET')).toBeUndefined();
  });
});
