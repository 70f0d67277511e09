// The restore closure shared by the restore and agents scenarios: the real packages' references, ~200 generated
// packages in a DAG, and one real `dotnet restore` with empty client folders (--no-http-cache).
import { join } from 'node:path';
import { createProject, removeProject, restoredPackages, type DotnetProject, dotnetEnv } from '../../test/support/dotnet.js';
import type { NupkgSpec } from '../../test/support/nupkg.js';
import { run as runCmd, type Scope } from './proc.js';

export const REAL_REFS = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
  { id: 'Microsoft.NET.Test.Sdk', version: '18.0.1' },
];

/** Ids of the measured closure; `Bench.Prime` is a disjoint closure of the same shape (the JIT-warm cold restore). */
export function pid(i: number, prefix = 'Bench.Restore'): string {
  return `${prefix}.P${String(i).padStart(3, '0')}`;
}

/**
 * A DAG over n ids reachable from P000: i depends on 2i+1, 2i+2 (a tree, depth log2 n) and on i+5 (diamonds).
 * Three versions each; dependencies ask for >= 1.0.0, so 1.0.0 is what restores (the others lengthen the lists).
 */
export function restoreSpecs(n: number, prefix = 'Bench.Restore'): NupkgSpec[] {
  const specs: NupkgSpec[] = [];
  for (let i = 0; i < n; i++) {
    const deps = [2 * i + 1, 2 * i + 2, i + 5].filter((j) => j < n).map((j) => ({ id: pid(j, prefix), range: '1.0.0' }));
    for (const [vi, version] of ['1.0.0', '1.1.0', '2.0.0'].entries()) {
      specs.push({
        id: pid(i, prefix),
        version,
        dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: deps }],
        // 4 KB .. ~200 KB, deterministic
        padBytes: vi === 0 ? 4096 + ((i * 7919) % 200_000) : 2048,
      });
    }
  }
  return specs;
}

/**
 * One `dotnet restore` of the closure from `sourceUrl` (a service index), empty client folders. `prefix` picks the
 * generated closure; the disjoint prime closure is restored without the real packages (they stay cold for the
 * measured one).
 */
export async function restoreOnce(scope: Scope, sourceUrl: string, timeoutMs: number, prefix = 'Bench.Restore'): Promise<{ ms: number; packages: number }> {
  const p: DotnetProject = await createProject({
    sourceUrl,
    packages: [...(prefix === 'Bench.Restore' ? REAL_REFS : []), { id: pid(0, prefix), version: '1.0.0' }],
    properties: { NuGetAudit: 'false' },
  });
  try {
    const env = dotnetEnv(p);
    const args = ['restore', p.projectFile, '--packages', p.packagesDir, '--no-http-cache', '--configfile', join(p.dir, 'NuGet.Config'), '--disable-build-servers'];
    const r = await runCmd(scope, 'dotnet', args, { timeoutMs, cwd: p.dir, env });
    if (r.code !== 0) throw new Error(`dotnet restore from ${sourceUrl} exited ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    return { ms: r.ms, packages: restoredPackages(p).length };
  } finally {
    await removeProject(p);
  }
}
