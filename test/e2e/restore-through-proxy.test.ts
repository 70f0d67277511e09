// The real `dotnet restore` through nuproxy, with the test upstream behind it: first cold, then with the
// upstream stopped, into fresh client folders each time, so every package must come from the proxy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { findRealPackagesDir, XUNIT_AND_NEWTONSOFT } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const reason = skipReason('restore-through-proxy (dotnet restore through nuproxy)');

const EXPECTED = [
  ...XUNIT_AND_NEWTONSOFT,
  'microsoft.net.test.sdk/18.0.1',
  'microsoft.testplatform.testhost/18.0.1',
  'microsoft.testplatform.objectmodel/18.0.1',
  'microsoft.codecoverage/18.0.1',
];

const REFS = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
  { id: 'Microsoft.NET.Test.Sdk', version: '18.0.1' },
];

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet restore through nuproxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const projects: DotnetProject[] = [];
  const project = async (): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: proxy.index, packages: REFS });
    projects.push(p);
    return p;
  };

  beforeAll(async () => {
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
  });
  afterAll(async () => {
    await Promise.all(projects.map((p) => removeProject(p)));
    await proxy?.stop();
    await upstream?.close();
  });

  it('restores a real dependency graph through the proxy, cold', async () => {
    const p = await project();
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    const restored = restoredPackages(p);
    for (const e of EXPECTED) expect(restored).toContain(e);
    // every package went through the proxy exactly once
    expect(upstream.hits('/v3-flatcontainer/xunit/2.9.3/xunit.2.9.3.nupkg')).toBe(1);
    // the client only ever talked to the proxy: the upstream's address never reached it
    expect(r.stdout).not.toContain(upstream.origin);
  });

  it('restores again into empty client folders without reaching the upstream', async () => {
    upstream.resetHits();
    const p = await project();
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    for (const e of EXPECTED) expect(restoredPackages(p)).toContain(e);
    expect(upstream.requests).toEqual([]);
  });

  it('keeps restoring from the proxy alone when the upstream is gone', async () => {
    await upstream.close();
    const p = await project();
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    for (const e of EXPECTED) expect(restoredPackages(p)).toContain(e);
    // request log lines show every package answered from the cache
    const nupkgLines = proxy.logs.lines.filter((l) => typeof l.path === 'string' && (l.path as string).endsWith('.nupkg'));
    expect(nupkgLines.length).toBeGreaterThan(0);
    expect(nupkgLines.slice(-EXPECTED.length).every((l) => l.cache === 'hit' && l.status === 200)).toBe(true);
  });
});
