// Locates the machine's folder of real NuGet packages (global-packages layout: {lowerid}/{ver}/{lowerid}.{ver}.nupkg)
// that contains xunit 2.9.3, Newtonsoft.Json 13.0.3, Microsoft.NET.Test.Sdk 18.0.1 and their dependencies.
// The absolute path is discovered at run time on purpose: it must never be written into the repository.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const MARKER = join('xunit', '2.9.3', 'xunit.2.9.3.nupkg');

let cached: { dir: string | undefined } | undefined;

function hasMarker(dir: string | undefined): dir is string {
  return dir !== undefined && dir.trim() !== '' && existsSync(join(dir, MARKER));
}

function stdoutOf(cmd: string, args: string[], timeoutMs: number): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
    });
  } catch (err) {
    // find exits non-zero when one of its roots is missing, but its stdout is still good.
    const out = (err as { stdout?: unknown }).stdout;
    return typeof out === 'string' ? out : '';
  }
}

function fromDotnetLocals(): string | undefined {
  const out = stdoutOf('dotnet', ['nuget', 'locals', 'global-packages', '--list'], 60_000);
  const m = /global-packages:\s*(.+)$/m.exec(out);
  return m ? m[1]!.trim() : undefined;
}

function fromBoundedSearch(): string | undefined {
  const roots = ['/opt', '/usr/share', '/usr/local'].filter((r) => existsSync(r));
  if (roots.length === 0) return undefined;
  const out = stdoutOf(
    'find',
    [...roots, '-maxdepth', '5', '-path', '*/xunit/2.9.3/xunit.2.9.3.nupkg', '-print', '-quit'],
    20_000,
  );
  const hit = out.split('\n')[0]?.trim();
  // {root}/xunit/2.9.3/xunit.2.9.3.nupkg -> {root}
  return hit ? dirname(dirname(dirname(hit))) : undefined;
}

/** The folder that contains `xunit/`, or undefined when this machine has none. Cached. */
export function findRealPackagesDir(): string | undefined {
  if (cached) return cached.dir;
  const candidates: (() => string | undefined)[] = [
    () => process.env.NUPROXY_REAL_PACKAGES,
    fromDotnetLocals,
    fromBoundedSearch,
  ];
  let dir: string | undefined;
  for (const candidate of candidates) {
    const d = candidate();
    if (hasMarker(d)) {
      dir = resolve(d);
      break;
    }
  }
  cached = { dir };
  return dir;
}

/** What restoring xunit 2.9.3 and Newtonsoft.Json 13.0.3 from the machine's real packages brings (lowercase id/version). */
export const XUNIT_AND_NEWTONSOFT = [
  'xunit/2.9.3',
  'xunit.core/2.9.3',
  'xunit.assert/2.9.3',
  'xunit.analyzers/1.26.0',
  'xunit.abstractions/2.0.3',
  'xunit.extensibility.core/2.9.3',
  'xunit.extensibility.execution/2.9.3',
  'newtonsoft.json/13.0.3',
] as const;
