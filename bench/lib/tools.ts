// The bench installs nothing: it finds the tools it needs, or says exactly what is missing.
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { findRealPackagesDir } from '../../test/support/real-packages.js';
import { dotnetVersion } from '../../test/support/dotnet.js';
import type { ScenarioName, Settings } from './settings.js';

export interface Tools {
  nginx: string;
  wrk: string;
  redisServer: string;
  dotnet: string;
  realPackages: string;
}

/** Absolute path of an executable on PATH (plus the sbin folders, where Debian puts nginx). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

const NEEDS: Record<ScenarioName, (keyof Tools)[]> = {
  warm: ['nginx', 'wrk'],
  herd: ['nginx'],
  metadata: ['nginx', 'wrk', 'redisServer'],
  restore: ['nginx', 'dotnet', 'realPackages'],
  memory: [],
  s3: ['wrk'],
  's3-clients': [],
  agents: ['nginx', 'dotnet', 'realPackages'],
};

const DEBIAN_PACKAGE: Partial<Record<keyof Tools, string>> = { nginx: 'nginx', wrk: 'wrk', redisServer: 'redis-server' };

/** The tools the selected scenarios need; on anything missing, a message listing it all (and undefined). */
export function findTools(s: Settings): { tools: Partial<Tools>; problems: string[] } {
  const needed = new Set(s.only.flatMap((n) => NEEDS[n]));
  const tools: Partial<Tools> = {};
  const missingDeb: string[] = [];
  const problems: string[] = [];
  if (!existsSync(s.distMain)) problems.push(`nuproxy is not built: ${s.distMain} is missing (run \`npm run build\`)`);
  for (const key of needed) {
    if (key === 'dotnet') {
      const v = dotnetVersion();
      if (v) tools.dotnet = which('dotnet') ?? 'dotnet';
      else problems.push('`dotnet` (the .NET SDK) is not available: `dotnet --version` failed (needed by the restore scenario)');
      continue;
    }
    if (key === 'realPackages') {
      const d = findRealPackagesDir();
      if (d) tools.realPackages = d;
      else
        problems.push(
          'no folder of real NuGet packages (xunit/2.9.3/xunit.2.9.3.nupkg) was found (needed by the restore scenario); ' +
            'set NUPROXY_REAL_PACKAGES to a global-packages style folder',
        );
      continue;
    }
    const bin = key === 'redisServer' ? 'redis-server' : key;
    const p = which(bin);
    if (p) tools[key] = p;
    else missingDeb.push(DEBIAN_PACKAGE[key]!);
  }
  if (missingDeb.length) {
    problems.unshift(
      `missing: ${missingDeb.join(', ')} (Debian packages). Install with:\n    ${process.getuid?.() === 0 ? '' : 'sudo '}apt-get install -y ${missingDeb.join(' ')}`,
    );
  }
  return { tools, problems };
}
