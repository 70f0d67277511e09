// The real client publishing through nuproxy: `dotnet pack`, `dotnet nuget push` to the proxy's URL, an
// immediate `dotnet restore` through the proxy, a wrong key, and `dotnet nuget delete`.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, packLibrary, removeProject, restore, restoredPackages, runDotnet, skipReason, type DotnetProject } from '../support/dotnet.js';
import { startTestUpstream, INVALID_KEY_MESSAGE, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';

const reason = skipReason('publish-through-proxy (dotnet nuget push / delete through nuproxy)');

const KEY = 'company-push-key-42';
const ID = 'Contoso.Published';

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet nuget push / delete through nuproxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let project: DotnetProject;

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: KEY } });
    proxy = await startTestProxy({ upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }] });
    project = await createProject({ sourceUrl: proxy.index, packages: [{ id: ID, version: '1.0.0' }] });
  });
  afterAll(async () => {
    if (project) await removeProject(project);
    await proxy?.stop();
    await upstream?.close();
  });

  it('pushes a packed library and its symbols through the proxy, and restores it at once', { timeout: 300_000 }, async () => {
    // the proxy has just been asked about the id and remembers "not there"
    expect((await get(`${proxy.url}v3/flat/contoso.published/index.json`)).status).toBe(404);
    const packed = await packLibrary(project, { id: ID, version: '1.0.0', symbols: true });
    expect(packed.result.code, explain(packed.result)).toBe(0);
    expect(existsSync(packed.snupkg!)).toBe(true);

    const push = await runDotnet(['nuget', 'push', packed.nupkg, '--source', proxy.index, '--api-key', KEY, '--configfile', `${project.dir}/NuGet.Config`], project);
    expect(push.code, explain(push)).toBe(0);
    expect(upstream.pushes.map((p) => `${p.id}@${p.version}`)).toEqual([`${ID}@1.0.0`]);
    expect(upstream.symbolPushes.map((p) => `${p.id}@${p.version}`)).toEqual([`${ID}@1.0.0`]);
    // the real client's protocol header reached the upstream through the proxy
    expect(String(upstream.pushes[0]!.headers['x-nuget-client-version'])).toMatch(/^\d+\.\d+/);

    const r = await restore(project);
    expect(r.code, explain(r)).toBe(0);
    expect(restoredPackages(project)).toContain('contoso.published/1.0.0');
  });

  it("shows the upstream's refusal of a wrong key", { timeout: 300_000 }, async () => {
    const packed = await packLibrary(project, { id: ID, version: '1.0.1' });
    const push = await runDotnet(['nuget', 'push', packed.nupkg, '--source', proxy.index, '--api-key', 'wrong-key', '--configfile', `${project.dir}/NuGet.Config`], project);
    expect(push.code).not.toBe(0);
    expect(push.stdout + push.stderr).toContain('403');
    expect(push.stdout + push.stderr).toContain(INVALID_KEY_MESSAGE);
    expect(upstream.pushes).toHaveLength(1);
  });

  it('unlists through the proxy with dotnet nuget delete', { timeout: 300_000 }, async () => {
    // `dotnet nuget delete` has no --configfile: it reads the NuGet.Config of its working directory
    const del = await runDotnet(['nuget', 'delete', ID, '1.0.0', '--source', proxy.index, '--api-key', KEY, '--non-interactive'], project);
    expect(del.code, explain(del)).toBe(0);
    expect(upstream.isListed(ID, '1.0.0')).toBe(false);
    const reg = (await get(`${proxy.url}v3/registration/semver2/contoso.published/index.json`)).json();
    expect(reg.items[0].items[0].catalogEntry.listed).toBe(false);
  });
});
