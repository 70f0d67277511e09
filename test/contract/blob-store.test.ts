import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { SingleFlight } from '../../src/cache/single-flight.js';
import { EventEmitter } from 'node:events';
import { NuproxyError } from '../../src/errors.js';
import { BAD_KEYS, blobStoreContract, sha512b64, type BlobStoreFixture } from './blob-store.contract.js';

/** Every file and directory under `dir`, relative, sorted; the temp directory itself is not listed, its contents are. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map((e) => e.split('\\').join('/')).filter((e) => e !== '.tmp').sort();
}

async function makeFsFixture(): Promise<BlobStoreFixture> {
  const base = await mkdtemp(join(tmpdir(), 'nuproxy-blob-'));
  const root = join(base, 'store');
  const store = new FsBlobStore(root);
  await store.init();
  return {
    store,
    listAll: () => listTree(root),
    readBlob: async (key) => {
      try {
        return await readFile(store.pathOf(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    plantLeftovers: async (n) => {
      for (let i = 0; i < n; i++) {
        if (i % 2 === 1) await mkdir(join(root, '.tmp', `leftover-dir-${i}`, 'nested'), { recursive: true });
        else await writeFile(join(root, '.tmp', `leftover-${i}.part`), 'partial');
      }
    },
    reopen: () => new FsBlobStore(root),
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
}

blobStoreContract('fs', makeFsFixture);

describe('FsBlobStore specifics', () => {
  let base: string;
  let store: FsBlobStore;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'nuproxy-blob-fs-'));
    store = new FsBlobStore(join(base, 'inner', 'store'));
    await store.init();
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it.each(BAD_KEYS)('pathOf refuses a key with %s, and nothing appears next to the root either', (_label, key) => {
    let caught: unknown;
    try {
      store.pathOf(key);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NuproxyError);
    expect((caught as NuproxyError).code).toBe('BAD_REQUEST');
  });

  it('refused keys create nothing anywhere under the base directory', async () => {
    for (const [, key] of BAD_KEYS) {
      expect(() => store.createWriter(key)).toThrow(NuproxyError);
      await expect(store.stat(key)).rejects.toBeInstanceOf(NuproxyError);
    }
    expect(await listTree(base)).toEqual(['inner', 'inner/store', 'inner/store/.tmp']);
  });

  it('pathOf maps a key to a file inside the root', () => {
    expect(store.pathOf('a/b/c.nupkg')).toBe(join(store.root, 'a', 'b', 'c.nupkg'));
  });

  it('keeps the layout existing caches and bundles have: the blob at its key, its record in a .meta sidecar', async () => {
    expect(store.kind).toBe('disk');
    expect(store.location).toBe(store.root);
    const bytes = Buffer.from('{"index":true}');
    await store.put('vulnerabilities/index.json', bytes, { upstream: 'up' });
    expect((await readFile(join(store.root, 'vulnerabilities', 'index.json'))).equals(bytes)).toBe(true);
    const meta = JSON.parse(await readFile(join(store.root, 'vulnerabilities', 'index.json.meta'), 'utf8')) as unknown;
    expect(meta).toEqual({ sha512: sha512b64(bytes), upstream: 'up' });
    expect(await store.list('vulnerabilities')).toEqual(['index.json']); // sidecars are not names
  });

  it('a blob an old version stored without a sidecar: stat without a hash; import compares its bytes', async () => {
    const key = 'packages/old/1.0.0/old.1.0.0.nupkg';
    const bytes = Buffer.from('old bytes');
    await mkdir(join(store.root, 'packages', 'old', '1.0.0'), { recursive: true });
    await writeFile(store.pathOf(key), bytes);
    const info = await store.stat(key);
    expect(info).toMatchObject({ size: bytes.length });
    expect(info?.sha512).toBeUndefined();
    const same = await store.import(key, (async function* () { yield bytes; })(), {});
    expect(same.size).toBe(bytes.length);
    const err = await store.import(key, (async function* () { yield Buffer.from('new bytes'); })(), {}).catch((e: unknown) => e);
    expect((err as NuproxyError).code).toBe('CONFLICT');
    expect((await readFile(store.pathOf(key))).equals(bytes)).toBe(true);
  });

  it('followShared opens nothing but a temp file of the store: any other reference is BAD_REQUEST', () => {
    const events = new EventEmitter();
    for (const ref of ['../vulnerabilities/index.json', '/etc/passwd', 'host-0123456789abcdef.part/../../x', 'x.part', '']) {
      let caught: unknown;
      try {
        store.followShared(ref, 0, { limit: () => 1, finished: () => true, events });
      } catch (err) {
        caught = err;
      }
      expect((caught as NuproxyError).code, ref).toBe('BAD_REQUEST');
    }
  });
});

describe('SingleFlight', () => {
  it('shares one promise among concurrent callers and frees the key after it resolves', async () => {
    const sf = new SingleFlight<number>();
    let calls = 0;
    let release!: (v: number) => void;
    const fn = (): Promise<number> => {
      calls++;
      return new Promise<number>((r) => (release = r));
    };
    const a = sf.run('k', fn);
    const b = sf.run('k', fn);
    const c = sf.run('k', fn);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(calls).toBe(1);
    expect(sf.size).toBe(1);
    release(42);
    expect(await Promise.all([a, b, c])).toEqual([42, 42, 42]);
    expect(sf.size).toBe(0);
    const d = sf.run('k', async () => {
      calls++;
      return 7;
    });
    expect(d).not.toBe(a);
    expect(await d).toBe(7);
    expect(calls).toBe(2);
    expect(sf.size).toBe(0);
  });

  it('frees the key after a rejection, and every caller sees the same error', async () => {
    const sf = new SingleFlight<string>();
    const boom = new Error('boom');
    let calls = 0;
    const fail = async (): Promise<string> => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      throw boom;
    };
    const a = sf.run('k', fail);
    const b = sf.run('k', fail);
    expect(b).toBe(a);
    await expect(a).rejects.toBe(boom);
    await expect(b).rejects.toBe(boom);
    expect(calls).toBe(1);
    expect(sf.size).toBe(0);
    await expect(sf.run('k', async () => 'ok')).resolves.toBe('ok');
  });

  it('a synchronous throw is a rejection and frees the key', async () => {
    const sf = new SingleFlight<string>();
    const p = sf.run('k', () => {
      throw new Error('sync');
    });
    await expect(p).rejects.toThrow('sync');
    expect(sf.size).toBe(0);
  });

  it('runs different keys independently', async () => {
    const sf = new SingleFlight<string>();
    const a = sf.run('a', async () => 'A');
    const b = sf.run('b', async () => 'B');
    expect(b).not.toBe(a);
    expect(sf.size).toBe(2);
    expect(await Promise.all([a, b])).toEqual(['A', 'B']);
    expect(sf.size).toBe(0);
  });
});
