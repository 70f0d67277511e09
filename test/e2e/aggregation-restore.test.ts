// The real dotnet client against ONE nuproxy URL that merges two upstreams (issue #3): a public feed (the
// machine's real packages: xunit, Newtonsoft.Json, ...) and a company feed (generated Contoso.* packages) that
// owns `Contoso.*`. One restore needs packages from both; the public feed also publishes a higher Contoso.Secret
// (dependency confusion), which must never be picked. Then `dotnet package search` through the same proxy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject, runDotnet } from '../support/dotnet.js';
import { makeNupkg } from '../support/nupkg.js';
import { findRealPackagesDir, XUNIT_AND_NEWTONSOFT } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const reason = skipReason('aggregation-restore (dotnet through one nuproxy URL merging two upstreams)');

const timeouts = { connect: '5s', headers: '30s', body: '30s' };

const PUBLIC_PACKAGES = [
  ...XUNIT_AND_NEWTONSOFT,
];
const COMPANY_PACKAGES = ['contoso.lib/1.0.0', 'contoso.secret/1.0.0'];

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}


/** Requests about an id (flat, registration, package); search queries go to every upstream by design. */
const askedAbout = (u: TestUpstream, id: RegExp): string[] => u.requests.map((r) => r.path).filter((p) => id.test(p) && !p.startsWith('/query?'));
const nupkgRequests = (u: TestUpstream): string[] => u.requests.map((r) => r.path.split('?')[0]!).filter((p) => p.endsWith('.nupkg'));

describe.skipIf(reason !== undefined)('dotnet through one nuproxy URL merging two upstreams', () => {
  let pub: TestUpstream;
  let company: TestUpstream;
  let proxy: TestProxy;
  const projects: DotnetProject[] = [];

  beforeAll(async () => {
    pub = await startTestUpstream({
      packageDirs: [findRealPackagesDir()!],
      // dependency confusion: the public feed publishes the company's id, higher, with other bytes
      packages: [makeNupkg({ id: 'Contoso.Secret', version: '9.9.9', description: 'EVIL public Contoso.Secret' })],
    });
    company = await startTestUpstream({
      packages: [
        makeNupkg({
          id: 'Contoso.Lib',
          version: '1.0.0',
          description: 'Contoso.Lib from the company feed',
          dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: [{ id: 'Newtonsoft.Json', range: '[13.0.3, )' }] }],
        }),
        makeNupkg({ id: 'Contoso.Secret', version: '1.0.0', description: 'the real Contoso.Secret' }),
      ],
    });
    proxy = await startTestProxy({
      upstreams: [
        { name: 'public', serviceIndex: pub.serviceIndexUrl, timeouts },
        { name: 'company', serviceIndex: company.serviceIndexUrl, timeouts, owns: ['Contoso.*'] },
      ],
    });
  });
  afterAll(async () => {
    await Promise.all(projects.map((p) => removeProject(p)));
    await proxy?.stop();
    await pub?.close();
    await company?.close();
  });

  it('restores packages from both upstreams through one URL; each upstream gets only its own package requests', async () => {
    const p = await createProject({
      sourceUrl: proxy.index,
      packages: [
        { id: 'xunit', version: '2.9.3' },
        { id: 'Contoso.Lib', version: '1.0.0' },
        // floating: the highest version the feed offers; the public 9.9.9 must not be offered
        { id: 'Contoso.Secret', version: '*' },
      ],
    });
    projects.push(p);
    const started = Date.now();
    const r = await restore(p);
    console.info(`[aggregation-restore] cold restore through the merged feed: ${Date.now() - started} ms`);
    expect(r.code, explain(r)).toBe(0);
    const restored = restoredPackages(p);
    for (const e of [...PUBLIC_PACKAGES, ...COMPANY_PACKAGES]) expect(restored, explain(r)).toContain(e);
    expect(restored).not.toContain('contoso.secret/9.9.9');
    const nuspec = readFileSync(join(p.packagesDir, 'contoso.secret', '1.0.0', 'contoso.secret.nuspec'), 'utf8');
    expect(nuspec).toContain('the real Contoso.Secret');

    const pubNupkgs = nupkgRequests(pub);
    const companyNupkgs = nupkgRequests(company);
    expect(pubNupkgs).toContain('/v3-flatcontainer/xunit/2.9.3/xunit.2.9.3.nupkg');
    expect(pubNupkgs).toContain('/v3-flatcontainer/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg');
    expect(pubNupkgs.filter((x) => /contoso/i.test(x))).toEqual([]);
    expect([...companyNupkgs].sort()).toEqual([
      '/v3-flatcontainer/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg',
      '/v3-flatcontainer/contoso.secret/1.0.0/contoso.secret.1.0.0.nupkg',
    ]);
    // the public feed was never asked anything about the company's ids
    expect(askedAbout(pub, /contoso/i)).toEqual([]);
    // the client only ever talked to the proxy
    expect(r.stdout).not.toContain(pub.origin);
    expect(r.stdout).not.toContain(company.origin);
  });

  it('finds packages of both upstreams with `dotnet package search` through the proxy (JSON output)', async () => {
    const p = await createProject({ sourceUrl: proxy.index, packages: [] });
    projects.push(p);
    // "co" matches ids on both feeds: coverlet.collector, xunit.core, ... (public) and Contoso.* (company)
    const args = ['package', 'search', 'co', '--source', proxy.index, '--configfile', join(p.dir, 'NuGet.Config'), '--format', 'json', '--take', '100'];
    const r = await runDotnet(args, p, { timeoutMs: 180_000 });
    expect(r.code, explain(r)).toBe(0);
    const doc = JSON.parse(r.stdout) as { problems?: unknown[]; searchResult: { sourceName: string; problems?: unknown[]; packages: { id: string; latestVersion: string }[] }[] };
    expect(doc.problems ?? [], r.stdout).toEqual([]);
    expect(doc.searchResult).toHaveLength(1);
    const found = doc.searchResult[0]!;
    expect(found.problems ?? [], r.stdout).toEqual([]);
    const byId = new Map(found.packages.map((x) => [x.id.toLowerCase(), x]));
    // public feed
    expect(byId.get('xunit.core')?.latestVersion, r.stdout).toBe('2.9.3');
    expect(byId.get('coverlet.collector'), r.stdout).toBeDefined();
    // company feed, and only the company's Contoso.Secret
    expect(byId.get('contoso.lib')?.latestVersion, r.stdout).toBe('1.0.0');
    expect(byId.get('contoso.secret')?.latestVersion, r.stdout).toBe('1.0.0');
    expect(r.stdout).not.toContain('9.9.9');
    expect(found.packages.filter((x) => x.id.toLowerCase() === 'contoso.secret')).toHaveLength(1);
    expect(pub.hits('/query')).toBeGreaterThan(0);
    expect(company.hits('/query')).toBeGreaterThan(0);
  });
});
