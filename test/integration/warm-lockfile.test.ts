// `nuproxy warm` (the built command, in its own process) on the lock file and the assets file a REAL `dotnet
// restore` wrote in this test: it warms exactly the packages the file lists for the frameworks it names, never
// re-resolves their dependencies for other frameworks (NETStandard.Library, which net10.0 prunes and the real
// packages folder does not have, is never even asked for), and with --all-frameworks fetches the every-framework
// superset while a package only some other framework needs never fails the run.
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, defaultTfm, removeProject, restore, skipReason, type DotnetProject, type RestoreResult } from '../support/dotnet.js';
import { runNuproxy } from '../support/process.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const reason = skipReason('warm from a lock file written by dotnet restore');

interface Summary {
  failures: { package: string; reason: string; requiredBy?: string }[];
  optional: { package: string; reason: string; requiredBy?: string }[];
  packages: { resolved: number; downloaded: number; cached: number; failed: number };
  closure: { id: string; version: string; status: string }[];
}

function explain(r: RestoreResult): string {
  return `exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

const nuproxy = runNuproxy;

/** "lowerid/version" of every .nupkg in a nuproxy cache dir, sorted. */
async function cachedPackages(cacheDir: string): Promise<string[]> {
  const root = join(cacheDir, 'packages');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const id of await readdir(root)) {
    for (const v of await readdir(join(root, id))) if (existsSync(join(root, id, v, `${id}.${v}.nupkg`))) out.push(`${id}/${v}`);
  }
  return out.sort();
}

const keyOf = (c: { id: string; version: string }): string => `${c.id.toLowerCase()}/${c.version.toLowerCase()}`;

describe.skipIf(reason !== undefined)('warm from what dotnet restore wrote', () => {
  let work: string;
  let upstream: TestUpstream;
  let project: DotnetProject;
  let lockFile: string;
  let assetsFile: string;
  /** What the lock file lists, "lowerid/version", sorted. */
  let locked: string[];
  const caches: string[] = [];

  const configFor = async (name: string): Promise<{ config: string; cacheDir: string }> => {
    const cacheDir = await mkdtemp(join(tmpdir(), `nuproxy-warm-lock-${name}-`));
    caches.push(cacheDir);
    const config = join(work, `${name}.yaml`);
    await writeFile(config, stringify({ cache: { dir: cacheDir }, upstreams: [{ name: 'real', serviceIndex: upstream.serviceIndexUrl, retries: 0 }] }));
    return { config, cacheDir };
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-warm-lock-'));
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    project = await createProject({
      sourceUrl: upstream.serviceIndexUrl,
      packages: [{ id: 'xunit', version: '2.9.3' }],
      properties: { RestorePackagesWithLockFile: 'true', NuGetAudit: 'false' },
    });
    const r = await restore(project);
    expect(r.code, explain(r)).toBe(0);
    lockFile = join(work, 'packages.lock.json');
    assetsFile = join(work, 'project.assets.json');
    await copyFile(join(project.dir, 'packages.lock.json'), lockFile);
    await copyFile(join(project.dir, 'obj', 'project.assets.json'), assetsFile);
    const lock = JSON.parse(await readFile(lockFile, 'utf8')) as { dependencies: Record<string, Record<string, { resolved: string }>> };
    expect(Object.keys(lock.dependencies)).toEqual([defaultTfm()]);
    locked = [...new Set(Object.values(lock.dependencies).flatMap((t) => Object.entries(t).map(([id, e]) => `${id.toLowerCase()}/${e.resolved.toLowerCase()}`)))].sort();
    expect(locked).toContain('xunit.abstractions/2.0.3'); // the package whose netstandard1.x group names NETStandard.Library
    expect(existsSync(join(findRealPackagesDir()!, 'netstandard.library')), 'the real packages folder has no NETStandard.Library').toBe(false);
  }, 300_000);
  afterAll(async () => {
    await upstream?.close();
    if (project) await removeProject(project);
    for (const d of [...caches, work]) if (d) await rm(d, { recursive: true, force: true });
  });

  it.each([
    ['packages.lock.json', () => lockFile],
    ['project.assets.json', () => assetsFile],
  ])('%s: exit 0, and the cache holds exactly the packages the file lists', async (_name, file) => {
    const { config, cacheDir } = await configFor(_name.replace(/\W/g, '-'));
    upstream.resetHits();
    const w = await nuproxy(['warm', file(), '--config', config, '--json', '--quiet'], work);
    expect(w.code, explain(w)).toBe(0);
    const s = JSON.parse(w.stdout) as Summary;
    expect(s.failures).toEqual([]);
    expect(s.closure.map(keyOf).sort()).toEqual(locked);
    expect(s.packages).toEqual({ resolved: locked.length, downloaded: locked.length, cached: 0, failed: 0 });
    expect(await cachedPackages(cacheDir)).toEqual(locked);
    // nothing outside the file was asked for: no re-resolution of dependencies for other frameworks
    expect(upstream.hits(/netstandard\.library/i)).toBe(0);
    expect(upstream.hits(/\.nupkg$/)).toBe(locked.length);
  });

  it('--all-frameworks: the every-framework superset; what only another framework needs is reported, and does not fail the run', async () => {
    const { config, cacheDir } = await configFor('all-frameworks');
    const w = await nuproxy(['warm', '--all-frameworks', lockFile, '--config', config, '--json', '--quiet'], work);
    expect(w.code, explain(w)).toBe(0);
    const s = JSON.parse(w.stdout) as Summary;
    expect(s.failures).toEqual([]);
    expect(s.optional.map((f) => f.package).sort()).toEqual(['NETStandard.Library@1.6.0', 'NETStandard.Library@1.6.1']);
    expect(s.optional.every((f) => f.reason === 'not found on any allowed upstream' && f.requiredBy !== undefined)).toBe(true);
    const closure = s.closure.map(keyOf).sort();
    for (const p of locked) expect(closure).toContain(p);
    expect(await cachedPackages(cacheDir)).toEqual(closure);
    expect(s.packages.failed).toBe(0);

    const text = await nuproxy(['warm', '--all-frameworks', lockFile, '--config', config, '--quiet'], work);
    expect(text.code, explain(text)).toBe(0);
    expect(text.stdout).toContain('no failures');
    expect(text.stdout).toMatch(/2 packages only other target frameworks need could not be warmed \(not failures\):\n {2}NETStandard\.Library@1\.6\.[01]: not found on any allowed upstream \(required by /);
  });

  it('warm --help documents --all-frameworks', async () => {
    const h = await nuproxy(['warm', '--help'], work);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/--all-frameworks/);
  });
});
