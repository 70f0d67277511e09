// Advisories across an air gap (issue #16): `nuproxy export` carries state/advisories.json, `nuproxy import`
// merges it into the target cache's own advisories by advisory id (never overwriting what the target imported
// itself), and refuses a bundle whose advisories document is not valid, storing nothing.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLE_FORMAT, BundleRefused, exportBundle, importBundle } from '../../src/cli/bundle.js';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { ADVISORIES_KEY, importAdvisories, loadAdvisories } from '../../src/policy/advisory-store.js';
import { parseOsvValue } from '../../src/policy/osv.js';
import { malEntry } from '../support/osv.js';

async function store(dir: string): Promise<FsBlobStore> {
  const blobs = new FsBlobStore(dir);
  await blobs.init({ sweep: false });
  return blobs;
}

async function writeTar(path: string, files: { name: string; data: Buffer }[]): Promise<void> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const f of files) await new Promise<void>((resolve, reject) => p.entry({ name: f.name }, f.data, (err) => (err ? reject(err) : resolve())));
  p.finalize();
  await collected;
  await writeFile(path, Buffer.concat(chunks));
}

describe('bundles carry advisories', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-bundle-adv-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('export carries them; import merges them with the target\'s own by advisory id', async () => {
    const source = join(dir, 'source');
    const target = join(dir, 'target');
    await importAdvisories(await store(source), parseOsvValue([malEntry('MAL-1', 'Bad.One'), malEntry('MAL-2', 'Bad.Two', { modified: '2025-05-01T00:00:00Z' })], 'src.json'));
    // the target already has an older MAL-2 and one of its own
    await importAdvisories(await store(target), parseOsvValue([malEntry('MAL-2', 'Bad.Two', { modified: '2024-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'NuGet', name: 'Bad.Two' }, versions: ['0.1.0'] }] }), malEntry('MAL-7', 'Local.Bad')], 'tgt.json'));

    const bundle = join(dir, 'out.tar');
    const exported = await exportBundle(source, bundle);
    expect(exported.advisories).toBe(2);
    expect(exported.problems).toEqual([]);

    const imported = await importBundle(target, bundle);
    expect(imported.advisories).toEqual({ added: 1, updated: 1, total: 3 });
    const set = await loadAdvisories(await store(target));
    expect([...set.advisories.keys()].sort()).toEqual(['MAL-1', 'MAL-2', 'MAL-7']);
    expect(set.match('bad.two', '1.0.0')?.id).toBe('MAL-2'); // the newer MAL-2 (from the bundle) won
    expect(set.match('bad.two', '0.1.0')).toBeUndefined();
    expect(set.match('local.bad', '1.0.0')?.id).toBe('MAL-7'); // the target's own stays

    // importing the same bundle again changes nothing
    expect((await importBundle(target, bundle)).advisories).toEqual({ added: 0, updated: 0, total: 3 });
  });

  it('a cache without advisories exports none', async () => {
    const source = join(dir, 'empty');
    await store(source);
    const exported = await exportBundle(source, join(dir, 'none.tar'));
    expect(exported.advisories).toBe(0);
    expect((await importBundle(join(dir, 'fresh'), join(dir, 'none.tar'))).advisories).toBeUndefined();
  });

  it('a bundle whose advisories document is not valid is refused whole, and the target keeps what it had', async () => {
    const target = join(dir, 'target');
    await importAdvisories(await store(target), parseOsvValue(malEntry('MAL-7', 'Local.Bad'), 'tgt.json'));
    const bad = Buffer.from(JSON.stringify({ v: 1, advisories: [{ id: 'MAL-9', affected: 'everything' }] }));
    const manifest = {
      format: BUNDLE_FORMAT,
      created: new Date().toISOString(),
      files: [{ path: ADVISORIES_KEY, size: bad.length, sha512: createHash('sha512').update(bad).digest('base64') }],
      packages: [],
    };
    const bundle = join(dir, 'bad.tar');
    await writeTar(bundle, [
      { name: ADVISORIES_KEY, data: bad },
      { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) },
    ]);
    const err = await importBundle(target, bundle).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleRefused);
    expect((err as BundleRefused).problems).toEqual([expect.stringMatching(/^state\/advisories\.json: .*not an OSV advisory/)]);
    expect([...(await loadAdvisories(await store(target))).advisories.keys()]).toEqual(['MAL-7']);
  });
});
