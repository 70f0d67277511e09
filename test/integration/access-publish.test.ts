// Pushes under access control with mapped keys (issue #15): X-NuGet-ApiKey is a nuproxy token (access.tokens, or
// the older publish.keys), the 401/403 split, a token's id scopes on push, delete and relist (nothing outside them
// reaches the upstream), and no token value in any log line. Pass-through keys: access-publish-passthrough.test.ts.
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { pushMultipart, send } from '../support/push.js';
import { filesIn, waitForEmptyTmp } from '../support/cache-audit.js';
import { waitFor } from '../support/wait.js';
import { hashKey } from '../../src/feed/publish.js';
import { accessLines, expectNoSecretLogged, GUESS, LEGACY, pkg, PUSHER, READER, SCOPED, tokens, UPSTREAM_KEY } from '../support/access-tokens.js';

describe('mapped keys: X-NuGet-ApiKey is a nuproxy token', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [pkg('Contoso.Lib')], publish: { apiKey: UPSTREAM_KEY } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: {
        access: { tokens },
        publish: { keyMode: 'mapped', keys: [{ name: 'legacy-ci', sha256: hashKey(LEGACY) }], upstreamKeyEnv: 'PUSH_KEY', maxPackageSize: '1MB' },
      },
      env: { PUSH_KEY: UPSTREAM_KEY },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('an access token with push pushes (201), and the upstream gets only its own key', async () => {
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Lib'), { 'x-nuget-apikey': PUSHER });
    expect(r.status, r.text).toBe(201);
    expect(upstream.pushes.map((p) => `${p.id}@${p.version}`)).toEqual(['Team.Lib@1.0.0']);
    expect(upstream.pushes[0]!.headers['x-nuget-apikey']).toBe(UPSTREAM_KEY);
    expect(upstream.requests.some((q) => JSON.stringify(q.headers).includes(PUSHER))).toBe(false);
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'PUT', status: 201, principal: 'pusher' }));
  });

  it('the older publish.keys still push, and start-up says they are tokens now', async () => {
    expect(proxy.logs.lines).toContainEqual(expect.objectContaining({ level: 30, msg: expect.stringContaining('publish.keys are access tokens with the push permission') }));
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Legacy'), { 'x-nuget-apikey': LEGACY });
    expect(r.status, r.text).toBe(201);
    expect(upstream.pushes.at(-1)).toMatchObject({ id: 'Team.Legacy', headers: expect.objectContaining({ 'x-nuget-apikey': UPSTREAM_KEY }) });
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'PUT', status: 201, principal: 'legacy-ci' }));
  });

  it('a wrong or missing key: 401 with the Basic challenge, and nothing reaches the upstream', async () => {
    const before = upstream.publishAttempts.length;
    const wrong = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Lib', '2.0.0'), { 'x-nuget-apikey': GUESS });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Basic realm="nuproxy"');
    expect(JSON.parse(wrong.text)).toMatchObject({ error: 'unauthorized' });
    expect(wrong.statusMessage).toBe('the token is not valid for this feed');
    expect(wrong.text).not.toContain(GUESS);
    const none = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Lib', '2.0.0'));
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="nuproxy"');
    expect((await send(`${proxy.url}v3/package/team.lib/1.0.0`, 'DELETE')).status).toBe(401);
    expect((await send(`${proxy.url}v3/package/team.lib/1.0.0`, 'POST', { 'x-nuget-apikey': GUESS })).status).toBe(401);
    expect(upstream.publishAttempts).toHaveLength(before);
  });

  it('a token without push: 403, and nothing reaches the upstream', async () => {
    const before = upstream.publishAttempts.length;
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Team.Lib', '3.0.0'), { 'x-nuget-apikey': READER });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'forbidden' });
    expect(r.statusMessage).toBe('token reader does not have the push permission');
    const del = await send(`${proxy.url}v3/package/team.lib/1.0.0`, 'DELETE', { 'x-nuget-apikey': READER });
    expect(del.status).toBe(403);
    expect(del.statusMessage).toBe('token reader does not have the push permission');
    expect(upstream.publishAttempts).toHaveLength(before);
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'PUT', status: 403, principal: 'reader' }));
  });

  it('a scoped token pushes inside its scopes: the whole package reaches the upstream and is restorable at once', async () => {
    expect((await get(`${proxy.url}v3/flat/contoso.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] }); // now cached
    const bytes = pkg('Contoso.Lib', '1.1.0');
    const r = await pushMultipart(`${proxy.url}v3/package/`, bytes, { 'x-nuget-apikey': SCOPED, 'x-nuget-client-version': '6.12.1' });
    expect(r.status, r.text).toBe(201);
    const pushed = upstream.pushes.at(-1)!;
    expect(pushed).toMatchObject({ id: 'Contoso.Lib', version: '1.1.0', bytes: bytes.length });
    expect(pushed.headers).toMatchObject({ 'x-nuget-apikey': UPSTREAM_KEY, 'x-nuget-client-version': '6.12.1' });
    // sent with its length (the client's was chunked), the client's multipart framing unchanged
    expect(pushed.headers['transfer-encoding']).toBeUndefined();
    expect(Number(pushed.headers['content-length'])).toBeGreaterThan(bytes.length);
    expect(String(pushed.headers['content-type'])).toMatch(/^multipart\/form-data; boundary=/);
    expect((await get(`${proxy.url}v3/flat/contoso.lib/index.json`)).json()).toEqual({ versions: ['1.0.0', '1.1.0'] });
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'PUT', status: 201, principal: 'contoso-team' }));
    expect(await waitForEmptyTmp(proxy.cacheDir)).toEqual([]);
  });

  it('a scoped token pushing an id outside its scopes: 403, and not one request reaches the upstream', async () => {
    const attempts = upstream.publishAttempts.length;
    const requests = upstream.requests.length;
    const pushesBefore = upstream.pushes.length;
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg('Fabrikam.Lib'), { 'x-nuget-apikey': SCOPED });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'forbidden', message: expect.stringContaining('Fabrikam.Lib is outside') });
    // the reason phrase says it too: the NuGet client prints only that
    expect(r.statusMessage).toBe(JSON.parse(r.text).message);
    const symbols = await pushMultipart(`${proxy.url}v3/symbolpackage/`, pkg('Fabrikam.Lib'), { 'x-nuget-apikey': SCOPED });
    expect(symbols.status).toBe(403);
    // the id is read from the package, not from anything the client says about it
    const sneaky = await pushMultipart(`${proxy.url}v3/package/?id=Contoso.Lib`, pkg('Fabrikam.Sneaky'), { 'x-nuget-apikey': SCOPED });
    expect(sneaky.status).toBe(403);
    expect(upstream.publishAttempts).toHaveLength(attempts);
    expect(upstream.pushes).toHaveLength(pushesBefore);
    expect(upstream.requests.slice(requests).filter((q) => q.method !== 'GET')).toEqual([]);
    expect(upstream.isListed('Fabrikam.Lib', '1.0.0')).toBeUndefined();
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'PUT', status: 403, principal: 'contoso-team' }));
    // the spooled body and the copy are gone
    expect(await waitForEmptyTmp(proxy.cacheDir)).toEqual([]);
  });

  it('a scoped push that is no package (400) or is too large (413) reaches the upstream neither', async () => {
    const attempts = upstream.publishAttempts.length;
    const junk = await pushMultipart(`${proxy.url}v3/package/`, Buffer.from('not a zip at all'), { 'x-nuget-apikey': SCOPED });
    expect(junk.status).toBe(400);
    expect(JSON.parse(junk.text)).toMatchObject({ error: 'bad_request' });
    const big = makeNupkg({ id: 'Contoso.Huge', version: '1.0.0', padBytes: 2 * 1024 * 1024 });
    const huge = await pushMultipart(`${proxy.url}v3/package/`, big, { 'x-nuget-apikey': SCOPED });
    expect(huge.status).toBe(413);
    expect(upstream.publishAttempts).toHaveLength(attempts);
    expect(await waitForEmptyTmp(proxy.cacheDir)).toEqual([]);
    // the proxy still serves, and still pushes in scope
    expect((await pushMultipart(`${proxy.url}v3/package/`, pkg('Contoso.Lib', '1.2.0'), { 'x-nuget-apikey': SCOPED })).status).toBe(201);
  });

  it('a scoped push of a bare .nupkg body (not multipart) is checked the same way', async () => {
    const put = (bytes: Uint8Array): Promise<number> =>
      new Promise((resolve, reject) => {
        const u = new URL(`${proxy.url}v3/package/`);
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'x-nuget-apikey': SCOPED } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(bytes);
      });
    const attempts = upstream.publishAttempts.length;
    expect(await put(pkg('Fabrikam.Raw'))).toBe(403);
    expect(upstream.publishAttempts).toHaveLength(attempts);
    const bytes = pkg('Contoso.Raw');
    expect(await put(bytes)).toBe(201);
    expect(upstream.pushes.at(-1)).toMatchObject({ id: 'Contoso.Raw', bytes: bytes.length });
  });

  it('a scoped symbol package inside the scopes goes to SymbolPackagePublish', async () => {
    const r = await pushMultipart(`${proxy.url}v3/symbolpackage/`, makeNupkg({ id: 'Contoso.Lib', version: '1.1.0', description: 'symbols' }), { 'x-nuget-apikey': SCOPED });
    expect(r.status, r.text).toBe(201);
    expect(upstream.symbolPushes.map((p) => `${p.id}@${p.version}`)).toEqual(['Contoso.Lib@1.1.0']);
  });

  it('a client that drops its scoped push midway: nothing reaches the upstream and the spool is removed', async () => {
    const attempts = upstream.publishAttempts.length;
    const u = new URL(`${proxy.url}v3/package/`);
    const bytes = makeNupkg({ id: 'Contoso.Dropped', version: '1.0.0', padBytes: 256 * 1024 });
    const head = Buffer.from('--b\r\nContent-Disposition: form-data; name=package; filename=package.nupkg\r\n\r\n');
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { 'content-type': 'multipart/form-data; boundary=b', 'transfer-encoding': 'chunked', 'x-nuget-apikey': SCOPED } });
    let answered: number | undefined;
    req.on('response', (res) => (answered = res.statusCode));
    req.on('error', () => undefined);
    const gone = new Promise<void>((resolve) => req.once('close', () => resolve()));
    req.write(Buffer.concat([head, Buffer.from(bytes.subarray(0, bytes.length - 1000))]));
    await waitFor('the proxy spooling the push', async () => (await filesIn(join(proxy.cacheDir, '.tmp'))).some((f) => f.name.endsWith('.body') && f.size > 0));
    req.destroy();
    await gone;
    expect(await waitForEmptyTmp(proxy.cacheDir)).toEqual([]);
    expect(answered).toBeUndefined();
    expect(upstream.publishAttempts).toHaveLength(attempts);
    expect((await get(proxy.index)).status).toBe(200);
  });

  it('delete and relist by a scoped token: inside its scopes passed on, outside 403 with nothing sent', async () => {
    const attempts = upstream.publishAttempts.length;
    expect((await send(`${proxy.url}v3/package/Team.Lib/1.0.0`, 'DELETE', { 'x-nuget-apikey': SCOPED })).status).toBe(403);
    expect((await send(`${proxy.url}v3/package/Team.Lib/1.0.0`, 'POST', { 'x-nuget-apikey': SCOPED })).status).toBe(403);
    expect(upstream.publishAttempts).toHaveLength(attempts);
    expect(upstream.isListed('Team.Lib', '1.0.0')).toBe(true);
    expect((await send(`${proxy.url}v3/package/contoso.lib/1.1.0`, 'DELETE', { 'x-nuget-apikey': SCOPED })).status).toBe(204);
    expect(upstream.isListed('Contoso.Lib', '1.1.0')).toBe(false);
    expect((await send(`${proxy.url}v3/package/contoso.lib/1.1.0`, 'POST', { 'x-nuget-apikey': SCOPED })).status).toBe(200);
    expect(upstream.isListed('Contoso.Lib', '1.1.0')).toBe(true);
    expect(accessLines(proxy)).toContainEqual(expect.objectContaining({ method: 'DELETE', status: 204, principal: 'contoso-team' }));
  });

  it('no log line holds a token, the upstream key or a wrong guess', () => {
    expectNoSecretLogged(proxy);
  });
});
