// The real `dotnet restore` against a nuproxy that protects reads (issue #15): the token as the password of
// packageSourceCredentials (ClearTextPassword) restores; no credentials or a wrong password fails with the
// client's own 401 message; a token scoped to Newtonsoft.* restores its ids and gets "not found" for others.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const reason = skipReason('access-restore (dotnet restore with packageSourceCredentials)');
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const CI = 'ci-read-token-4b7e19c0d2';
const SCOPED = 'json-team-token-8f02aa61';

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet restore with access.anonymous false', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const projects: DotnetProject[] = [];
  const project = async (packages: { id: string; version: string }[], password?: string): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: proxy.index, packages, properties: { NuGetAudit: 'false' }, ...(password ? { credentials: { username: 'build-agent', password } } : {}) });
    projects.push(p);
    return p;
  };
  const JSON_REF = [{ id: 'Newtonsoft.Json', version: '13.0.3' }];

  beforeAll(async () => {
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: {
        access: {
          anonymous: false,
          tokens: [
            { name: 'ci', sha256: sha(CI), permissions: ['read'] },
            { name: 'json-team', sha256: sha(SCOPED), permissions: ['read'], scopes: ['Newtonsoft.*'] },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await Promise.all(projects.map((p) => removeProject(p)));
    await proxy?.stop();
    await upstream?.close();
  });

  it('restores with the token as the ClearTextPassword of packageSourceCredentials', async () => {
    const p = await project(JSON_REF, CI);
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    expect(restoredPackages(p)).toContain('newtonsoft.json/13.0.3');
    const lines = proxy.logs.lines.filter((l) => l.path === '/v3/flat/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg' && l.status === 200);
    expect(lines.map((l) => l.principal)).toContain('ci');
  });

  it('fails without credentials, and with a wrong password, with the client\'s 401 message', async () => {
    for (const password of [undefined, 'not-the-token']) {
      const p = await project(JSON_REF, password);
      const r = await restore(p);
      expect(r.code, explain(r)).not.toBe(0);
      expect(`${r.stdout}\n${r.stderr}`, explain(r)).toMatch(/401 \(Unauthorized\)/);
      expect(restoredPackages(p)).toEqual([]);
    }
  });

  it('a scoped token restores its own ids and gets "not found" for any other', async () => {
    const mine = await project(JSON_REF, SCOPED);
    const ok = await restore(mine);
    expect(ok.code, explain(ok)).toBe(0);
    expect(restoredPackages(mine)).toContain('newtonsoft.json/13.0.3');

    const other = await project([{ id: 'xunit', version: '2.9.3' }], SCOPED);
    const r = await restore(other);
    expect(r.code, explain(r)).not.toBe(0);
    // NU1101: the client's "Unable to find package" — the id looks absent, not forbidden
    expect(r.stdout, explain(r)).toMatch(/NU1101[^\n]*xunit/i);
    expect(r.stdout).not.toMatch(/40[13]/);
  });

  it('never logs a token', () => {
    const text = proxy.logs.lines.map((l) => JSON.stringify(l)).join('\n');
    for (const t of [CI, SCOPED]) expect(text).not.toContain(t);
  });
});
