// `nuproxy warm` (the command as main.ts runs it, with captured output) against test upstreams over real sockets:
// dependency closure over all target framework groups, inputs of every kind, failures with reasons, the
// concurrency bound, a second run that fetches no package file, and the real packages folder as upstream.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore } from '../../src/app.js';
import { validateConfig, type LoadedConfig } from '../../src/config/load.js';
import { packageKey } from '../../src/feed/cache-keys.js';
import { warm, warmCommand, pickVersion, type WarmSummary } from '../../src/cli/warm.js';
import { readWarmInputs, WarmInputError, type WarmRoot } from '../../src/cli/warm-inputs.js';
import { makeNupkg, type NupkgSpec } from '../support/nupkg.js';
import { createLogSink } from '../support/log-sink.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { needTool } from '../support/need.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const timeouts = { connect: '2s', headers: '5s', body: '5s' };

function loadedFor(upstreams: TestUpstream[], cacheDir: string): LoadedConfig {
  return validateConfig(
    {
      cache: { dir: cacheDir },
      upstreams: upstreams.map((u, i) => ({ name: `up${i}`, serviceIndex: u.serviceIndexUrl, retries: 0, timeouts })),
    },
    {},
    'test',
  );
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: () => WarmSummary;
}

async function runWarm(args: string[], o: { upstreams: TestUpstream[]; cacheDir: string; cwd: string; tty?: boolean }): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), o.tty ? { isTTY: true, columns: 100 } : {});
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const code = await warmCommand(args, { loaded: loadedFor(o.upstreams, o.cacheDir), logger: createLogSink('warn').logger, stdout, stderr, cwd: o.cwd });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out, stderr: err, json: () => JSON.parse(out) as WarmSummary };
}

const closureOf = (s: WarmSummary): string[] => s.closure.map((p) => `${p.id}@${p.version}`);
const nupkgHits = (u: TestUpstream): number => u.hits(/\.nupkg$/);
const nuspecHits = (u: TestUpstream): number => u.hits(/\.nuspec$/);

const SPECS: NupkgSpec[] = [
  {
    id: 'Pkg.A',
    version: '1.0.0',
    dependencyGroups: [
      { targetFramework: 'net8.0', dependencies: [{ id: 'Pkg.B', range: '[1.0.0, )' }] },
      {
        targetFramework: '.NETStandard2.0',
        dependencies: [
          { id: 'Pkg.B', range: '[1.0.0, )' },
          { id: 'Pkg.D', range: '[1.0.0]' },
        ],
      },
      { targetFramework: 'net462', dependencies: [] },
    ],
  },
  { id: 'Pkg.B', version: '1.0.0', dependencyGroups: [{ dependencies: [{ id: 'Pkg.C', range: '[2.0.0]' }] }] },
  { id: 'Pkg.B', version: '1.5.0', dependencyGroups: [{ dependencies: [{ id: 'Pkg.C', range: '[2.0.0]' }] }] },
  { id: 'Pkg.B', version: '2.0.0-beta.1', dependencyGroups: [{ dependencies: [{ id: 'Pkg.C', range: '[3.0.0]' }] }] },
  { id: 'Pkg.C', version: '1.0.0' },
  { id: 'Pkg.C', version: '2.0.0', padBytes: 20_000 },
  { id: 'Pkg.C', version: '3.0.0' },
  { id: 'Pkg.D', version: '1.0.0' },
  // a prerelease depending on a prerelease range
  { id: 'Pkg.E', version: '1.0.0-rc.1', dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: [{ id: 'Pkg.F', range: '[1.0.0-beta, )' }] }] },
  { id: 'Pkg.F', version: '1.0.0-beta' },
  { id: 'Pkg.F', version: '1.0.0' },
  // a missing dependency, and one no listed version satisfies
  { id: 'Pkg.G', version: '1.0.0', dependencyGroups: [{ dependencies: [{ id: 'Missing.Dep', range: '[1.0.0]' }, { id: 'Pkg.D', range: '1.0.0' }] }] },
  { id: 'Pkg.H', version: '1.0.0', dependencyGroups: [{ targetFramework: 'net8.0', dependencies: [{ id: 'Pkg.C', range: '(3.0.0, )' }] }] },
];

describe('nuproxy warm', () => {
  let upstream: TestUpstream;
  let work: string;
  const caches: string[] = [];

  const freshCache = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'nuproxy-warm-cache-'));
    caches.push(d);
    return d;
  };
  const list = async (name: string, lines: string[]): Promise<string> => {
    const p = join(work, name);
    await writeFile(p, `${lines.join('\n')}\n`);
    return p;
  };

  beforeAll(async () => {
    upstream = await startTestUpstream({
      packages: SPECS.map(makeNupkg),
      vulnerabilities: { 'pkg.c': [{ severity: 2, url: 'https://example.test/advisory/1', versions: '[1.0.0, 2.0.0)' }] },
    });
    work = await mkdtemp(join(tmpdir(), 'nuproxy-warm-in-'));
  });
  afterAll(async () => {
    await upstream?.close();
    for (const d of [...caches, work]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('resolves the closure over every target framework group, fetches each package once, and a second run fetches no package file', async () => {
    const cacheDir = await freshCache();
    const input = await list('a.txt', ['# the root', 'Pkg.A@1.0.0']);
    upstream.resetHits();
    const first = await runWarm(['--json', input], { upstreams: [upstream], cacheDir, cwd: work });
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const s = first.json();
    // B: lowest version in [1.0.0, ) (not the prerelease); C: exactly 2.0.0; D only from the netstandard2.0 group
    expect(closureOf(s)).toEqual(['Pkg.A@1.0.0', 'Pkg.B@1.0.0', 'Pkg.C@2.0.0', 'Pkg.D@1.0.0']);
    expect(s.packages).toEqual({ resolved: 4, downloaded: 4, cached: 0, failed: 0 });
    expect(s.failures).toEqual([]);
    expect(s.bytesDownloaded).toBeGreaterThan(20_000);
    expect(s.closure.find((p) => p.id === 'Pkg.C')!.bytes).toBeGreaterThan(20_000);
    // each file requested exactly once from the upstream
    expect(nupkgHits(upstream)).toBe(4);
    expect(nuspecHits(upstream)).toBe(4);
    for (const [id, v] of [['pkg.a', '1.0.0'], ['pkg.b', '1.0.0'], ['pkg.c', '2.0.0'], ['pkg.d', '1.0.0']] as const) {
      expect(existsSync(join(cacheDir, packageKey(id, v, 'nupkg'))), `${id} ${v} nupkg cached`).toBe(true);
      expect(existsSync(join(cacheDir, packageKey(id, v, 'nuspec'))), `${id} ${v} nuspec cached`).toBe(true);
    }
    // metadata a restore asks for: version lists and registration of every id, vulnerability index and page
    expect(s.metadata).toEqual({ versionLists: 4, registrations: 4, vulnerabilityPages: 1 });
    expect(upstream.hits('/v3-flatcontainer/pkg.d/index.json')).toBeGreaterThanOrEqual(1);
    expect(upstream.hits(/\/v3\/vulnerabilities\//)).toBeGreaterThanOrEqual(2);

    upstream.resetHits();
    const second = await runWarm(['--json', input], { upstreams: [upstream], cacheDir, cwd: work });
    expect(second.code, second.stderr).toBe(0);
    const t = second.json();
    expect(closureOf(t)).toEqual(closureOf(s));
    expect(t.packages).toEqual({ resolved: 4, downloaded: 0, cached: 4, failed: 0 });
    expect(t.bytesDownloaded).toBe(0);
    expect(t.bytesCached).toBe(s.closure.reduce((n, p) => n + p.bytes, 0));
    expect(nupkgHits(upstream)).toBe(0);
    expect(nuspecHits(upstream)).toBe(0);
  });

  it('--tfm follows only the nearest group of each package', async () => {
    const input = await list('a-tfm.txt', ['Pkg.A@1.0.0']);
    const net8 = await runWarm(['--json', '--quiet', '--tfm', 'net8.0', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(closureOf(net8.json())).toEqual(['Pkg.A@1.0.0', 'Pkg.B@1.0.0', 'Pkg.C@2.0.0']);
    const net472 = await runWarm(['--json', '--quiet', '--tfm', 'net472', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(closureOf(net472.json())).toEqual(['Pkg.A@1.0.0']); // A's nearest group for net472 is net462, which is empty
    const both = await runWarm(['--json', '--quiet', '--tfm', 'net8.0', '--tfm', 'netstandard2.0', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(closureOf(both.json())).toEqual(['Pkg.A@1.0.0', 'Pkg.B@1.0.0', 'Pkg.C@2.0.0', 'Pkg.D@1.0.0']);
  });

  it('prereleases: an exact prerelease root, a prerelease range picks the lowest prerelease, stable ranges skip prereleases', async () => {
    const input = await list('pre.txt', ['Pkg.E@1.0.0-rc.1', 'Pkg.B@[1.0.0, )', 'Pkg.B@1.*', 'Pkg.C@[2.0.0, 3.0.0)']);
    const r = await runWarm(['--json', '--quiet', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(r.code, r.stdout).toBe(0);
    expect(closureOf(r.json())).toEqual(['Pkg.B@1.0.0', 'Pkg.B@1.5.0', 'Pkg.C@2.0.0', 'Pkg.E@1.0.0-rc.1', 'Pkg.F@1.0.0-beta']);
  });

  it('failures are reported with their reasons, the rest is still warmed, and the exit code is 1', async () => {
    const input = await list('fail.txt', ['Pkg.G@1.0.0', 'Pkg.H@1.0.0', 'Pkg.A@9.9.9', 'No.Such.Package@[1.0.0, )']);
    const r = await runWarm(['--quiet', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Missing.Dep@[1.0.0]: not found on any allowed upstream (required by Pkg.G@1.0.0)');
    expect(r.stdout).toMatch(/Pkg\.C@\(3\.0\.0, \): no listed version satisfies it \(available: 1\.0\.0, 2\.0\.0, 3\.0\.0\) \(required by Pkg\.H@1\.0\.0\)/);
    expect(r.stdout).toContain('Pkg.A@9.9.9: not found on any allowed upstream');
    expect(r.stdout).toContain('No.Such.Package@[1.0.0, ): not found on any allowed upstream');
    expect(r.stdout).toMatch(/4 failures:/);

    const j = await runWarm(['--json', '--quiet', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(j.code).toBe(1);
    const s = j.json();
    expect(closureOf(s)).toEqual(['Pkg.D@1.0.0', 'Pkg.G@1.0.0', 'Pkg.H@1.0.0']);
    expect(s.packages).toEqual({ resolved: 4, downloaded: 3, cached: 0, failed: 1 });
    expect(s.failures).toEqual(
      expect.arrayContaining([
        { package: 'Missing.Dep@[1.0.0]', reason: 'not found on any allowed upstream', requiredBy: 'Pkg.G@1.0.0' },
        { package: 'Pkg.A@9.9.9', reason: 'not found on any allowed upstream' },
      ]),
    );
    expect(s.failures).toHaveLength(4);
  });

  it('an upstream error is a failure with its message, without stopping the other packages', async () => {
    const input = await list('err.txt', ['Pkg.A@1.0.0']);
    upstream.setFault('/v3-flatcontainer/pkg.c/2.0.0/pkg.c.2.0.0.nupkg', { kind: 'status', status: 500 });
    try {
      const r = await runWarm(['--json', '--quiet', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(r.code).toBe(1);
      const s = r.json();
      expect(closureOf(s)).toEqual(['Pkg.A@1.0.0', 'Pkg.B@1.0.0', 'Pkg.D@1.0.0']);
      expect(s.failures).toEqual([{ package: 'Pkg.C@2.0.0', reason: expect.stringMatching(/upstream up0 answered 500/), requiredBy: 'Pkg.B@1.0.0' }]);
    } finally {
      upstream.setFault('/v3-flatcontainer/pkg.c/2.0.0/pkg.c.2.0.0.nupkg', undefined);
    }
  });

  it('--no-vulnerabilities leaves vulnerability data alone', async () => {
    const input = await list('novuln.txt', ['Pkg.D@1.0.0']);
    upstream.resetHits();
    const r = await runWarm(['--json', '--quiet', '--no-vulnerabilities', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(r.code).toBe(0);
    expect(r.json().metadata).toEqual({ versionLists: 1, registrations: 1, vulnerabilityPages: 0 });
    expect(upstream.hits(/\/v3\/vulnerabilities\//)).toBe(0);
  });

  it('--json prints the whole summary', async () => {
    const input = await list('json.txt', ['Pkg.B@1.5.0']);
    const r = await runWarm(['--json', '--quiet', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(r.stderr).toBe('');
    const s = r.json();
    expect(s).toEqual({
      roots: 1,
      packages: { resolved: 2, downloaded: 2, cached: 0, failed: 0 },
      bytesDownloaded: expect.any(Number),
      bytesCached: 0,
      durationMs: expect.any(Number),
      metadata: { versionLists: 2, registrations: 2, vulnerabilityPages: 1 },
      closure: [
        { id: 'Pkg.B', version: '1.5.0', status: 'downloaded', bytes: expect.any(Number) },
        { id: 'Pkg.C', version: '2.0.0', status: 'downloaded', bytes: expect.any(Number) },
      ],
      failures: [],
      optional: [],
      blocked: [],
    });
  });

  it('text summary and progress: one line per step when stderr is not a terminal, a redrawn bar when it is', async () => {
    const input = await list('progress.txt', ['Pkg.A@1.0.0']);
    const plain = await runWarm([input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^4 packages resolved: 4 downloaded, 0 already cached\n[\d.]+ KB downloaded in \d+(\.\d)? m?s\nmetadata: 4 version lists, 4 registrations, 1 vulnerability pages\nno failures\n$/);
    expect(plain.stderr).not.toContain('\r');
    expect(plain.stderr).toMatch(/warm: 4\/4 packages, [\d.]+ KB\n$/);

    const tty = await runWarm([input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work, tty: true });
    expect(tty.stderr).toMatch(/\r\[=+\] 4\/4 packages, [\d.]+ KB\x1b\[K\n$/);

    const quiet = await runWarm(['--quiet', input], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work, tty: true });
    expect(quiet.stderr).toBe('');
  });

  it('the concurrency bound holds: never more package downloads at the upstream than --concurrency', async () => {
    const specs = Array.from({ length: 12 }, (_, i) => ({ id: `Bound.P${i}`, version: '1.0.0' }));
    const bounded = await startTestUpstream({ packages: specs.map(makeNupkg) });
    try {
      const stallMs = 250;
      bounded.setFault(/\.nupkg$/, { kind: 'stall', ms: stallMs });
      // arrival time of each .nupkg request at the upstream
      const arrivals: number[] = [];
      const push = bounded.requests.push.bind(bounded.requests);
      bounded.requests.push = (...items) => {
        for (const it of items) if (it.path.endsWith('.nupkg')) arrivals.push(performance.now());
        return push(...items);
      };
      const input = await list('bound.txt', specs.map((s) => `${s.id}@${s.version}`));
      const started = performance.now();
      const r = await runWarm(['--json', '--quiet', '--concurrency', '3', input], { upstreams: [bounded], cacheDir: await freshCache(), cwd: work });
      const elapsed = performance.now() - started;
      expect(r.code, r.stdout).toBe(0);
      expect(r.json().packages.downloaded).toBe(12);
      expect(arrivals).toHaveLength(12);
      // every download lasts at least stallMs, so all requests that arrive within stallMs of each other overlap
      let maxOverlap = 0;
      for (const a of arrivals) maxOverlap = Math.max(maxOverlap, arrivals.filter((b) => b >= a && b < a + stallMs - 10).length);
      expect(maxOverlap).toBeLessThanOrEqual(3);
      expect(maxOverlap).toBeGreaterThanOrEqual(2); // downloads do run in parallel
      expect(elapsed).toBeGreaterThanOrEqual(4 * stallMs - 50); // 12 downloads, 3 at a time
    } finally {
      await bounded.close();
    }
  });

  describe('inputs', () => {
    let dir: string;
    beforeAll(async () => {
      dir = join(work, 'inputs');
      await mkdir(join(dir, 'solution', 'src', 'App', 'obj'), { recursive: true });
      await mkdir(join(dir, 'solution', 'src', 'Lib'), { recursive: true });
      await mkdir(join(dir, 'empty'), { recursive: true });
      await writeFile(
        join(dir, 'packages.lock.json'),
        JSON.stringify(
          {
            version: 1,
            dependencies: {
              'net8.0': {
                'Pkg.A': { type: 'Direct', requested: '[1.0.0, )', resolved: '1.0.0', contentHash: 'x', dependencies: { 'Pkg.B': '1.0.0' } },
                'Pkg.B': { type: 'Transitive', resolved: '1.5.0', contentHash: 'x' },
                'My.Lib': { type: 'Project', dependencies: { 'Pkg.D': '[1.0.0, )' } },
                'Pkg.D': { type: 'CentralTransitive', requested: '[1.0.0, )', resolved: '1.0.0' },
              },
              'net8.0/linux-x64': { 'Pkg.C': { type: 'Transitive', resolved: '3.0.0' } },
            },
          },
          null,
          2,
        ),
      );
      await writeFile(
        join(dir, 'solution', 'src', 'App', 'obj', 'project.assets.json'),
        JSON.stringify(
          {
            version: 3,
            targets: {
              'net8.0': {
                'Pkg.A/1.0.0': { type: 'package', dependencies: { 'Pkg.B': '1.0.0' } },
                'Pkg.E/1.0.0-rc.1': { type: 'package' },
                'Lib/1.0.0': { type: 'project', framework: '.NETCoreApp,Version=v8.0' },
              },
              'net8.0/linux-x64': { 'Pkg.A/1.0.0': { type: 'package' }, 'Pkg.C/3.0.0': { type: 'package' } },
            },
            libraries: {
              'Pkg.A/1.0.0': { sha512: 'x', type: 'package', path: 'pkg.a/1.0.0' },
              'Pkg.E/1.0.0-rc.1': { sha512: 'x', type: 'package', path: 'pkg.e/1.0.0-rc.1' },
              'Pkg.C/3.0.0': { sha512: 'x', type: 'package', path: 'pkg.c/3.0.0' },
              'Lib/1.0.0': { type: 'project', path: '../Lib/Lib.csproj' },
            },
            project: {
              version: '1.0.0',
              restore: { frameworks: { 'net8.0': { targetAlias: 'net8.0', projectReferences: {} } } },
              frameworks: { 'net8.0': { targetAlias: 'net8.0', downloadDependencies: [{ name: 'Pkg.F', version: '[1.0.0, 1.0.0]' }] } },
            },
          },
          null,
          2,
        ),
      );
      await writeFile(
        join(dir, 'solution', 'Directory.Packages.props'),
        `<Project>
  <PropertyGroup>
    <ManagePackageVersionsCentrally>true</ManagePackageVersionsCentrally>
    <CVersion>[2.0.0]</CVersion>
  </PropertyGroup>
  <ItemGroup>
    <PackageVersion Include="Pkg.A" Version="1.0.0" />
    <PackageVersion Version='1.5.0' Include='Pkg.B' />
    <PackageVersion Include="Pkg.C" Version="$(CVersion)" />
    <PackageVersion Include="Pkg.F">
      <Version>1.0.0-beta</Version>
    </PackageVersion>
  </ItemGroup>
  <ItemGroup>
    <GlobalPackageReference Include="Pkg.D" Version="[1.0.0]" />
  </ItemGroup>
</Project>
`,
      );
      await writeFile(
        join(dir, 'solution', 'src', 'App', 'App.csproj'),
        `<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net8.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <!-- <PackageReference Include="Commented.Out" Version="1.0.0" /> -->
    <PackageReference Include="Pkg.A" />
    <PackageReference Include="Pkg.C" VersionOverride="[3.0.0]" />
    <ProjectReference Include="../Lib/Lib.csproj" />
  </ItemGroup>
</Project>
`,
      );
      await writeFile(
        join(dir, 'solution', 'src', 'Lib', 'Lib.csproj'),
        `<Project Sdk="Microsoft.NET.Sdk">
  <ItemGroup>
    <PackageReference Include="Pkg.B">
      <Version>[1.0.0, 2.0.0)</Version>
    </PackageReference>
    <PackageReference Update="Pkg.D" Version="1.0.0" />
    <PackageReference Include="Pkg.F" />
  </ItemGroup>
</Project>
`,
      );
      await writeFile(join(dir, 'standalone.csproj'), `<Project><ItemGroup><PackageReference Include="Pkg.H" Version="1.0.0"/></ItemGroup></Project>`);
    });

    const roots = (rs: WarmRoot[]): string[] => rs.map((r) => `${r.id}${r.version !== undefined ? `=${r.version}` : ` ${r.range}`}`);

    it('packages.lock.json: every resolved package of every target, once each, locked, with its targets; projects skipped', async () => {
      const rs = await readWarmInputs(['inputs/packages.lock.json'], work);
      expect(roots(rs)).toEqual(['Pkg.A=1.0.0', 'Pkg.B=1.5.0', 'Pkg.D=1.0.0', 'Pkg.C=3.0.0']);
      expect(rs[1]!.source).toBe('inputs/packages.lock.json:14');
      expect(rs.every((r) => r.locked === true)).toBe(true);
      expect(rs.map((r) => r.frameworks)).toEqual([['net8.0'], ['net8.0'], ['net8.0'], ['net8.0/linux-x64']]);
    });

    it('obj/project.assets.json: the packages of its targets, once each, locked, and its PackageDownload items', async () => {
      const rs = await readWarmInputs(['inputs/solution/src/App/obj/project.assets.json'], work);
      expect(roots(rs)).toEqual(['Pkg.A=1.0.0', 'Pkg.E=1.0.0-rc.1', 'Pkg.C=3.0.0', 'Pkg.F=1.0.0']);
      expect(rs.map((r) => r.frameworks)).toEqual([['net8.0', 'net8.0/linux-x64'], ['net8.0'], ['net8.0/linux-x64'], ['net8.0']]);
      expect(rs.every((r) => r.locked === true)).toBe(true);
      expect(rs[3]!.source).toMatch(/project\.assets\.json:\d+$/);
    });

    it('--tfm keeps the lock and assets file targets of that framework (any runtime), and a file without one is an error', async () => {
      const lock = await readWarmInputs(['inputs/packages.lock.json'], work, { tfms: ['net8.0'] });
      expect(roots(lock)).toEqual(['Pkg.A=1.0.0', 'Pkg.B=1.5.0', 'Pkg.D=1.0.0', 'Pkg.C=3.0.0']);
      const assets = await readWarmInputs(['inputs/solution/src/App/obj/project.assets.json'], work, { tfms: ['net8.0'] });
      expect(roots(assets)).toEqual(['Pkg.A=1.0.0', 'Pkg.E=1.0.0-rc.1', 'Pkg.C=3.0.0', 'Pkg.F=1.0.0']);
      await expect(readWarmInputs(['inputs/packages.lock.json'], work, { tfms: ['net472', 'net9.0'] })).rejects.toThrow(
        'inputs/packages.lock.json: no target for --tfm net472, net9.0 (the file has net8.0, net8.0/linux-x64)',
      );
      const r = await runWarm(['--json', '--quiet', '--tfm', 'netstandard2.0', 'inputs/packages.lock.json'], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('no target for --tfm netstandard2.0');
      const both = await runWarm(['--all-frameworks', '--tfm', 'net8.0', 'inputs/packages.lock.json'], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('--all-frameworks and --tfm exclude each other');
    });

    it('a lock file warms exactly what it lists; --all-frameworks adds the superset, and what only it reaches never fails the run', async () => {
      // Pkg.G's nuspec names Missing.Dep, which no upstream has: a lock file listing Pkg.G alone says no restore needs it
      const lock = join(work, 'g', 'packages.lock.json');
      await mkdir(join(work, 'g'), { recursive: true });
      await writeFile(lock, JSON.stringify({ version: 1, dependencies: { 'net8.0': { 'Pkg.G': { type: 'Direct', requested: '[1.0.0, )', resolved: '1.0.0' } } } }));
      const exact = await runWarm(['--json', '--quiet', lock], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(exact.code, exact.stdout).toBe(0);
      expect(closureOf(exact.json())).toEqual(['Pkg.G@1.0.0']);
      expect(exact.json().optional).toEqual([]);

      const all = await runWarm(['--json', '--quiet', '--all-frameworks', lock], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(all.code, all.stdout).toBe(0);
      expect(closureOf(all.json())).toEqual(['Pkg.D@1.0.0', 'Pkg.G@1.0.0']);
      expect(all.json().failures).toEqual([]);
      expect(all.json().optional).toEqual([{ package: 'Missing.Dep@[1.0.0]', reason: 'not found on any allowed upstream', requiredBy: 'Pkg.G@1.0.0' }]);
      expect(all.json().packages.failed).toBe(0);

      // the same package also named by a plain list: its closure is needed again, and the missing dependency fails the run
      const listed = await list('g.txt', ['Pkg.G@1.0.0']);
      const mixed = await runWarm(['--json', '--quiet', '--all-frameworks', lock, listed], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(mixed.code).toBe(1);
      expect(mixed.json().failures).toEqual([{ package: 'Missing.Dep@[1.0.0]', reason: 'not found on any allowed upstream', requiredBy: 'Pkg.G@1.0.0' }]);
      expect(mixed.json().optional).toEqual([]);
    });

    it('a package both locked and named by another input: the other input\'s closure is warmed, whichever is reached first', async () => {
      const lock = join(work, 'b', 'packages.lock.json');
      await mkdir(join(work, 'b'), { recursive: true });
      await writeFile(lock, JSON.stringify({ version: 1, dependencies: { 'net8.0': { 'Pkg.B': { type: 'Direct', requested: '[1.0.0, )', resolved: '1.0.0' } } } }));
      // locked Pkg.B 1.0.0 alone: its dependency Pkg.C 2.0.0 is not fetched
      const alone = await runWarm(['--json', '--quiet', lock], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(closureOf(alone.json())).toEqual(['Pkg.B@1.0.0']);
      // Pkg.A@1.0.0 (open) reaches the same Pkg.B 1.0.0 through a range, after Pkg.B's locked fetch may have finished
      const listed = await list('a-and-lock.txt', ['Pkg.A@1.0.0']);
      for (const order of [[lock, listed], [listed, lock]]) {
        const r = await runWarm(['--json', '--quiet', ...order], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
        expect(r.code, r.stdout).toBe(0);
        expect(closureOf(r.json())).toEqual(['Pkg.A@1.0.0', 'Pkg.B@1.0.0', 'Pkg.C@2.0.0', 'Pkg.D@1.0.0']);
      }
    });

    it('Directory.Packages.props: PackageVersion (attributes in any order, child element, properties) and GlobalPackageReference', async () => {
      expect(roots(await readWarmInputs([join(dir, 'solution', 'Directory.Packages.props')], work))).toEqual([
        'Pkg.A 1.0.0',
        'Pkg.B 1.5.0',
        'Pkg.C [2.0.0]',
        'Pkg.F 1.0.0-beta',
        'Pkg.D [1.0.0]',
      ]);
    });

    it('a project: versions from the project, VersionOverride, the <Version> element, Update=, or the Directory.Packages.props above it', async () => {
      expect(roots(await readWarmInputs(['inputs/solution/src/App/App.csproj'], work))).toEqual(['Pkg.A 1.0.0', 'Pkg.C [3.0.0]', 'Pkg.D [1.0.0]']);
      expect(roots(await readWarmInputs(['inputs/solution/src/Lib/Lib.csproj'], work))).toEqual(['Pkg.B [1.0.0, 2.0.0)', 'Pkg.D 1.0.0', 'Pkg.F 1.0.0-beta', 'Pkg.D [1.0.0]']);
    });

    it('a folder: its lock file first, else its assets file, else its projects, else its Directory.Packages.props', async () => {
      expect(roots(await readWarmInputs(['inputs'], work))).toEqual(['Pkg.A=1.0.0', 'Pkg.B=1.5.0', 'Pkg.D=1.0.0', 'Pkg.C=3.0.0']);
      expect(roots(await readWarmInputs(['inputs/solution/src/App'], work))).toEqual(['Pkg.A=1.0.0', 'Pkg.E=1.0.0-rc.1', 'Pkg.C=3.0.0', 'Pkg.F=1.0.0']);
      expect(roots(await readWarmInputs(['inputs/solution/src/Lib'], work))).toEqual(['Pkg.B [1.0.0, 2.0.0)', 'Pkg.D 1.0.0', 'Pkg.F 1.0.0-beta', 'Pkg.D [1.0.0]']);
      expect(roots(await readWarmInputs(['inputs/solution'], work))).toHaveLength(5);
      await expect(readWarmInputs(['inputs/empty'], work)).rejects.toThrow(/inputs\/empty: no packages\.lock\.json, obj\/project\.assets\.json, project file/);
    });

    it('a plain list: id@version, id@[range], floating, comments and blank lines', async () => {
      const p = await list('plain.txt', ['# packages', '', 'Pkg.A@1.0.0   # trailing comment', '  Pkg.B@[1.0.0, 2.0.0)', 'Pkg.C@2.*', 'Pkg.E@1.0.0-rc.1']);
      expect(roots(await readWarmInputs([p], work))).toEqual(['Pkg.A=1.0.0', 'Pkg.B [1.0.0, 2.0.0)', 'Pkg.C 2.*', 'Pkg.E=1.0.0-rc.1']);
    });

    it.each([
      ['bad-list.txt', 'Pkg.A@1.0.0\n\nPkg.B 1.0.0\n', /bad-list\.txt:3: expected "id@version"/],
      ['bad-version.txt', 'Pkg.A@1.0.0.0.0\n', /bad-version\.txt:1: not a valid version: "1\.0\.0\.0\.0"/],
      ['bad-range.txt', '# x\nPkg.A@[2.0, 1.0]\n', /bad-range\.txt:2: not a valid version or version range for Pkg\.A/],
      ['bad-id.txt', 'Bad Id@1.0.0\n', /bad-id\.txt:1: not a valid package id/],
      ['packages.lock.json', '{\n  "version": 1,\n  "dependencies": {\n    "net8.0": {\n      "X": { "type": "Direct" }\n    }\n  }\n}\n', /packages\.lock\.json:5: "net8\.0\.X" has no "resolved" version/],
      ['broken/packages.lock.json', '{\n  "version": 1,\n  "dependencies": {\n', /packages\.lock\.json(:\d+)?: not valid JSON/],
      ['project.assets.json', '{ "version": 3 }', /project\.assets\.json: not a project\.assets\.json \(no "libraries" object\)/],
      ['NoCpm.csproj', '<Project>\n  <ItemGroup>\n    <PackageReference Include="Pkg.A" />\n  </ItemGroup>\n</Project>\n', /NoCpm\.csproj:3: Pkg\.A has no Version and no Directory\.Packages\.props was found/],
      ['Prop.csproj', '<Project><ItemGroup>\n<PackageReference Include="Pkg.A" Version="$(Undefined)" /></ItemGroup></Project>', /Prop\.csproj:2: the version uses the property \$\(Undefined\)/],
      ['Broken.csproj', '<Project>\n<ItemGroup>\n<PackageReference Include="Pkg.A" Version="1.0', /Broken\.csproj:3: not well-formed XML: unterminated start tag/],
    ])('a clear error for an unreadable %s', async (name, text, message) => {
      const isolated = await mkdtemp(join(tmpdir(), 'nuproxy-warm-bad-'));
      caches.push(isolated);
      const p = join(isolated, name);
      await mkdir(join(p, '..'), { recursive: true });
      await writeFile(p, text);
      const err = await readWarmInputs([p], isolated).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WarmInputError);
      expect((err as Error).message).toMatch(message);
    });

    it('the command: a folder with a csproj warms its closure; errors in inputs exit 2 with the file and line', async () => {
      const r = await runWarm(['--json', '--quiet', 'inputs/solution/src/Lib'], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      // Lib: B [1.0.0, 2.0.0) -> 1.0.0 -> C 2.0.0; D 1.0.0 (twice); F 1.0.0-beta
      expect(closureOf(r.json())).toEqual(['Pkg.B@1.0.0', 'Pkg.C@2.0.0', 'Pkg.D@1.0.0', 'Pkg.F@1.0.0-beta']);

      const all = await runWarm(['--json', '--quiet', 'inputs/packages.lock.json', 'inputs/standalone.csproj'], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(all.code).toBe(1); // Pkg.H's dependency cannot be satisfied
      // the lock file's packages as listed (not their dependencies again), and Pkg.H's closure
      expect(closureOf(all.json())).toEqual(['Pkg.A@1.0.0', 'Pkg.B@1.5.0', 'Pkg.C@3.0.0', 'Pkg.D@1.0.0', 'Pkg.H@1.0.0']);

      const bad = await list('bad-for-command.txt', ['Pkg.A@1.0.0', 'oops']);
      const e = await runWarm([bad], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(e.code).toBe(2);
      expect(e.stderr).toContain('bad-for-command.txt:2: expected "id@version"');
      expect(e.stdout).toBe('');

      const missing = await runWarm(['nope.txt'], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('nope.txt: no such file or folder');

      const none = await runWarm([], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('no input given');

      const conc = await runWarm(['--concurrency', '0', 'x'], { upstreams: [upstream], cacheDir: await freshCache(), cwd: work });
      expect(conc.code).toBe(2);
      expect(conc.stderr).toContain('--concurrency must be a whole number');
    });
  });

  it('pickVersion: lowest in range, highest for floating versions', () => {
    const listed = ['1.0.0', '1.5.0', '1.6.0-beta.2', '2.0.0-beta.1', '2.0.0', '2.1.0'];
    expect(pickVersion('1.0.0', listed)).toBe('1.0.0');
    expect(pickVersion('1.1', listed)).toBe('1.5.0');
    expect(pickVersion('[1.6.0-beta.1, )', listed)).toBe('1.6.0-beta.2');
    expect(pickVersion('(2.1.0, )', listed)).toBeUndefined();
    expect(pickVersion('', listed)).toBe('1.0.0');
    expect(pickVersion('*', listed)).toBe('2.1.0');
    expect(pickVersion('1.*', listed)).toBe('1.5.0');
    expect(pickVersion('1.*-*', listed)).toBe('1.6.0-beta.2');
    expect(pickVersion('2.0.0-beta*', listed)).toBe('2.0.0');
    expect(pickVersion('2.0.0-*', ['2.0.0-beta.1', '2.0.0-rc.1', '2.1.0'])).toBe('2.0.0-rc.1');
    expect(pickVersion('3.*', listed)).toBeUndefined();
  });

  it('warm() directly with a core, and several upstreams: packages come from whichever lists them', async () => {
    const second = await startTestUpstream({ packages: [makeNupkg({ id: 'Other.Pkg', version: '1.0.0', dependencyGroups: [{ dependencies: [{ id: 'Pkg.D', range: '1.0.0' }] }] })] });
    const cacheDir = await freshCache();
    const core = await createCore(loadedFor([upstream, second], cacheDir), { logger: createLogSink('warn').logger });
    try {
      const s = await warm(core, [{ id: 'other.pkg', version: '1.0' }], { concurrency: 2, vulnerabilities: false });
      expect(closureOf(s)).toEqual(['Other.Pkg@1.0.0', 'Pkg.D@1.0.0']);
      expect(s.failures).toEqual([]);
      expect(second.hits(/\.nupkg$/)).toBe(1);
    } finally {
      await core.close();
      await second.close();
    }
  });

  describe('with the real packages folder as upstream', () => {
    const realDir = findRealPackagesDir();
    const skip = needTool('real-packages', realDir !== undefined, 'the real-package warm test');
    if (skip || !realDir) {
      it.skip(`warm xunit@2.9.3 (${skip})`, () => {});
      return;
    }
    let real: TestUpstream;
    beforeAll(async () => {
      real = await startTestUpstream({ packageDirs: [realDir] });
    });
    afterAll(async () => {
      await real?.close();
    });

    const XUNIT = ['xunit@2.9.3', 'xunit.abstractions@2.0.3', 'xunit.analyzers@1.26.0', 'xunit.assert@2.9.3', 'xunit.core@2.9.3', 'xunit.extensibility.core@2.9.3', 'xunit.extensibility.execution@2.9.3'];

    it('xunit@2.9.3: the whole closure (every framework group; NETStandard.Library is not in the folder)', async () => {
      const input = await list('xunit.txt', ['xunit@2.9.3']);
      const cacheDir = await freshCache();
      const r = await runWarm(['--json', '--quiet', input], { upstreams: [real], cacheDir, cwd: work });
      const s = r.json();
      expect(closureOf(s)).toEqual(XUNIT);
      expect(s.failures.map((f) => f.package).sort()).toEqual(['NETStandard.Library@1.6.0', 'NETStandard.Library@1.6.1']);
      expect(s.failures.every((f) => f.reason === 'not found on any allowed upstream')).toBe(true);
      expect(r.code).toBe(1);

      real.resetHits();
      const again = await runWarm(['--json', '--quiet', '--tfm', 'net8.0', input], { upstreams: [real], cacheDir, cwd: work });
      expect(again.code, again.stdout).toBe(0);
      expect(closureOf(again.json())).toEqual(XUNIT);
      expect(again.json().packages).toMatchObject({ downloaded: 0, cached: 7 });
      expect(real.hits(/\.(nupkg|nuspec)$/)).toBe(0);
    });
  });
});
