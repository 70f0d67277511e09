// `nuproxy export` / `nuproxy import`: a cache filled by a real proxy, carried in a bundle to a fresh cache dir,
// and served from there by a proxy whose only upstream is unreachable.
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleRefused, exportBundle, exportCommand, importBundle, importCommand, type BundleManifest } from '../../src/cli/bundle.js';
import type { CliContext } from '../../src/cli/context.js';
import { validateConfig } from '../../src/config/load.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { createLogSink } from '../support/log-sink.js';

const sha512 = (b: Uint8Array): string => createHash('sha512').update(b).digest('base64');

interface TarEntry {
  header: Header;
  data: Buffer;
}

async function readTar(buf: Buffer): Promise<TarEntry[]> {
  const ex = tarExtract();
  const out: TarEntry[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(buf);
  await done;
  return out;
}

async function writeTar(path: string, entries: { header: Partial<Header> & { name: string }; data?: Buffer }[]): Promise<void> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.data) p.entry(e.header, e.data, cb);
      else p.entry(e.header, cb).end(undefined);
    });
  }
  p.finalize();
  await collected;
  await writeFile(path, Buffer.concat(chunks));
}

/** Relative paths of every file under dir (recursive), sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

async function waitFor(path: string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 25));
  expect(existsSync(path), path).toBe(true);
}

function capture(isTTY = false): NodeJS.WritableStream & { isTTY?: boolean; columns?: number; text(): string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number; text(): string };
  w.isTTY = isTTY;
  w.columns = 120;
  w.text = () => chunks.join('');
  return w;
}

function cliContext(cacheDir: string, upstreamIndex: string, cwd: string, tty = false): CliContext & { out: ReturnType<typeof capture>; err: ReturnType<typeof capture> } {
  const loaded = validateConfig(
    {
      listen: { host: '127.0.0.1', port: 0 },
      cache: { dir: cacheDir },
      upstreams: [{ name: 'up0', serviceIndex: upstreamIndex, retries: 0, timeouts: { connect: '2s', headers: '5s', body: '5s' } }],
    },
    {},
    'test',
  );
  const out = capture();
  const err = capture(tty);
  return { loaded, logger: createLogSink().logger, stdout: out, stderr: err, cwd, out, err };
}

const pkgs = {
  alpha: { id: 'Contoso.Alpha', version: '1.0.0' },
  beta: { id: 'Contoso.Beta', version: '2.1.0-rc.1' },
  big: { id: 'Big.Bundle', version: '1.0.0' },
  late: { id: 'Late.Add', version: '3.0.0' },
};
const rel = (p: { id: string; version: string }, file: 'nupkg' | 'nuspec'): string => {
  const id = p.id.toLowerCase();
  const v = p.version.toLowerCase();
  return `packages/${id}/${v}/${file === 'nupkg' ? `${id}.${v}.nupkg` : `${id}.nuspec`}`;
};

describe('export and import bundles (air gap)', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let work: string;
  let cacheDir: string;
  let bundle1: string;
  const bytes = new Map<string, Uint8Array>();

  const fetchPackage = async (p: { id: string; version: string }): Promise<void> => {
    for (const file of ['nuspec', 'nupkg'] as const) {
      const path = rel(p, file);
      const r = await get(`${proxy.url}v3/flat/${path.slice('packages/'.length)}`);
      expect(r.status, path).toBe(200);
      await waitFor(join(cacheDir, path));
      await waitFor(join(cacheDir, `${path}.meta`));
    }
  };
  const freshDir = (name: string): Promise<string> => mkdtemp(join(work, `${name}-`));

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-bundle-'));
    cacheDir = join(work, 'cache');
    for (const [k, p] of Object.entries(pkgs)) bytes.set(k, makeNupkg({ ...p, ...(k === 'big' ? { padBytes: 3 * 1024 * 1024 } : {}) }));
    upstream = await startTestUpstream({
      packages: [...bytes.values()],
      vulnerabilities: { 'contoso.alpha': [{ severity: 2, url: 'https://github.com/advisories/GHSA-bundle', versions: '[1.0.0, 1.1.0)' }] },
    });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], cacheDir });
    for (const p of [pkgs.alpha, pkgs.beta, pkgs.big]) await fetchPackage(p);
    bundle1 = join(work, 'out', 'bundle1.tar');
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const first = [pkgs.alpha, pkgs.beta, pkgs.big].flatMap((p) => [rel(p, 'nuspec'), rel(p, 'nupkg')]);

  it('exports the cached packages, their nuspecs and the vulnerability data, with the manifest last and beside the bundle', async () => {
    const summary = await exportBundle(proxy, bundle1);
    expect(summary).toMatchObject({ files: 8, packages: 3, unchanged: 0, problems: [], vulnerabilities: { documents: 2 } });
    expect(existsSync(`${bundle1}.partial`)).toBe(false);
    expect(summary.manifest).toBe(`${bundle1}.manifest.json`);

    const entries = await readTar(await readFile(bundle1));
    expect(entries.every((e) => e.header.type === 'file')).toBe(true);
    expect(entries.at(-1)!.header.name).toBe('manifest.json');
    const manifestText = entries.at(-1)!.data.toString('utf8');
    expect(await readFile(summary.manifest, 'utf8')).toBe(manifestText);
    const manifest = JSON.parse(manifestText) as BundleManifest;
    expect(manifest.format).toBe('nuproxy-bundle/1');
    expect(manifest.packages).toEqual(
      expect.arrayContaining([
        { id: 'contoso.alpha', version: '1.0.0' },
        { id: 'contoso.beta', version: '2.1.0-rc.1' },
        { id: 'big.bundle', version: '1.0.0' },
      ]),
    );
    const paths = manifest.files.map((f) => f.path);
    expect(paths.filter((p) => p.startsWith('packages/')).sort()).toEqual([...first].sort());
    expect(paths).toContain('vulnerabilities/index.json');
    const page = paths.find((p) => /^vulnerabilities\/[^/]+\/[^/]+\.json$/.test(p));
    expect(page).toBeDefined();

    // every file: the bytes in the tar are the cached bytes, hashed as the sidecar says
    for (const f of manifest.files) {
      const entry = entries.find((e) => e.header.name === f.path)!;
      expect(entry.data.length).toBe(f.size);
      expect(sha512(entry.data)).toBe(f.sha512);
      if (f.path.startsWith('packages/')) {
        expect(entry.data.equals(await readFile(join(cacheDir, f.path)))).toBe(true);
        expect(JSON.parse(await readFile(join(cacheDir, `${f.path}.meta`), 'utf8')).sha512).toBe(f.sha512);
      }
    }
    expect(entries.find((e) => e.header.name === rel(pkgs.big, 'nupkg'))!.data.equals(Buffer.from(bytes.get('big')!))).toBe(true);
    // vulnerability documents as the feed renders them: placeholder base URL, page links to the page in the bundle
    const index = entries.find((e) => e.header.name === 'vulnerabilities/index.json')!.data.toString('utf8');
    expect(index).toContain(`https://nuproxy.invalid/v3/${page}`);
    expect(entries.find((e) => e.header.name === page)!.data.toString('utf8')).toContain('GHSA-bundle');
  });

  it('imports into a fresh cache: byte-identical files, sidecars with the hash, vulnerability documents, no staging left', async () => {
    const fresh = await freshDir('fresh');
    const staging = await freshDir('staging');
    // the entries are staged where the caller says (not in the store), and nothing is left there
    const seen = new Set<string>();
    const watch = { start() {}, update: () => readdirSync(staging).forEach((n) => seen.add(n)), end() {} };
    const summary = await importBundle(fresh, bundle1, { stagingDir: staging, progress: watch });
    expect([...seen]).toEqual([expect.stringMatching(/^nuproxy-import-/)]);
    expect(await readdir(staging)).toEqual([]);
    expect(summary).toMatchObject({ files: 8, packages: 3, newFiles: 8, presentFiles: 0, newPackages: 3, vulnerabilityDocuments: 2, conflicts: [] });
    expect(summary.bytes).toBeGreaterThan(3 * 1024 * 1024);
    const manifest = JSON.parse(await readFile(`${bundle1}.manifest.json`, 'utf8')) as BundleManifest;
    for (const f of manifest.files) {
      const got = await readFile(join(fresh, f.path));
      expect(sha512(got), f.path).toBe(f.sha512);
      if (f.path.startsWith('packages/')) {
        expect(got.equals(await readFile(join(cacheDir, f.path)))).toBe(true);
        expect(JSON.parse(await readFile(join(fresh, `${f.path}.meta`), 'utf8'))).toEqual({ sha512: f.sha512, upstream: 'import' });
      }
    }
    expect(await readdir(join(fresh, '.tmp'))).toEqual([]);

    // a second import finds everything in place
    const again = await importBundle(fresh, bundle1);
    expect(again).toMatchObject({ files: 8, newFiles: 0, presentFiles: 8, newPackages: 0 });
    expect(await readdir(join(fresh, '.tmp'))).toEqual([]);
  });

  it('serves the imported packages through a proxy with no upstream at all; its own export says there is no vulnerability data to ask for', async () => {
    const fresh = await freshDir('offline');
    await importBundle(fresh, bundle1);
    const offline = await startTestProxy({
      cacheDir: fresh,
      upstreams: [{ name: 'gone', serviceIndex: 'http://127.0.0.1:9/v3/index.json', retries: 0, timeouts: { connect: '1s', headers: '1s', body: '1s' } }],
    });
    try {
      for (const [k, p] of [['alpha', pkgs.alpha], ['big', pkgs.big]] as const) {
        const r = await get(`${offline.url}v3/flat/${rel(p, 'nupkg').slice('packages/'.length)}`);
        expect(r.status).toBe(200);
        expect(r.body.equals(Buffer.from(bytes.get(k)!))).toBe(true);
      }
      const nuspec = await get(`${offline.url}v3/flat/${rel(pkgs.beta, 'nuspec').slice('packages/'.length)}`);
      expect(nuspec.status).toBe(200);
      expect(nuspec.text).toContain('<id>Contoso.Beta</id>');

      const again = await exportBundle(offline, join(work, 'out', 'from-offline.tar'));
      expect(again).toMatchObject({ files: 6, packages: 3, problems: [], vulnerabilities: { documents: 0 } });
      expect(again.vulnerabilities.note).toMatch(/^none exported/);
    } finally {
      await offline.stop();
    }
  });

  it('--since writes only what the earlier bundle lacked', async () => {
    await fetchPackage(pkgs.late);
    const bundle2 = join(work, 'out', 'bundle2.tar');
    const summary = await exportBundle(proxy, bundle2, { since: [`${bundle1}.manifest.json`], manifestPath: join(work, 'out', 'm2.json') });
    expect(summary).toMatchObject({ files: 2, packages: 1, unchanged: 8, problems: [], vulnerabilities: { documents: 0 } });
    const manifest = JSON.parse(await readFile(join(work, 'out', 'm2.json'), 'utf8')) as BundleManifest;
    expect(manifest.files.map((f) => f.path)).toEqual([rel(pkgs.late, 'nuspec'), rel(pkgs.late, 'nupkg')]);
    expect(manifest.packages).toEqual([{ id: 'late.add', version: '3.0.0' }]);
    expect((await readTar(await readFile(bundle2))).map((e) => e.header.name)).toEqual([rel(pkgs.late, 'nuspec'), rel(pkgs.late, 'nupkg'), 'manifest.json']);

    // the two bundles together carry the whole cache
    const fresh = await freshDir('chain');
    await importBundle(fresh, bundle1);
    expect(await importBundle(fresh, bundle2)).toMatchObject({ newFiles: 2, presentFiles: 0, newPackages: 1 });
    expect((await filesUnder(join(fresh, 'packages'))).filter((f) => !f.endsWith('.meta'))).toEqual(
      (await filesUnder(join(cacheDir, 'packages'))).filter((f) => !f.endsWith('.meta')),
    );
    // and with both manifests as the base, there is nothing left to export
    const empty = await exportBundle(proxy, join(work, 'out', 'bundle3.tar'), { since: [`${bundle1}.manifest.json`, join(work, 'out', 'm2.json')] });
    expect(empty).toMatchObject({ files: 0, packages: 0, unchanged: 10 });
  });

  it('refuses a bundle with one flipped byte in a package, whole: nothing enters the cache, no staging is left', async () => {
    const buf = await readFile(bundle1);
    const big = Buffer.from(bytes.get('big')!);
    const at = buf.indexOf(big.subarray(100_000, 100_064));
    expect(at).toBeGreaterThan(0);
    buf[at + 10] = buf[at + 10]! ^ 0xff;
    const bad = join(work, 'flipped.tar');
    await writeFile(bad, buf);
    const fresh = await freshDir('flipped');
    const staging = await freshDir('flipped-staging');
    const err = await importBundle(fresh, bad, { stagingDir: staging }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleRefused);
    expect((err as BundleRefused).message).toBe(`bundle refused: ${rel(pkgs.big, 'nupkg')}: SHA-512 mismatch`);
    expect(await filesUnder(join(fresh, 'packages'))).toEqual([]);
    expect(await filesUnder(join(fresh, 'vulnerabilities'))).toEqual([]);
    expect(await readdir(join(fresh, '.tmp'))).toEqual([]);
    expect(await readdir(staging)).toEqual([]);
  });

  it('refuses a truncated bundle (mid-entry, or cut before the manifest)', async () => {
    const buf = await readFile(bundle1);
    const fresh = await freshDir('truncated');
    await writeFile(join(work, 'half.tar'), buf.subarray(0, Math.floor(buf.length / 2)));
    await expect(importBundle(fresh, join(work, 'half.tar'))).rejects.toThrow(/^bundle refused: not a complete tar/);
    // cut exactly where the manifest's header begins: every entry before it is whole
    const manifestHeader = buf.indexOf(Buffer.from('manifest.json\0'));
    expect(manifestHeader % 512).toBe(0);
    await writeFile(join(work, 'nomanifest.tar'), buf.subarray(0, manifestHeader));
    await expect(importBundle(fresh, join(work, 'nomanifest.tar'))).rejects.toThrow(/^bundle refused: no manifest\.json/);
    await writeFile(join(work, 'empty.tar'), Buffer.alloc(0));
    await expect(importBundle(fresh, join(work, 'empty.tar'))).rejects.toThrow(/^bundle refused: no manifest\.json/);
    expect(await filesUnder(fresh)).toEqual([]);
  });

  it('refuses entries outside packages/ and vulnerabilities/, links and anything but regular files', async () => {
    const fresh = await freshDir('evil');
    const nupkg = Buffer.from(bytes.get('alpha')!);
    const alpha = rel(pkgs.alpha, 'nupkg');
    const cases: [string, { header: Partial<Header> & { name: string }; data?: Buffer }][] = [
      ['../evil', { header: { name: '../evil' }, data: Buffer.from('x') }],
      ['/etc/x', { header: { name: '/etc/x' }, data: Buffer.from('x') }],
      ['packages/../../evil', { header: { name: 'packages/../../evil' }, data: Buffer.from('x') }],
      ['symlink', { header: { name: alpha, type: 'symlink', linkname: '/etc/passwd' } }],
      ['link', { header: { name: alpha, type: 'link', linkname: 'packages/x/1.0.0/x.1.0.0.nupkg' } }],
      ['directory', { header: { name: 'packages/contoso.alpha/', type: 'directory' } }],
      ['sidecar', { header: { name: `${alpha}.meta` }, data: Buffer.from('{}') }],
      ['upper case', { header: { name: 'packages/Contoso.Alpha/1.0.0/Contoso.Alpha.1.0.0.nupkg' }, data: nupkg }],
      ['wrong file name', { header: { name: 'packages/contoso.alpha/1.0.0/other.1.0.0.nupkg' }, data: nupkg }],
    ];
    for (const [label, entry] of cases) {
      const file = join(work, `evil-${label.replace(/\W+/g, '_')}.tar`);
      // a real, valid package entry first: it must not end up in the cache either
      await writeTar(file, [{ header: { name: alpha }, data: nupkg }, entry]);
      const err = await importBundle(fresh, file).catch((e: unknown) => e);
      expect(err, label).toBeInstanceOf(BundleRefused);
      expect((err as Error).message, label).toMatch(/^bundle refused: "/);
    }
    expect(await filesUnder(fresh)).toEqual([]);
    expect(existsSync(join(work, 'evil'))).toBe(false);
    expect(existsSync(join(fresh, 'evil'))).toBe(false);
  });

  it('refuses a bundle whose manifest and entries disagree (missing, extra, duplicate, wrong size, not a zip, another package)', async () => {
    const entries = await readTar(await readFile(bundle1));
    const manifest = JSON.parse(entries.at(-1)!.data.toString('utf8')) as BundleManifest;
    const files = entries.slice(0, -1);
    const alpha = rel(pkgs.alpha, 'nupkg');
    const mk = (m: BundleManifest): { header: { name: string }; data: Buffer } => ({ header: { name: 'manifest.json' }, data: Buffer.from(JSON.stringify(m)) });
    const fresh = await freshDir('disagree');
    const notZip = Buffer.from('this is not a zip file at all, not even close');
    const evil = Buffer.from(makeNupkg({ id: 'Evil.Other', version: '6.6.6' })); // a good zip under another package's name

    const variants: [string, { header: Partial<Header> & { name: string }; data?: Buffer }[], RegExp][] = [
      ['missing', [...files.filter((e) => e.header.name !== alpha), entries.at(-1)!], new RegExp(`${alpha}: listed in the manifest but missing`)],
      ['extra', [...files, mk({ ...manifest, files: manifest.files.filter((f) => f.path !== alpha) })], new RegExp(`${alpha}: in the bundle but not in the manifest`)],
      ['duplicate', [...files, files[files.length - 1]!, entries.at(-1)!], /appears twice/],
      ['size', [...files, mk({ ...manifest, files: manifest.files.map((f) => (f.path === alpha ? { ...f, size: f.size + 1 } : f)) })], /bytes, the manifest says/],
      [
        'not a zip',
        [...files.filter((e) => e.header.name !== alpha), { header: { name: alpha }, data: notZip }, mk({ ...manifest, files: manifest.files.map((f) => (f.path === alpha ? { ...f, size: notZip.length, sha512: sha512(notZip) } : f)) })],
        /not a complete zip/,
      ],
      [
        'another identity',
        [...files.filter((e) => e.header.name !== alpha), { header: { name: alpha }, data: evil }, mk({ ...manifest, files: manifest.files.map((f) => (f.path === alpha ? { ...f, size: evil.length, sha512: sha512(evil) } : f)) })],
        /whose nuspec names another id than contoso\.alpha/,
      ],
      ['bad manifest', [...files, { header: { name: 'manifest.json' }, data: Buffer.from('{"format":"other"}') }], /manifest\.json: not a nuproxy-bundle\/1 manifest/],
    ];
    for (const [label, tarEntries, expected] of variants) {
      const file = join(work, `disagree-${label.replace(/\W+/g, '_')}.tar`);
      await writeTar(file, tarEntries.map((e) => ({ header: { name: e.header.name }, ...(e.data ? { data: e.data } : {}) })));
      await expect(importBundle(fresh, file), label).rejects.toThrow(expected);
    }
    expect(await filesUnder(fresh)).toEqual([]);
  });

  it('reports cached files that no longer match their sidecar (and blobs without one), leaves them out, and still writes a good bundle', async () => {
    const damaged = join(work, 'damaged-cache');
    await cp(cacheDir, damaged, { recursive: true });
    // flip one byte in two cached packages, after their sidecars were written; drop one nuspec's sidecar
    for (const p of [pkgs.alpha, pkgs.big]) {
      const file = join(damaged, rel(p, 'nupkg'));
      const b = await readFile(file);
      b[Math.floor(b.length / 2)] = b[Math.floor(b.length / 2)]! ^ 0x01;
      await writeFile(file, b);
    }
    await rm(join(damaged, `${rel(pkgs.beta, 'nuspec')}.meta`));
    // and some things export must never pick up
    await mkdir(join(damaged, '.tmp'), { recursive: true });
    await writeFile(join(damaged, '.tmp', 'abc.part'), 'partial');
    await writeFile(join(damaged, 'packages', 'contoso.beta', '2.1.0-rc.1', 'stray.txt'), 'stray');

    const out = join(work, 'out', 'damaged.tar');
    const summary = await exportBundle(damaged, out);
    expect(summary.problems.map((p) => p.path).sort()).toEqual([rel(pkgs.beta, 'nuspec'), rel(pkgs.alpha, 'nupkg'), rel(pkgs.big, 'nupkg')].sort());
    expect(summary.problems.find((p) => p.path === rel(pkgs.alpha, 'nupkg'))!.problem).toMatch(/cache corruption/);
    expect(summary.problems.find((p) => p.path === rel(pkgs.beta, 'nuspec'))!.problem).toMatch(/no \.meta sidecar/);
    expect(summary.vulnerabilities).toEqual({ documents: 0, note: 'not exported (no feed to ask)' });
    const manifest = JSON.parse(await readFile(summary.manifest, 'utf8')) as BundleManifest;
    expect(manifest.files.map((f) => f.path).sort()).toEqual(
      [rel(pkgs.alpha, 'nuspec'), rel(pkgs.beta, 'nupkg'), rel(pkgs.big, 'nuspec'), rel(pkgs.late, 'nuspec'), rel(pkgs.late, 'nupkg')].sort(),
    );
    expect(manifest.packages.map((p) => p.id).sort()).toEqual(['contoso.beta', 'late.add']);
    expect(existsSync(`${out}.partial`)).toBe(false);
    // what it wrote imports cleanly
    const fresh = await freshDir('from-damaged');
    expect(await importBundle(fresh, out)).toMatchObject({ files: 5, newFiles: 5 });
  });

  it('a damaged file in the cache being imported into is replaced; a different valid one is kept and reported', async () => {
    const fresh = await freshDir('replace');
    await importBundle(fresh, bundle1);
    const alpha = join(fresh, rel(pkgs.alpha, 'nupkg'));
    const good = await readFile(alpha);
    const damaged = Buffer.from(good);
    damaged[20] = damaged[20]! ^ 0xff;
    await writeFile(alpha, damaged); // sidecar still has the good hash: the file is corrupt
    const betaFile = join(fresh, rel(pkgs.beta, 'nupkg'));
    const other = Buffer.from(makeNupkg({ id: 'Contoso.Beta', version: '2.1.0-rc.1', description: 'another build' }));
    await writeFile(betaFile, other);
    await writeFile(`${betaFile}.meta`, JSON.stringify({ sha512: sha512(other), upstream: 'elsewhere' }));

    const summary = await importBundle(fresh, bundle1);
    expect(summary).toMatchObject({ newFiles: 1, presentFiles: 6, conflicts: [rel(pkgs.beta, 'nupkg')] });
    expect((await readFile(alpha)).equals(good)).toBe(true);
    expect((await readFile(betaFile)).equals(other)).toBe(true);
  });

  describe('the commands', () => {
    it('nuproxy export / import: progress lines every ~10% on a pipe, --json summaries on stdout', async () => {
      const ctx = cliContext(cacheDir, upstream.serviceIndexUrl, work);
      expect(await exportCommand(['out/cli.tar', '--json'], ctx)).toBe(0);
      const summary = JSON.parse(ctx.out.text()) as { files: number; packages: number; bundle: string };
      expect(summary).toMatchObject({ files: 10, packages: 4, bundle: join(work, 'out', 'cli.tar') });
      const lines = ctx.err.text().trim().split('\n');
      expect(lines[0]).toMatch(/^export: 0% of /);
      expect(lines.at(-1)).toMatch(/^export: 100% /);
      expect(lines.length).toBeGreaterThanOrEqual(5);
      expect(lines.length).toBeLessThanOrEqual(12);
      expect(ctx.err.text()).not.toContain('\r');

      const fresh = await freshDir('cli');
      const ictx = cliContext(fresh, 'http://127.0.0.1:9/v3/index.json', work);
      expect(await importCommand(['out/cli.tar', '--json', '--manifest', 'out/cli.tar.manifest.json'], ictx)).toBe(0);
      expect(JSON.parse(ictx.out.text())).toMatchObject({ files: 10, packages: 4, newFiles: 10, presentFiles: 0, cacheDir: fresh });
      expect(ictx.err.text()).toMatch(/^import: reading and checking: 0% /);

      // human summary and a redrawn bar on a terminal
      const tctx = cliContext(fresh, 'http://127.0.0.1:9/v3/index.json', work, true);
      expect(await importCommand([join(work, 'out', 'cli.tar')], tctx)).toBe(0);
      expect(tctx.out.text()).toMatch(/^imported .*cli\.tar into .*: 10 files \(4 packages, [\d.]+ MB\), 0 new, 10 already present; 0 new packages, 2 vulnerability documents\n$/);
      expect(tctx.err.text()).toContain('\r\x1b[Kimport: reading and checking [');
      expect(tctx.err.text()).toMatch(/100% .*\n$/);

      const qctx = cliContext(cacheDir, upstream.serviceIndexUrl, work);
      expect(await exportCommand(['out/quiet.tar', '--quiet', '--since', 'out/cli.tar.manifest.json'], qctx)).toBe(0);
      expect(qctx.out.text() + qctx.err.text()).toBe('');
      expect((await stat(join(work, 'out', 'quiet.tar'))).size).toBeGreaterThan(0);
    });

    it('nuproxy import refuses a damaged bundle with exit 1 and says why; bad usage exits 2', async () => {
      const buf = await readFile(bundle1);
      const at = buf.indexOf(Buffer.from(bytes.get('big')!).subarray(200_000, 200_064));
      buf[at] = buf[at]! ^ 0x01;
      await writeFile(join(work, 'cli-bad.tar'), buf);
      const fresh = await freshDir('cli-bad');
      const ctx = cliContext(fresh, 'http://127.0.0.1:9/v3/index.json', work);
      expect(await importCommand(['cli-bad.tar', '--quiet'], ctx)).toBe(1);
      expect(ctx.err.text()).toBe(`nuproxy import: bundle refused: ${rel(pkgs.big, 'nupkg')}: SHA-512 mismatch\n`);
      expect(await filesUnder(join(fresh, 'packages'))).toEqual([]);
      expect(await readdir(join(fresh, '.tmp'))).toEqual([]);

      const u = cliContext(fresh, 'http://127.0.0.1:9/v3/index.json', work);
      expect(await importCommand([], u)).toBe(2);
      expect(await exportCommand(['a.tar', '--bogus'], u)).toBe(2);
      expect(u.err.text()).toContain('usage: nuproxy export');
      expect(await importCommand(['does-not-exist.tar'], u)).toBe(1);
      expect(u.err.text()).toContain('nuproxy import: failed: ENOENT');
    });
  });
});
