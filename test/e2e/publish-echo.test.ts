// The real client pushing through nuproxy to an upstream that echoes its requests (issue #11 item 2): what
// `dotnet nuget push` prints (the upstream's X-NuGet-Warning on success, its reason phrase on a refusal) must
// hold neither the upstream's bearer token nor the mapped push key nuproxy sent it.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/feed/publish.js';
import { createProject, removeProject, runDotnet, skipReason, type DotnetProject } from '../support/dotnet.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { ECHO_INDEX_WITH_SYMBOLS, installPublishEcho } from '../support/hostile/publish.js';

const reason = skipReason('the real dotnet nuget push against an echoing upstream');

const TOKEN = `bearer-${randomBytes(12).toString('hex')}`;
const MAPPED = `mapped-${randomBytes(12).toString('hex')}`;
const AGENT_KEY = `agent-${randomBytes(12).toString('hex')}`;

describe.skipIf(reason !== undefined)('dotnet nuget push through nuproxy to an echoing upstream', () => {
  let upstream: HostileUpstream;
  let proxy: TestProxy;
  let project: DotnetProject;

  beforeAll(async () => {
    upstream = await startHostileUpstream({ publish: true });
    installPublishEcho(upstream);
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: `${upstream.origin}${ECHO_INDEX_WITH_SYMBOLS}`, writable: true, retries: 0, auth: { type: 'bearer', tokenEnv: 'UP_TOKEN' } }],
      config: { publish: { keyMode: 'mapped', keys: [{ name: 'ci', sha256: hashKey(AGENT_KEY) }], upstreamKeyEnv: 'PUSH_KEY' } },
      env: { UP_TOKEN: TOKEN, PUSH_KEY: MAPPED },
    });
    project = await createProject({ sourceUrl: proxy.index, packages: [] });
  });
  afterAll(async () => {
    if (project) await removeProject(project);
    await proxy?.stop();
    await upstream?.close();
  });

  it('prints the echoed warning and refusal with the secrets cut out', { timeout: 120_000 }, async () => {
    const nupkg = join(project.dir, 'Team.Echo.1.0.0.nupkg');
    const snupkg = join(project.dir, 'Team.Echo.1.0.0.snupkg');
    await writeFile(nupkg, makeNupkg({ id: 'Team.Echo', version: '1.0.0' }));
    await writeFile(snupkg, makeNupkg({ id: 'Team.Echo', version: '1.0.0', description: 'symbols' }));
    const args = ['--source', proxy.index, '--api-key', AGENT_KEY, '--configfile', join(project.dir, 'NuGet.Config')];
    // the package: 201 with an echoing X-NuGet-Warning (the client prints it); symbols: 409 with an echoing reason
    const push = await runDotnet(['nuget', 'push', nupkg, '--no-symbols', ...args], project);
    const symbols = await runDotnet(['nuget', 'push', snupkg, ...args], project);
    const printed = [push.stdout, push.stderr, symbols.stdout, symbols.stderr].join('\n');
    // the upstream got both secrets and echoed them back
    expect(upstream.requests.some((r) => r.headers.authorization === `Bearer ${TOKEN}` && r.headers['x-nuget-apikey'] === MAPPED)).toBe(true);
    expect(push.code, printed).toBe(0);
    expect(symbols.code, printed).not.toBe(0);
    expect(printed).toContain('Your request: auth=Bearer [redacted] key=[redacted]');
    expect(printed).toContain('409 (Echo auth=Bearer [redacted] key=[redacted])');
    for (const s of [TOKEN, MAPPED, Buffer.from(TOKEN).toString('base64'), Buffer.from(MAPPED).toString('base64')]) expect(printed).not.toContain(s);
    expect(proxy.logs.raw()).not.toContain(TOKEN);
    expect(proxy.logs.raw()).not.toContain(MAPPED);
  });
});
