// Pushes under access control with pass-through keys (issue #15): X-NuGet-ApiKey is the upstream's and relayed;
// with anonymous reads off the pusher names its token by HTTP Basic (packageSourceCredentials) or Bearer, with
// them on anonymous pushes go on as before, and a scoped token is held to its scopes either way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestUpstream, INVALID_KEY_MESSAGE, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { pushMultipart, send } from '../support/push.js';
import { accessLines, basic, expectNoSecretLogged, GUESS, pkg, PUSHER, READER, SCOPED, tokens, UPSTREAM_KEY } from '../support/access-tokens.js';

describe('pass-through keys with access.anonymous false: the token comes by HTTP Basic or Bearer', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: UPSTREAM_KEY } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: { access: { anonymous: false, tokens } },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it("Basic with a push token: 201, the client's X-NuGet-ApiKey relayed and the token not", async () => {
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass'), { authorization: basic(PUSHER), 'x-nuget-apikey': UPSTREAM_KEY });
    expect(r.status, r.text).toBe(201);
    const seen = upstream.pushes.at(-1)!.headers;
    expect(seen['x-nuget-apikey']).toBe(UPSTREAM_KEY);
    expect(seen.authorization).toBeUndefined();
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'PUT', status: 201, principal: 'pusher' }));
    const bearer = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass', '1.1.0'), { authorization: `Bearer ${PUSHER}`, 'x-nuget-apikey': UPSTREAM_KEY });
    expect(bearer.status, bearer.text).toBe(201);
  });

  it("the upstream still judges the relayed key: a wrong one gets the upstream's refusal", async () => {
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass', '2.0.0'), { authorization: basic(PUSHER), 'x-nuget-apikey': GUESS });
    expect(r.status).toBe(403);
    expect(r.text).toContain(INVALID_KEY_MESSAGE);
  });

  it('no Basic: 401 with the challenge, even with the upstream key (it is not a nuproxy token here)', async () => {
    const before = upstream.publishAttempts.length;
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass', '3.0.0'), { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Basic realm="nuproxy"');
    // a nuproxy token as X-NuGet-ApiKey is the upstream's key in this mode, not a credential
    expect((await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass', '3.0.0'), { 'x-nuget-apikey': PUSHER })).status).toBe(401);
    expect((await send(`${proxy.url}v3/package/team.pass/1.0.0`, 'DELETE', { 'x-nuget-apikey': UPSTREAM_KEY })).status).toBe(401);
    const wrong = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass', '3.0.0'), { authorization: basic(GUESS), 'x-nuget-apikey': UPSTREAM_KEY });
    expect(wrong.status).toBe(401);
    expect(upstream.publishAttempts).toHaveLength(before);
  });

  it('Basic with a read token: 403', async () => {
    const before = upstream.publishAttempts.length;
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Pass', '4.0.0'), { authorization: basic(READER), 'x-nuget-apikey': UPSTREAM_KEY });
    expect(r.status).toBe(403);
    expect(upstream.publishAttempts).toHaveLength(before);
  });

  it('no log line holds a token, the upstream key or a wrong guess', () => {
    expectNoSecretLogged(proxy);
  });
});

describe('pass-through keys with anonymous reads: pushes as before, scoped tokens still held to their scopes', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: UPSTREAM_KEY } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: { access: { tokens } },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('an anonymous push goes to the upstream, which judges its key', async () => {
    expect((await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Open'), { 'x-nuget-apikey': UPSTREAM_KEY })).status).toBe(201);
    const wrong = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Open', '2.0.0'), { 'x-nuget-apikey': GUESS });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toContain(INVALID_KEY_MESSAGE);
    expect(upstream.pushes.map((p) => p.id)).toEqual(['Team.Open']);
  });

  it('a scoped token by Basic: its own ids pushed, others 403 with nothing sent', async () => {
    const ok = await pushMultipart(`${proxy.url}v3/package/`, pkg('Contoso.Open'), { authorization: basic(SCOPED), 'x-nuget-apikey': UPSTREAM_KEY });
    expect(ok.status, ok.text).toBe(201);
    expect(upstream.pushes.at(-1)).toMatchObject({ id: 'Contoso.Open', headers: expect.objectContaining({ 'x-nuget-apikey': UPSTREAM_KEY }) });
    const before = upstream.publishAttempts.length;
    const out = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Open', '3.0.0'), { authorization: basic(SCOPED), 'x-nuget-apikey': UPSTREAM_KEY });
    expect(out.status).toBe(403);
    expect(upstream.publishAttempts).toHaveLength(before);
    expectNoSecretLogged(proxy);
  });
});
