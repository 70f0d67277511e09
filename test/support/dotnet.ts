// Drives the real `dotnet` client against a feed: throw-away projects isolated from the machine's NuGet config,
// packages folder and http-cache. Restores run as async child processes so in-process servers keep serving.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { escapeXml } from './nupkg.js';
import { needTool } from './need.js';
import { findRealPackagesDir } from './real-packages.js';

let versionCache: { v: string | undefined } | undefined;

/** `dotnet --version`, or undefined when the SDK is missing/broken. Cached. */
export function dotnetVersion(): string | undefined {
  if (!versionCache) {
    let v: string | undefined;
    try {
      v = execFileSync('dotnet', ['--version'], {
        encoding: 'utf8',
        timeout: 60_000,
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
      }).trim();
    } catch {
      v = undefined;
    }
    versionCache = { v: v && /^\d+\.\d+/.test(v) ? v : undefined };
  }
  return versionCache.v;
}

export function dotnetAvailable(): boolean {
  return dotnetVersion() !== undefined;
}

/**
 * Why `what` (tests of the real client over the real packages) cannot run here, or undefined when it can: a loud
 * skip locally, a failure under CI (see needTool).
 */
export function skipReason(what: string): string | undefined {
  return needTool('dotnet', dotnetAvailable(), what) ?? needTool('real-packages', findRealPackagesDir() !== undefined, what);
}

export interface DotnetProject {
  /** Project folder: the .csproj and NuGet.Config. */
  dir: string;
  /** Empty global-packages folder used by this project's restores. */
  packagesDir: string;
  /** Empty http-cache folder used by this project's restores. */
  httpCacheDir: string;
  /** Path of the .csproj. */
  projectFile: string;
  /** DOTNET_CLI_HOME used for this project's dotnet runs. */
  homeDir: string;
}

export interface CreateProjectOptions {
  sourceUrl: string;
  packages: { id: string; version: string }[];
  /** allowInsecureConnections="true" on the source (default true; needed for http from .NET 9 SDK on). */
  allowInsecure?: boolean;
  /** Default: net{major}.0 from `dotnet --version`. */
  tfm?: string;
  /** Extra MSBuild properties for the .csproj (e.g. { NuGetAudit: 'false' }). */
  properties?: Record<string, string>;
  /** packageSourceCredentials for the source (ClearTextPassword): how a client gives nuproxy its token. */
  credentials?: { username: string; password: string };
}

export function defaultTfm(): string {
  const v = dotnetVersion();
  if (!v) throw new Error('dotnet is not available');
  return `net${v.split('.')[0]}.0`;
}

export interface ConfigSource {
  key: string;
  value: string;
  insecure?: boolean;
}

/** The packageSourceCredentials section for one source (its key is the element name; NuGet encodes spaces, none here). */
export function credentialsXml(sourceKey: string, c: { username: string; password: string }): string[] {
  return [
    '  <packageSourceCredentials>',
    `    <${sourceKey}>`,
    `      <add key="Username" value="${escapeXml(c.username)}" />`,
    `      <add key="ClearTextPassword" value="${escapeXml(c.password)}" />`,
    `    </${sourceKey}>`,
    '  </packageSourceCredentials>',
  ];
}

/**
 * A NuGet.Config that clears everything the machine has and lists only `sources` (one URL: key "test-source");
 * `extra`: more sections (e.g. credentialsXml).
 */
export function nugetConfigXml(sources: string | ConfigSource[], allowInsecure: boolean, packagesDir: string, extra: string[] = []): string {
  const list: ConfigSource[] = typeof sources === 'string' ? [{ key: 'test-source', value: sources, insecure: allowInsecure }] : sources;
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<configuration>',
    '  <packageSources>',
    '    <clear />',
    ...list.map((s) => `    <add key="${escapeXml(s.key)}" value="${escapeXml(s.value)}" protocolVersion="3"${s.insecure ? ' allowInsecureConnections="true"' : ''} />`),
    '  </packageSources>',
    '  <disabledPackageSources>',
    '    <clear />',
    '  </disabledPackageSources>',
    '  <auditSources>',
    '    <clear />',
    '  </auditSources>',
    '  <packageSourceMapping>',
    '    <clear />',
    '  </packageSourceMapping>',
    '  <config>',
    `    <add key="globalPackagesFolder" value="${escapeXml(packagesDir)}" />`,
    '  </config>',
    ...extra,
    '</configuration>',
    '',
  ].join('\n');
}

export async function createProject(opts: CreateProjectOptions): Promise<DotnetProject> {
  const root = await mkdtemp(join(tmpdir(), 'nuproxy-dotnet-'));
  const dir = join(root, 'proj');
  const packagesDir = join(root, 'packages');
  const httpCacheDir = join(root, 'http-cache');
  const homeDir = join(root, 'home');
  await Promise.all([dir, packagesDir, httpCacheDir, homeDir].map((d) => mkdir(d, { recursive: true })));

  const props: Record<string, string> = {
    TargetFramework: opts.tfm ?? defaultTfm(),
    EnableDefaultItems: 'false',
    ...opts.properties,
  };
  const csproj = [
    '<Project Sdk="Microsoft.NET.Sdk">',
    '  <PropertyGroup>',
    ...Object.entries(props).map(([k, v]) => `    <${k}>${escapeXml(v)}</${k}>`),
    '  </PropertyGroup>',
    '  <ItemGroup>',
    ...opts.packages.map((p) => `    <PackageReference Include="${escapeXml(p.id)}" Version="${escapeXml(p.version)}" />`),
    '  </ItemGroup>',
    '</Project>',
    '',
  ].join('\n');
  const projectFile = join(dir, 'TestProject.csproj');
  await Promise.all([
    writeFile(projectFile, csproj),
    writeFile(join(dir, 'NuGet.Config'), nugetConfigXml(opts.sourceUrl, opts.allowInsecure ?? true, packagesDir, opts.credentials ? credentialsXml('test-source', opts.credentials) : [])),
    // Stop MSBuild from importing anything from the folders above the temp dir.
    writeFile(join(dir, 'Directory.Build.props'), '<Project />\n'),
    writeFile(join(dir, 'Directory.Build.targets'), '<Project />\n'),
  ]);
  return { dir, packagesDir, httpCacheDir, projectFile, homeDir };
}

export interface RestoreResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock duration in ms. */
  ms: number;
}

/** Runs `dotnet restore` for the project (async spawn; never blocks the event loop). */
export function restore(
  p: DotnetProject,
  extraArgs: string[] = [],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RestoreResult> {
  const args = [
    'restore',
    p.projectFile,
    '--packages',
    p.packagesDir,
    '--no-http-cache',
    '--configfile',
    join(p.dir, 'NuGet.Config'),
    '--disable-build-servers',
    ...extraArgs,
  ];
  return runDotnet(args, p, opts);
}

/** The environment that isolates a dotnet command: the project's own NuGet folders and home, no telemetry. */
export function dotnetEnv(p: Pick<DotnetProject, 'packagesDir' | 'httpCacheDir' | 'homeDir'>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NUGET_PACKAGES: p.packagesDir,
    NUGET_HTTP_CACHE_PATH: p.httpCacheDir,
    DOTNET_CLI_TELEMETRY_OPTOUT: '1',
    DOTNET_NOLOGO: '1',
    DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
    DOTNET_CLI_HOME: p.homeDir,
    MSBUILDDISABLENODEREUSE: '1',
    DOTNET_CLI_USE_MSBUILD_SERVER: '0',
  };
  delete env.NUGET_API_KEY;
  delete env.NUGET_SYMBOL_API_KEY;
  return env;
}

/** Runs any `dotnet` command with the project's isolated NuGet folders and home (async spawn). */
export function runDotnet(
  args: string[],
  p: Pick<DotnetProject, 'dir' | 'packagesDir' | 'httpCacheDir' | 'homeDir'>,
  opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<RestoreResult> {
  const env = { ...dotnetEnv(p), ...opts.env };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('dotnet', args, { cwd: opts.cwd ?? p.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[test support] dotnet ${args[0]} killed after ${opts.timeoutMs ?? 300_000} ms\n`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 300_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms: Date.now() - started });
    });
  });
}

/**
 * Packs a tiny class library (`dotnet pack`, with a .snupkg when `symbols`) into `<project dir>/out`. Restoring
 * for the pack uses only an empty local folder as source: a net{N}.0 library needs no packages.
 */
export async function packLibrary(p: DotnetProject, opts: { id: string; version: string; symbols?: boolean }): Promise<{ nupkg: string; snupkg?: string; result: RestoreResult }> {
  const lib = join(dirname(p.dir), 'lib');
  const empty = join(dirname(p.dir), 'empty-source');
  const out = join(dirname(p.dir), 'out');
  await Promise.all([lib, empty, out].map((d) => mkdir(d, { recursive: true })));
  const props = [
    `<TargetFramework>${defaultTfm()}</TargetFramework>`,
    `<PackageId>${escapeXml(opts.id)}</PackageId>`,
    `<Version>${escapeXml(opts.version)}</Version>`,
    '<Authors>nuproxy-tests</Authors>',
    '<Description>Packed by the nuproxy test suite.</Description>',
    '<NuGetAudit>false</NuGetAudit>',
    ...(opts.symbols ? ['<IncludeSymbols>true</IncludeSymbols>', '<SymbolPackageFormat>snupkg</SymbolPackageFormat>'] : []),
  ];
  await Promise.all([
    writeFile(join(lib, 'Lib.csproj'), `<Project Sdk="Microsoft.NET.Sdk">\n  <PropertyGroup>\n    ${props.join('\n    ')}\n  </PropertyGroup>\n</Project>\n`),
    writeFile(join(lib, 'Lib.cs'), 'namespace PackedByTests;\npublic static class Answer { public static int Value => 42; }\n'),
    writeFile(join(lib, 'Directory.Build.props'), '<Project />\n'),
    writeFile(join(lib, 'Directory.Build.targets'), '<Project />\n'),
    writeFile(join(lib, 'NuGet.Config'), nugetConfigXml(empty, false, p.packagesDir)),
  ]);
  const result = await runDotnet(
    ['pack', join(lib, 'Lib.csproj'), '--configfile', join(lib, 'NuGet.Config'), '-p:NuGetAudit=false', '-o', out, '--disable-build-servers'],
    p,
    { cwd: lib },
  );
  const base = join(out, `${opts.id}.${opts.version}`);
  return { nupkg: `${base}.nupkg`, ...(opts.symbols ? { snupkg: `${base}.snupkg` } : {}), result };
}

/** 'lowerid/version' entries extracted into the project's packages folder, sorted. */
export function restoredPackages(p: DotnetProject): string[] {
  if (!existsSync(p.packagesDir)) return [];
  const out: string[] = [];
  for (const id of readdirSync(p.packagesDir, { withFileTypes: true })) {
    if (!id.isDirectory()) continue;
    for (const ver of readdirSync(join(p.packagesDir, id.name), { withFileTypes: true })) {
      if (!ver.isDirectory()) continue;
      const vdir = join(p.packagesDir, id.name, ver.name);
      if (existsSync(join(vdir, '.nupkg.metadata')) || existsSync(join(vdir, `${id.name}.${ver.name}.nupkg`))) {
        out.push(`${id.name}/${ver.name}`);
      }
    }
  }
  return out.sort();
}

/** Deletes the project's temp folder (project, packages, http-cache, home). */
export async function removeProject(p: DotnetProject): Promise<void> {
  await rm(dirname(p.dir), { recursive: true, force: true });
}
