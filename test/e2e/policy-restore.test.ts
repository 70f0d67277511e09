// The real dotnet client through nuproxy with a supply-chain policy (issue #16): a floating `1.*` resolves to the
// newest version old enough (not the newest), an exact reference to a blocked version fails with the rule named in
// the client's output, and `dotnet list package --vulnerable` still reports the advisories of a version already in
// use that the policy now blocks (the vulnerability resources are never filtered).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, dotnetAvailable, nugetConfigXml, removeProject, restore, restoredPackages, runDotnet, type DotnetProject } from '../support/dotnet.js';
import { needTool } from '../support/need.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const reason = needTool('dotnet', dotnetAvailable(), 'policy-restore (dotnet restore through nuproxy with a policy)');
const DAY = 86_400_000;
const daysAgo = (n: number): string => new Date(Date.now() - n * DAY).toISOString();
const timeouts = { connect: '5s', headers: '30s', body: '30s' };
const ADVISORY = 'https://github.com/advisories/GHSA-test-nuproxy-policy';

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet restore through nuproxy with a policy', () => {
  let up: TestUpstream;
  let proxy: TestProxy;
  const projects: DotnetProject[] = [];
  const project = async (sourceUrl: string, packages: { id: string; version: string }[], properties: Record<string, string> = { NuGetAudit: 'false' }): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl, packages, properties });
    projects.push(p);
    return p;
  };

  beforeAll(async () => {
    up = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Float.Pkg', version: '1.0.0' }),
        makeNupkg({ id: 'Float.Pkg', version: '1.1.0' }),
        makeNupkg({ id: 'Float.Pkg', version: '1.2.0' }),
        makeNupkg({ id: 'Vuln.Pkg', version: '1.0.0' }),
      ],
      leafMeta: {
        'Float.Pkg@1.0.0': { published: daysAgo(60) },
        'Float.Pkg@1.1.0': { published: daysAgo(30) },
        'Float.Pkg@1.2.0': { published: daysAgo(1) },
        'Vuln.Pkg@1.0.0': { vulnerabilities: [{ advisoryUrl: ADVISORY, severity: '2' }] },
      },
      vulnerabilities: { 'vuln.pkg': [{ severity: 2, url: ADVISORY, versions: '[1.0.0, 1.1.0)' }] },
    });
    proxy = await startTestProxy({ upstreams: [{ name: 'public', serviceIndex: up.serviceIndexUrl, timeouts }], config: { policy: { minimumAge: '3d' } } });
  });
  afterAll(async () => {
    await Promise.all(projects.map((p) => removeProject(p)));
    await proxy?.stop();
    await up?.close();
  });

  it('a floating 1.* resolves to the newest version old enough, not to the newest', async () => {
    // TreatWarningsAsErrors: the server's warning line (below) must not fail a strict build
    const p = await project(proxy.index, [{ id: 'Float.Pkg', version: '1.*' }], { NuGetAudit: 'false', TreatWarningsAsErrors: 'true' });
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    expect(restoredPackages(p)).toEqual(['float.pkg/1.1.0']);
    expect(r.stdout).toContain('nuproxy policy withholds 1 version of float.pkg: 1.2.0 (minimumAge)'); // said, not an error
    expect(up.hits('/v3-flatcontainer/float.pkg/1.2.0/float.pkg.1.2.0.nupkg')).toBe(0);
  });

  it('an exact reference to a blocked version fails, and the output names the rule', async () => {
    const p = await project(proxy.index, [{ id: 'Float.Pkg', version: '[1.2.0]' }]);
    const r = await restore(p);
    expect(r.code, explain(r)).not.toBe(0);
    // the version list is the only thing the client asks (the download never happens): the rule reaches the
    // output through the X-NuGet-Warning header of that list, which the client prints as a warning
    expect(r.stdout).toContain('error NU1102: Unable to find package Float.Pkg with version (= 1.2.0)');
    expect(r.stdout).toMatch(/warning : nuproxy policy withholds 1 version of float\.pkg: 1\.2\.0 \(minimumAge\); 1\.2\.0: published .*policy\.minimumAge is 3d/);
  });

  it('dotnet list package --vulnerable still reports the advisory of a version in use that the policy now blocks', async () => {
    // restored while no policy blocked it (a proxy without one over the same upstream), then the policy changes
    const cacheDir = await mkdtemp(join(tmpdir(), 'nuproxy-policy-e2e-'));
    const open = await startTestProxy({ upstreams: [{ name: 'public', serviceIndex: up.serviceIndexUrl, timeouts }], cacheDir });
    let strict: TestProxy | undefined;
    try {
      const p = await project(open.index, [{ id: 'Vuln.Pkg', version: '1.0.0' }]);
      const r = await restore(p);
      expect(r.code, explain(r)).toBe(0);
      strict = await startTestProxy({ upstreams: [{ name: 'public', serviceIndex: up.serviceIndexUrl, timeouts }], cacheDir, config: { policy: { vulnerable: 'high' } } });
      await writeFile(join(p.dir, 'NuGet.Config'), nugetConfigXml(strict.index, true, p.packagesDir));
      expect((await fetch(`${strict.url}v3/flat/vuln.pkg/1.0.0/vuln.pkg.1.0.0.nupkg`)).status).toBe(404); // blocked now
      const list = await runDotnet(['list', p.projectFile, 'package', '--vulnerable', '--source', strict.index], p);
      expect(list.code, explain(list)).toBe(0);
      expect(list.stdout).toContain('Vuln.Pkg');
      expect(list.stdout).toContain(ADVISORY);
      expect(list.stdout).toMatch(/High/);
    } finally {
      await strict?.stop();
      await open.stop().catch(() => undefined);
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
