import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { pushMultipart, send } from '../support/push.js';
import { hashKey } from '../../src/feed/publish.js';
import { waitFor } from '../support/wait.js';
import { waitForEmptyTmp } from '../support/cache-audit.js';

const UPSTREAM_KEY = 'upstream-key-1234567890';

describe('publishing through the proxy (pass-through keys)', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Team.Lib', version: '1.0.0' })], publish: { apiKey: UPSTREAM_KEY, warning: 'Your API key expires in 5 days.' } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: { publish: { maxPackageSize: '2MB' } },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('advertises PackagePublish and SymbolPackagePublish at its own URL', async () => {
    const idx = (await get(proxy.index)).json<{ resources: { '@id': string; '@type': string }[] }>();
    expect(idx.resources.find((r) => r['@type'] === 'PackagePublish/2.0.0')?.['@id']).toBe(`${proxy.url}v3/package`);
    expect(idx.resources.find((r) => r['@type'] === 'SymbolPackagePublish/4.9.0')?.['@id']).toBe(`${proxy.url}v3/symbolpackage`);
  });

  it('streams a push to the upstream and the new version is restorable at once', async () => {
    expect((await get(`${proxy.url}v3/flat/team.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] }); // now cached
    await get(`${proxy.url}v3/registration/semver2/team.lib/index.json`);
    const pkg = makeNupkg({ id: 'Team.Lib', version: '1.1.0' });
    const r = await pushMultipart(`${proxy.url}v3/package/`, pkg, { 'x-nuget-apikey': UPSTREAM_KEY, 'x-nuget-client-version': '6.12.1' });
    expect(r.status).toBe(201);
    expect(r.headers['x-nuget-warning']).toBe('Your API key expires in 5 days.');
    expect(upstream.pushes.map((p) => `${p.id}@${p.version}`)).toEqual(['Team.Lib@1.1.0']);
    const seen = upstream.pushes[0]!.headers;
    expect(seen['x-nuget-apikey']).toBe(UPSTREAM_KEY);
    expect(seen['x-nuget-client-version']).toBe('6.12.1');
    expect(String(seen['content-type'])).toMatch(/^multipart\/form-data; boundary=/);
    expect((await get(`${proxy.url}v3/flat/team.lib/index.json`)).json()).toEqual({ versions: ['1.0.0', '1.1.0'] });
    const reg = (await get(`${proxy.url}v3/registration/semver2/team.lib/index.json`)).json();
    expect(reg.items[0].items.map((l: any) => l.catalogEntry.version)).toEqual(['1.0.0', '1.1.0']);
    const bytes = await get(`${proxy.url}v3/flat/team.lib/1.1.0/team.lib.1.1.0.nupkg`);
    expect(bytes.body.equals(Buffer.from(pkg))).toBe(true);
  });

  it("passes the upstream's refusals back unchanged: wrong key 403, duplicate 409", async () => {
    const wrong = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Team.Lib', version: '9.0.0' }), { 'x-nuget-apikey': 'not-the-key' });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toContain('API key is invalid');
    const dup = await pushMultipart(`${proxy.url}v3/package`, makeNupkg({ id: 'Team.Lib', version: '1.0.0' }), { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(dup.status).toBe(409);
    expect(upstream.pushes).toHaveLength(1);
    expect(proxy.logs.raw()).not.toContain('not-the-key');
    expect(proxy.logs.raw()).not.toContain(UPSTREAM_KEY);
  });

  it('refuses a push over the size limit with 413, and the upstream sees a cut upload, never a whole package', async () => {
    const big = makeNupkg({ id: 'Team.Huge', version: '1.0.0', padBytes: 3 * 1024 * 1024 });
    const before = upstream.publishAttempts.length;
    const half = Math.floor(big.length / 2); // under the 2 MB limit
    // the first half, then the rest once the upstream is receiving the push: it streams through, and it is cut
    const body = async function* (): AsyncIterable<Uint8Array> {
      yield big.subarray(0, half);
      await waitFor('the upstream receiving the push', () => (upstream.publishAttempts[before]?.bytes ?? 0) > 0);
      yield big.subarray(half);
    };
    const r = await pushMultipart(`${proxy.url}v3/package/`, body, { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'payload_too_large' });
    const attempt = await waitFor('the upload to the upstream to end', () => (upstream.publishAttempts[before]?.body !== 'receiving' ? upstream.publishAttempts[before] : undefined));
    expect(upstream.publishAttempts).toHaveLength(before + 1);
    expect(attempt).toMatchObject({ kind: 'push', body: 'cut' });
    expect(attempt.status).toBeUndefined();
    expect(attempt.bytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(upstream.isListed('Team.Huge', '1.0.0')).toBeUndefined();
    expect((await get(`${proxy.url}v3/flat/team.huge/index.json`)).status).toBe(404);
  });

  it("counts a push cut for the client's sake (too large) as no failure of the upstream: its circuit stays closed", async () => {
    const big = makeNupkg({ id: 'Team.Huge', version: '2.0.0', padBytes: 3 * 1024 * 1024 });
    // more oversize pushes in a row than circuitBreaker.failures (5)
    for (let i = 0; i < 6; i++) expect((await pushMultipart(`${proxy.url}v3/package/`, big, { 'x-nuget-apikey': UPSTREAM_KEY })).status).toBe(413);
    const ready = (await get(`${proxy.url}health/ready`)).json();
    expect(ready.upstreams).toEqual([expect.objectContaining({ name: 'company', circuit: expect.objectContaining({ state: 'closed', consecutiveFailures: 0 }) })]);
    const list = await get(`${proxy.url}v3/flat/team.lib/index.json`, { 'cache-control': 'no-cache' });
    expect(list.status).toBe(200);
    const ok = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Team.Lib', version: '1.2.0' }), { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(ok.status).toBe(201);
  });

  it('passes delete (unlist) and relist through, with id and version normalized, and drops cached answers', async () => {
    const del = await send(`${proxy.url}v3/package/TEAM.LIB/1.1`, 'DELETE', { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(del.status).toBe(204);
    expect(upstream.isListed('Team.Lib', '1.1.0')).toBe(false);
    const leaf = (await get(`${proxy.url}v3/registration/semver2/team.lib/index.json`)).json().items[0].items.find((l: any) => l.catalogEntry.version === '1.1.0');
    expect(leaf.catalogEntry.listed).toBe(false);
    const relist = await send(`${proxy.url}v3/package/team.lib/1.1.0`, 'POST', { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(relist.status).toBe(200);
    expect(upstream.isListed('Team.Lib', '1.1.0')).toBe(true);
    expect((await send(`${proxy.url}v3/package/team.lib/7.7.7`, 'DELETE', { 'x-nuget-apikey': UPSTREAM_KEY })).status).toBe(404);
    expect((await send(`${proxy.url}v3/package/bad%20id/1.0.0`, 'DELETE', { 'x-nuget-apikey': UPSTREAM_KEY })).status).toBe(400);
  });

  it('a client that drops the connection before its push ends: the upstream sees a cut upload, never a whole package', async () => {
    const { request } = await import('node:http');
    const u = new URL(`${proxy.url}v3/package/`);
    const pkg = makeNupkg({ id: 'Team.Dropped', version: '1.0.0', padBytes: 256 * 1024 });
    // every byte of a valid push, closing boundary included; only the end of the chunked body never comes
    const body = Buffer.concat([Buffer.from('--b\r\nContent-Disposition: form-data; name=package; filename=package.nupkg\r\n\r\n'), Buffer.from(pkg), Buffer.from('\r\n--b--\r\n')]);
    const before = upstream.publishAttempts.length;
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { 'content-type': 'multipart/form-data; boundary=b', 'transfer-encoding': 'chunked', 'x-nuget-apikey': UPSTREAM_KEY } });
    let answered: number | undefined;
    req.on('response', (res) => (answered = res.statusCode));
    const gone = new Promise<void>((resolve) => req.once('close', () => resolve()));
    req.on('error', () => undefined);
    req.write(body);
    const attempt = await waitFor('the upstream to have every byte of the push', () => (upstream.publishAttempts[before]?.bytes === body.length ? upstream.publishAttempts[before] : undefined));
    req.destroy();
    await gone;
    await waitFor('the upload to the upstream to end', () => attempt.body !== 'receiving');
    expect(answered).toBeUndefined();
    expect(upstream.publishAttempts).toHaveLength(before + 1);
    expect(attempt).toMatchObject({ kind: 'push', body: 'cut' });
    expect(attempt.status).toBeUndefined();
    expect(upstream.isListed('Team.Dropped', '1.0.0')).toBeUndefined();
    expect((await get(proxy.index)).status).toBe(200);
    // the proxy's copy of the push (read for its id) is gone too
    expect(await waitForEmptyTmp(proxy.cacheDir)).toEqual([]);
  });

  it('sends symbol packages to the upstream SymbolPackagePublish', async () => {
    const snupkg = makeNupkg({ id: 'Team.Lib', version: '1.1.0', description: 'symbols' });
    const r = await pushMultipart(`${proxy.url}v3/symbolpackage/`, snupkg, { 'x-nuget-apikey': UPSTREAM_KEY });
    expect(r.status).toBe(201);
    expect(upstream.symbolPushes.map((p) => `${p.id}@${p.version}`)).toEqual(['Team.Lib@1.1.0']);
  });
});

describe('publishing with mapped keys', () => {
  const CLIENT_KEY = 'agent-key-abcdef';
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ publish: { apiKey: UPSTREAM_KEY } });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
      config: { publish: { keyMode: 'mapped', keys: [{ name: 'ci', sha256: hashKey(CLIENT_KEY) }], upstreamKeyEnv: 'PUSH_KEY' } },
      env: { PUSH_KEY: UPSTREAM_KEY },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('checks the client key and sends the upstream only its own key', async () => {
    const r = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Mapped.Lib', version: '1.0.0' }), { 'x-nuget-apikey': CLIENT_KEY });
    expect(r.status).toBe(201);
    expect(upstream.pushes[0]!.headers['x-nuget-apikey']).toBe(UPSTREAM_KEY);
    expect(upstream.requests.every((q) => q.headers['x-nuget-apikey'] !== CLIENT_KEY)).toBe(true);
    const bad = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Mapped.Lib', version: '2.0.0' }), { 'x-nuget-apikey': 'guess' });
    // a wrong or missing key is no token at all (access control, issue #15): 401 and the challenge
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Basic realm="nuproxy"');
    expect(bad.text).not.toContain('guess');
    expect(upstream.pushes).toHaveLength(1);
    const none = await send(`${proxy.url}v3/package/mapped.lib/1.0.0`, 'DELETE');
    expect(none.status).toBe(401);
    const lines = proxy.logs.lines.map((l) => JSON.stringify(l));
    expect(lines.some((l) => l.includes(CLIENT_KEY) || l.includes(UPSTREAM_KEY) || l.includes('guess'))).toBe(false);
    expect(proxy.logs.lines.some((l) => l.method === 'PUT' && l.status === 201)).toBe(true);
  });
});

describe('a read-only feed', () => {
  it('does not advertise PackagePublish and refuses pushes with a clear 4xx', async () => {
    const upstream = await startTestUpstream({ publish: { apiKey: UPSTREAM_KEY } });
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
    try {
      const idx = (await get(proxy.index)).json<{ resources: { '@type': string }[] }>();
      expect(idx.resources.some((r) => r['@type'].startsWith('PackagePublish'))).toBe(false);
      const r = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'X', version: '1.0.0' }), { 'x-nuget-apikey': UPSTREAM_KEY });
      expect(r.status).toBe(405);
      expect(JSON.parse(r.text)).toMatchObject({ error: 'read_only' });
      expect(upstream.pushes).toHaveLength(0);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});

describe('publishing with several upstreams', () => {
  it('sends the key only to the writable upstream and drops cached search answers about the pushed id', async () => {
    const pub = await startTestUpstream({ packages: [makeNupkg({ id: 'Other.Pub', version: '1.0.0' })] });
    const company = await startTestUpstream({ packages: [makeNupkg({ id: 'Team.Search', version: '1.0.0' })], publish: { apiKey: UPSTREAM_KEY } });
    const proxy = await startTestProxy({
      upstreams: [
        { name: 'public', serviceIndex: pub.serviceIndexUrl },
        { name: 'company', serviceIndex: company.serviceIndexUrl, writable: true },
      ],
    });
    try {
      const q = `${proxy.url}v3/query?q=team.search&prerelease=true&semVerLevel=2.0.0`;
      const before = (await get(q)).json();
      expect(before.data[0].versions.map((v: any) => v.version)).toEqual(['1.0.0']);
      const r = await pushMultipart(`${proxy.url}v3/package/`, makeNupkg({ id: 'Team.Search', version: '1.1.0' }), { 'x-nuget-apikey': UPSTREAM_KEY });
      expect(r.status).toBe(201);
      const after = (await get(q)).json();
      expect(after.data[0].versions.map((v: any) => v.version)).toEqual(['1.0.0', '1.1.0']);
      expect(pub.requests.some((x) => x.headers['x-nuget-apikey'] !== undefined)).toBe(false);
      expect(pub.requests.some((x) => x.method !== 'GET')).toBe(false);
    } finally {
      await proxy.stop();
      await pub.close();
      await company.close();
    }
  });
});
