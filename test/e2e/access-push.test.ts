// The real client pushing under access control (issue #15): `dotnet nuget push` with a nuproxy token as its API
// key (publish.keyMode mapped), refused with 403 for a token without push or outside its scopes, and in
// passthrough mode with anonymous reads off, the token as the ClearTextPassword of packageSourceCredentials while
// the API key goes on to the upstream. What the upstream received is what each test checks.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/feed/publish.js';
import { createProject, credentialsXml, removeProject, runDotnet, skipReason, type DotnetProject } from '../support/dotnet.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const reason = skipReason('access-push (dotnet nuget push with nuproxy tokens)');

const UPSTREAM_KEY = `upstream-${randomBytes(12).toString('hex')}`;
const PUSHER = `pusher-${randomBytes(12).toString('hex')}`;
const READER = `reader-${randomBytes(12).toString('hex')}`;
const SCOPED = `scoped-${randomBytes(12).toString('hex')}`;
const SECRETS = [UPSTREAM_KEY, PUSHER, READER, SCOPED];

const tokens = [
  { name: 'ci', sha256: hashKey(PUSHER), permissions: ['read', 'push'] },
  { name: 'reader', sha256: hashKey(READER), permissions: ['read'] },
  { name: 'contoso-team', sha256: hashKey(SCOPED), permissions: ['read', 'push'], scopes: ['Contoso.*'] },
];

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** A package file in the project folder, for `dotnet nuget push` (the client reads the id from its nuspec). */
async function packageFile(project: DotnetProject, id: string, version: string): Promise<string> {
  const path = join(project.dir, `${id}.${version}.nupkg`);
  await writeFile(path, makeNupkg({ id, version }));
  return path;
}

/** Adds packageSourceCredentials for the project's one source ("test-source"): the token as ClearTextPassword. */
async function addCredentials(project: DotnetProject, password: string): Promise<void> {
  const file = join(project.dir, 'NuGet.Config');
  const xml = await readFile(file, 'utf8');
  const section = credentialsXml('test-source', { username: 'build-agent', password }).join('\n');
  await writeFile(file, xml.replace('</configuration>', `${section}\n</configuration>`));
}

function expectNoSecret(proxy: TestProxy, printed: string): void {
  for (const s of SECRETS) {
    expect(printed).not.toContain(s);
    expect(proxy.logs.raw()).not.toContain(s);
  }
}

describe.skipIf(reason !== undefined)('dotnet nuget push with a nuproxy token as the API key (mapped keys)', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let project: DotnetProject;
  const printed: string[] = [];

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: UPSTREAM_KEY } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: { access: { anonymous: false, tokens }, publish: { keyMode: 'mapped', upstreamKeyEnv: 'PUSH_KEY' } },
      env: { PUSH_KEY: UPSTREAM_KEY },
    });
    project = await createProject({ sourceUrl: proxy.index, packages: [] });
  });
  afterAll(async () => {
    if (project) await removeProject(project);
    await proxy?.stop();
    await upstream?.close();
  });

  const push = async (file: string, key: string) => {
    const r = await runDotnet(['nuget', 'push', file, '--source', proxy.index, '--api-key', key, '--configfile', join(project.dir, 'NuGet.Config')], project);
    printed.push(r.stdout, r.stderr);
    return r;
  };

  it('a push token pushes, and the upstream gets only its own key', { timeout: 120_000 }, async () => {
    const r = await push(await packageFile(project, 'Team.Mapped', '1.0.0'), PUSHER);
    expect(r.code, explain(r)).toBe(0);
    expect(upstream.pushes.map((p) => `${p.id}@${p.version}`)).toEqual(['Team.Mapped@1.0.0']);
    expect(upstream.pushes[0]!.headers['x-nuget-apikey']).toBe(UPSTREAM_KEY);
    expect(String(upstream.pushes[0]!.headers['x-nuget-client-version'])).toMatch(/^\d+\.\d+/);
    expect(proxy.logs.lines).toContainEqual(expect.objectContaining({ method: 'PUT', status: 201, principal: 'ci' }));
  });

  it('a read-only token: the client reports 403 and why, and the upstream gets nothing', { timeout: 120_000 }, async () => {
    const attempts = upstream.publishAttempts.length;
    const r = await push(await packageFile(project, 'Team.Mapped', '2.0.0'), READER);
    expect(r.code).not.toBe(0);
    // the client prints the reason phrase: nuproxy's says why
    expect(r.stdout + r.stderr, explain(r)).toContain('403 (token reader does not have the push permission)');
    expect(upstream.publishAttempts).toHaveLength(attempts);
  });

  it('a scoped token: its own id pushed, another refused with 403 before the upstream sees it', { timeout: 120_000 }, async () => {
    const ok = await push(await packageFile(project, 'Contoso.Tools', '1.0.0'), SCOPED);
    expect(ok.code, explain(ok)).toBe(0);
    expect(upstream.pushes.at(-1)).toMatchObject({ id: 'Contoso.Tools', version: '1.0.0' });
    const attempts = upstream.publishAttempts.length;
    const out = await push(await packageFile(project, 'Fabrikam.Tools', '1.0.0'), SCOPED);
    expect(out.code).not.toBe(0);
    expect(out.stdout + out.stderr, explain(out)).toContain("403 (Fabrikam.Tools is outside this token's scopes");
    expect(upstream.publishAttempts).toHaveLength(attempts);
    expect(upstream.isListed('Fabrikam.Tools', '1.0.0')).toBeUndefined();
  });

  it('no token reaches the output or the logs', () => {
    expect(printed.length).toBeGreaterThan(0);
    expectNoSecret(proxy, printed.join('\n'));
  });
});

describe.skipIf(reason !== undefined)('dotnet nuget push with packageSourceCredentials (pass-through keys, no anonymous access)', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let project: DotnetProject;

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: UPSTREAM_KEY } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: { access: { anonymous: false, tokens } },
    });
    project = await createProject({ sourceUrl: proxy.index, packages: [] });
  });
  afterAll(async () => {
    if (project) await removeProject(project);
    await proxy?.stop();
    await upstream?.close();
  });

  const push = (file: string) =>
    runDotnet(['nuget', 'push', file, '--source', 'test-source', '--api-key', UPSTREAM_KEY, '--configfile', join(project.dir, 'NuGet.Config')], project);

  it('without credentials the client is refused with 401, and the upstream gets nothing', { timeout: 120_000 }, async () => {
    const r = await push(await packageFile(project, 'Team.Passthrough', '0.9.0'));
    expect(r.code).not.toBe(0);
    // challenged, the client without credentials retries once with empty ones ("Basic Og=="), and prints the
    // reason phrase of that second 401
    expect(r.stdout + r.stderr, explain(r)).toMatch(/401 \((this feed needs a token|the token is not valid for this feed)/);
    expect(upstream.publishAttempts).toHaveLength(0);
  });

  it("with the push token as ClearTextPassword it pushes, and the upstream gets the client's API key", { timeout: 120_000 }, async () => {
    await addCredentials(project, PUSHER);
    const r = await push(await packageFile(project, 'Team.Passthrough', '1.0.0'));
    expect(r.code, explain(r)).toBe(0);
    expect(upstream.pushes.map((p) => `${p.id}@${p.version}`)).toEqual(['Team.Passthrough@1.0.0']);
    const seen = upstream.pushes[0]!.headers;
    expect(seen['x-nuget-apikey']).toBe(UPSTREAM_KEY);
    expect(seen.authorization).toBeUndefined(); // the nuproxy token stays at nuproxy
    // the client sends its credentials only when challenged: the 401 first, then the push under the token's name
    const puts = proxy.logs.lines.filter((l) => l.method === 'PUT');
    expect(puts.at(-1)).toMatchObject({ status: 201, principal: 'ci' });
    expect(puts.at(-2)).toMatchObject({ status: 401 });
    expectNoSecret(proxy, r.stdout + r.stderr);
  });
});
