// The air gap as a user crosses it, with the built command: instance A (online) warms its cache from a real
// packages.lock.json and exports a bundle; the upstream goes away; the bundle is imported into fresh cache dirs of
// instance B (upstream unreachable, or offline), and the real `dotnet restore --locked-mode` succeeds through B.
// A bundle with one byte flipped inside a package is refused, and leaves no package in the cache it was meant for.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, defaultTfm, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy } from '../support/proxy.js';
import { runNuproxy, startNuproxy } from '../support/process.js';
import { auditCache } from '../support/cache-audit.js';

const reason = skipReason('air-gap (warm, export, import, restore with dotnet)');

const REFS = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
];
const UNREACHABLE = 'http://127.0.0.1:9/v3/index.json';

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

const nuproxy = runNuproxy;

/** Tar entries of a bundle with the offset of their data (ustar; pax/GNU long-name records skipped). */
function tarEntries(tar: Buffer): { name: string; offset: number; size: number }[] {
  const out: { name: string; offset: number; size: number }[] = [];
  let pos = 0;
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const str = (from: number, len: number): string => header.subarray(from, from + len).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const prefix = str(345, 155);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    if (type === '0' || type === '\0') out.push({ name, offset: pos + 512, size });
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe.skipIf(reason !== undefined)('air gap: warm, export, import, restore', () => {
  let work: string;
  let upstream: TestUpstream | undefined;
  let lockFile: string;
  let lockedPackages: string[] = [];
  let bundle: string;
  const projects: DotnetProject[] = [];

  const writeConfig = async (name: string, config: Record<string, unknown>): Promise<string> => {
    const file = join(work, `${name}.yaml`);
    await writeFile(file, stringify({ listen: { host: '127.0.0.1', port: 0 }, log: { level: 'info' }, ...config }));
    return file;
  };
  const project = async (url: string): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: url, packages: REFS });
    projects.push(p);
    return p;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-airgap-'));
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
  });
  afterAll(async () => {
    await upstream?.close();
    await Promise.all(projects.map((p) => removeProject(p)));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('obtains an authentic packages.lock.json from a real restore (through a throw-away proxy)', async () => {
    const scratch = await startTestProxy({ upstreams: [upstream!.serviceIndexUrl] });
    try {
      const p = await project(scratch.index);
      const r = await restore(p, ['--use-lock-file']);
      expect(r.code, explain(r)).toBe(0);
      lockFile = join(work, 'packages.lock.json');
      await copyFile(join(p.dir, 'packages.lock.json'), lockFile);
      lockedPackages = restoredPackages(p);
      const lock = JSON.parse(await readFile(lockFile, 'utf8')) as { dependencies: Record<string, Record<string, { resolved: string }>> };
      const entries = Object.values(lock.dependencies).flatMap((t) => Object.entries(t).map(([id, e]) => `${id.toLowerCase()}/${e.resolved}`));
      expect(entries).toContain('xunit/2.9.3');
      expect(entries).toContain('newtonsoft.json/13.0.3');
      expect([...new Set(entries)].sort()).toEqual(lockedPackages);
    } finally {
      await scratch.stop();
    }
  }, 300_000);

  it('instance A: warm from the lock file, then export a bundle', async () => {
    expect(lockFile, 'the lock file was written').toBeDefined();
    const cacheA = join(work, 'cache-a');
    const configA = await writeConfig('A', { cache: { dir: cacheA }, upstreams: [{ name: 'real', serviceIndex: upstream!.serviceIndexUrl }] });

    upstream!.resetHits();
    const w = await nuproxy(['warm', '--config', configA, '--tfm', defaultTfm(), lockFile, '--json'], work);
    expect(w.code, explain(w)).toBe(0);
    const summary = JSON.parse(w.stdout) as { failures: unknown[]; packages: { resolved: number; downloaded: number }; closure: { id: string; version: string }[] };
    expect(summary.failures).toEqual([]);
    const closure = summary.closure.map((c) => `${c.id.toLowerCase()}/${c.version.toLowerCase()}`).sort();
    for (const p of lockedPackages) expect(closure).toContain(p);
    expect(summary.packages.downloaded).toBe(summary.packages.resolved);
    expect(upstream!.hits('/v3-flatcontainer/xunit/2.9.3/xunit.2.9.3.nupkg')).toBe(1);
    const a = await auditCache(cacheA);
    expect(a.problems).toEqual([]);

    bundle = join(work, 'out', 'bundle.tar');
    await mkdir(join(work, 'out'));
    const e = await nuproxy(['export', '--config', configA, bundle, '--json'], work);
    expect(e.code, explain(e)).toBe(0);
    const exported = JSON.parse(e.stdout) as { packages: number; problems: unknown[] };
    expect(exported.problems).toEqual([]);
    expect(exported.packages).toBe(summary.packages.resolved);
    const names = tarEntries(await readFile(bundle)).map((x) => x.name);
    for (const p of lockedPackages) {
      const [id, v] = p.split('/');
      expect(names).toContain(`packages/${id}/${v}/${id}.${v}.nupkg`);
    }
    expect(names.at(-1)).toBe('manifest.json');

    // the upstream is gone for good: everything from here on is on the far side of the gap
    await upstream!.close();
    upstream = undefined;
  }, 300_000);

  const variants = [
    { name: 'B-unreachable', config: { upstreams: [{ name: 'nowhere', serviceIndex: UNREACHABLE }] } },
    { name: 'B-offline', config: { offline: true, upstreams: [{ name: 'nowhere', serviceIndex: UNREACHABLE }] } },
  ];

  it.each(variants)('$name: import into a fresh cache dir, serve it, and dotnet restore --locked-mode through it', async ({ name, config }) => {
    expect(bundle, 'the bundle was exported').toBeDefined();
    const cacheB = join(work, `cache-${name}`);
    const configB = await writeConfig(name, { cache: { dir: cacheB }, ...config });
    const i = await nuproxy(['import', '--config', configB, bundle], work);
    expect(i.code, explain(i)).toBe(0);
    const audit = await auditCache(cacheB);
    expect(audit.problems).toEqual([]);
    expect(audit.tmp).toEqual([]);
    for (const p of lockedPackages) {
      const [id, v] = p.split('/');
      expect(audit.blobs).toContain(`packages/${id}/${v}/${id}.${v}.nupkg`);
    }

    const b = await startNuproxy(work, `${name}-serve`, { cache: { dir: cacheB }, ...config, log: { level: 'info' }, shutdownGrace: '2s' });
    try {
      const p = await project(`${b.url}v3/index.json`);
      await copyFile(lockFile, join(p.dir, 'packages.lock.json'));
      const r = await restore(p, ['--locked-mode']);
      expect(r.code, explain(r)).toBe(0);
      expect(restoredPackages(p)).toEqual(lockedPackages);
      const requests = b.lines.filter((l) => l.msg === 'request');
      expect(requests.filter((l) => (l.status as number) >= 500), 'failed answers').toEqual([]);
      const nupkgs = requests.filter((l) => String(l.path).endsWith('.nupkg'));
      expect(nupkgs.length).toBeGreaterThan(0);
      expect(nupkgs.every((l) => l.cache === 'hit' && l.upstream === 'import'), JSON.stringify(nupkgs)).toBe(true);
    } finally {
      expect(await b.stop()).toBe(0);
    }
  }, 300_000);

  it('refuses a bundle with one byte flipped inside a package: exit 1, the reason, and no package in the cache', async () => {
    expect(bundle, 'the bundle was exported').toBeDefined();
    const tar = await readFile(bundle);
    const target = tarEntries(tar).find((x) => x.name === 'packages/xunit.core/2.9.3/xunit.core.2.9.3.nupkg') ?? tarEntries(tar).find((x) => x.name.endsWith('.nupkg'))!;
    expect(target.size).toBeGreaterThan(100);
    const bad = Buffer.from(tar);
    bad[target.offset + Math.floor(target.size / 2)]! ^= 0x01;
    const badBundle = join(work, 'out', 'bundle-flipped.tar');
    await writeFile(badBundle, bad);

    const cacheC = join(work, 'cache-C');
    const configC = await writeConfig('C', { cache: { dir: cacheC }, upstreams: [{ name: 'nowhere', serviceIndex: UNREACHABLE }] });
    const i = await nuproxy(['import', '--config', configC, badBundle], work);
    expect(i.code, explain(i)).toBe(1);
    expect(i.stderr).toContain(target.name);
    expect(i.stderr).toMatch(/SHA-512/);
    expect(await filesUnder(join(cacheC, 'packages')), 'package files in the refused cache').toEqual([]);
    expect(await filesUnder(join(cacheC, 'vulnerabilities')), 'vulnerability files in the refused cache').toEqual([]);
    expect(await filesUnder(join(cacheC, '.tmp')), 'staging left behind').toEqual([]);

    // the same with --json: a machine-readable refusal
    const j = await nuproxy(['import', '--config', configC, badBundle, '--json'], work);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ refused: true, problems: [expect.stringContaining(target.name)] });
    expect(await filesUnder(join(cacheC, 'packages'))).toEqual([]);
  }, 120_000);
});
