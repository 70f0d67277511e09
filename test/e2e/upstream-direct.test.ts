// The real `dotnet restore` against the test upstream directly (no proxy): proves the test feed is faithful
// enough for the official client, so proxy e2e tests can rely on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { makeNupkg } from '../support/nupkg.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const reason = skipReason('upstream-direct (dotnet restore directly against the test upstream)');

const projects: DotnetProject[] = [];
async function project(sourceUrl: string, packages: { id: string; version: string }[]): Promise<DotnetProject> {
  const p = await createProject({ sourceUrl, packages });
  projects.push(p);
  return p;
}

afterAll(async () => {
  await Promise.all(projects.map((p) => removeProject(p)));
});

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet restore directly against the test upstream', () => {
  describe('real packages (global-packages folder layout)', () => {
    let up: TestUpstream;
    beforeAll(async () => {
      up = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    });
    afterAll(async () => {
      await up?.close();
    });

    it('restores xunit 2.9.3 and Newtonsoft.Json 13.0.3 with their dependency graph', async () => {
      const p = await project(up.serviceIndexUrl, [
        { id: 'xunit', version: '2.9.3' },
        { id: 'Newtonsoft.Json', version: '13.0.3' },
      ]);
      const r = await restore(p);
      expect(r.code, explain(r)).toBe(0);
      const restored = restoredPackages(p);
      for (const expected of [
        'xunit/2.9.3',
        'xunit.core/2.9.3',
        'xunit.assert/2.9.3',
        'xunit.analyzers/1.26.0', // xunit asks for >= 1.18.0; the folder only has 1.26.0 (NU1603 warning)
        'xunit.abstractions/2.0.3',
        'xunit.extensibility.core/2.9.3',
        'xunit.extensibility.execution/2.9.3',
        'newtonsoft.json/13.0.3',
      ]) {
        expect(restored).toContain(expected);
      }
      expect(up.hits('/v3/index.json')).toBeGreaterThanOrEqual(1);
      expect(up.hits('/v3-flatcontainer/xunit/index.json')).toBeGreaterThanOrEqual(1);
      expect(up.hits('/v3-flatcontainer/xunit/2.9.3/xunit.2.9.3.nupkg')).toBeGreaterThanOrEqual(1);
      expect(up.hits(/^\/v3-flatcontainer\/.*\.nupkg$/)).toBeGreaterThanOrEqual(8);
      // restore uses only the service index and the flat container
      expect(up.requests.filter((q) => !q.path.startsWith('/v3-flatcontainer/') && q.path !== '/v3/index.json')).toEqual([]);
      const ua = up.requests[0]!.headers['user-agent'];
      expect(String(ua)).toMatch(/^NuGet .NET Core MSBuild Task\//);
    });
  });

  describe('generated packages', () => {
    let up: TestUpstream;
    beforeAll(async () => {
      up = await startTestUpstream({
        packages: [
          makeNupkg({
            id: 'Contoso.Lib',
            version: '1.0.0',
            dependencyGroups: [{ dependencies: [{ id: 'Contoso.Core', range: '[1.0.0, )' }] }],
          }),
          makeNupkg({ id: 'Contoso.Core', version: '1.0.0', padBytes: 2 * 1024 * 1024 }),
          makeNupkg({ id: 'Contoso.Core', version: '1.1.0-beta.1' }),
        ],
      });
    });
    afterAll(async () => {
      await up?.close();
    });

    it('restores makeNupkg packages and their dependencies', async () => {
      const p = await project(up.serviceIndexUrl, [{ id: 'Contoso.Lib', version: '1.0.0' }]);
      const r = await restore(p);
      expect(r.code, explain(r)).toBe(0);
      expect(restoredPackages(p)).toEqual(['contoso.core/1.0.0', 'contoso.lib/1.0.0']);
      expect(up.hits('/v3-flatcontainer/contoso.core/1.0.0/contoso.core.1.0.0.nupkg')).toBe(1);
    });

    it('uses nothing but the given source (the machine NuGet.Config is cleared)', async () => {
      // Newtonsoft.Json exists on the machine-level sources but not on this upstream: restore must fail.
      const p = await project(up.serviceIndexUrl, [{ id: 'Newtonsoft.Json', version: '13.0.3' }]);
      const r = await restore(p);
      expect(r.code, explain(r)).not.toBe(0);
      expect(r.stdout).toMatch(/NU1101/);
      expect(r.stdout).toMatch(/source\(s\): test-source\b/);
      expect(restoredPackages(p)).toEqual([]);
      expect(up.hits('/v3-flatcontainer/newtonsoft.json/index.json')).toBeGreaterThanOrEqual(1);
    });
  });
});
