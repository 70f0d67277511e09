import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { UpstreamHttp } from '../../src/upstream/http-client.js';
import { createLogSink } from '../support/log-sink.js';

const fast = { retries: 1, timeouts: { connect: '1s', headers: '600ms', body: '600ms' } };

describe('upstream faults and errors', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Some.Lib', version: '1.0.0' }), makeNupkg({ id: 'Other.Lib', version: '1.0.0' })] });
    proxy = await startTestProxy({ upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, ...fast }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('retries an idempotent request after a 5xx', async () => {
    upstream.setFault('/v3-flatcontainer/some.lib/index.json', { kind: 'status', status: 503 }, 1);
    const r = await get(`${proxy.url}v3/flat/some.lib/index.json`);
    expect(r.status).toBe(200);
    expect(upstream.hits('/v3-flatcontainer/some.lib/index.json')).toBe(2);
  });

  it('answers 502 with a JSON body naming the upstream when it keeps failing and nothing is cached', async () => {
    upstream.setFault('/v3-flatcontainer/other.lib/index.json', { kind: 'status', status: 500 });
    const r = await get(`${proxy.url}v3/flat/other.lib/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toMatchObject({ error: 'upstream_status', upstream: 'company' });
    upstream.setFault('/v3-flatcontainer/other.lib/index.json', { kind: 'html' });
    const html = await get(`${proxy.url}v3/flat/other.lib/index.json`);
    expect(html.status).toBe(502);
    expect(html.json()).toMatchObject({ error: 'upstream_bad_response', upstream: 'company' });
    upstream.setFault('/v3-flatcontainer/other.lib/index.json', { kind: 'invalid-json' });
    expect((await get(`${proxy.url}v3/flat/other.lib/index.json`)).status).toBe(502);
    upstream.setFault('/v3-flatcontainer/other.lib/index.json', undefined);
    // failures were not cached as answers: the next request succeeds
    expect((await get(`${proxy.url}v3/flat/other.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
  });

  it('answers 504 when the upstream stalls past its timeout', async () => {
    upstream.setFault('/v3-flatcontainer/other.lib/1.0.0/other.lib.1.0.0.nupkg', { kind: 'stall', ms: 3000 });
    const r = await get(`${proxy.url}v3/flat/other.lib/1.0.0/other.lib.1.0.0.nupkg`);
    upstream.setFault('/v3-flatcontainer/other.lib/1.0.0/other.lib.1.0.0.nupkg', undefined);
    expect(r.status).toBe(504);
    expect(r.json()).toMatchObject({ error: 'upstream_timeout', upstream: 'company' });
  });

  it('never turns an upstream 401/403 into a client 401/403', async () => {
    upstream.setFault('/v3-flatcontainer/some.lib/1.0.0/some.lib.1.0.0.nupkg', { kind: 'status', status: 401 });
    const r = await get(`${proxy.url}v3/flat/some.lib/1.0.0/some.lib.1.0.0.nupkg`);
    upstream.setFault('/v3-flatcontainer/some.lib/1.0.0/some.lib.1.0.0.nupkg', undefined);
    expect(r.status).toBe(502);
    expect(r.json().message).toMatch(/credentials/);
  });

  it('serves stored metadata past its freshness, marked stale, while the upstream is down', async () => {
    const stale = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, ...fast }],
      config: { cache: { freshness: { versions: '1ms' } } },
    });
    try {
      expect((await get(`${stale.url}v3/flat/some.lib/index.json`)).status).toBe(200);
      upstream.setFault('/v3-flatcontainer/some.lib/index.json', { kind: 'status', status: 500 });
      const r = await get(`${stale.url}v3/flat/some.lib/index.json`);
      upstream.setFault('/v3-flatcontainer/some.lib/index.json', undefined);
      expect(r.status).toBe(200);
      expect(r.headers['x-nuproxy-cache']).toBe('stale');
      expect(r.headers['x-nuproxy-stale']).toBe('true');
      expect(r.json()).toEqual({ versions: ['1.0.0'] });
    } finally {
      await stale.stop();
    }
  });

  it('answers 502 when the upstream cannot be reached at all', async () => {
    const dead = await startTestProxy({ upstreams: [{ name: 'gone', serviceIndex: 'http://127.0.0.1:9/v3/index.json', ...fast }] });
    try {
      const r = await get(`${dead.url}v3/flat/some.lib/index.json`);
      expect(r.status).toBe(502);
      expect(r.json()).toMatchObject({ error: 'upstream_unreachable', upstream: 'gone' });
      const pkg = await get(`${dead.url}v3/flat/some.lib/1.0.0/some.lib.1.0.0.nupkg`);
      expect(pkg.status).toBe(502);
    } finally {
      await dead.stop();
    }
  });
});

describe('upstream auth', () => {
  it('sends basic credentials from the named env var, and never logs or echoes them', async () => {
    const secret = 'pa55-w0rd-do-not-log';
    const upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Private.Lib', version: '1.0.0' })], auth: { kind: 'basic', username: 'ci', password: secret } });
    const proxy = await startTestProxy({
      upstreams: [{ name: 'private', serviceIndex: upstream.serviceIndexUrl, auth: { type: 'basic', username: 'ci', passwordEnv: 'PRIVATE_FEED_PW' } }],
      env: { PRIVATE_FEED_PW: secret },
    });
    try {
      expect((await get(`${proxy.url}v3/flat/private.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
      const pkg = await get(`${proxy.url}v3/flat/private.lib/1.0.0/private.lib.1.0.0.nupkg`);
      expect(pkg.status).toBe(200);
      const auth = upstream.requests.map((r) => r.headers.authorization);
      expect(auth.every((a) => a === `Basic ${Buffer.from(`ci:${secret}`).toString('base64')}`)).toBe(true);
      expect(proxy.logs.raw()).not.toContain(secret);
      expect(proxy.logs.raw()).not.toContain(Buffer.from(`ci:${secret}`).toString('base64'));
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });

  it('reports a wrong credential as an upstream failure (502), not as 401 to the client', async () => {
    const upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Private.Lib', version: '1.0.0' })], auth: { kind: 'bearer', token: 'right' } });
    const proxy = await startTestProxy({
      upstreams: [{ name: 'private', serviceIndex: upstream.serviceIndexUrl, auth: { type: 'bearer', tokenEnv: 'TOKEN' } }],
      env: { TOKEN: 'wrong-token-value' },
    });
    try {
      const r = await get(`${proxy.url}v3/flat/private.lib/index.json`);
      expect(r.status).toBe(502);
      expect(r.text).not.toContain('wrong-token-value');
      expect(proxy.logs.raw()).not.toContain('wrong-token-value');
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});

describe('redirects', () => {
  let a: Server;
  let b: Server;
  const seenA: IncomingHttpHeaders[] = [];
  const seenB: IncomingHttpHeaders[] = [];
  let urlA = '';
  let urlB = '';
  beforeAll(async () => {
    const listen = (s: Server): Promise<string> => new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
    b = createServer((req, res) => {
      seenB.push(req.headers);
      res.end('blob-bytes');
    });
    urlB = await listen(b);
    a = createServer((req, res) => {
      seenA.push(req.headers);
      if (req.url === '/same') return res.writeHead(302, { location: '/final' }).end();
      if (req.url === '/final') return res.end('same-host');
      res.writeHead(302, { location: `${urlB.replace('127.0.0.1', 'localhost')}/blob` }).end();
    });
    urlA = await listen(a);
  });
  afterAll(() => {
    a.close();
    b.close();
  });

  it('follows redirects server-side and sends credentials only to the upstream host', async () => {
    const http = new UpstreamHttp({
      name: 'feed',
      timeouts: { connect: 1000, headers: 1000, body: 1000 },
      retries: 0,
      auth: { type: 'header', header: 'X-NuGet-ApiKey', value: 'k-secret' },
      userAgent: 'test',
      logger: createLogSink().logger,
      redirectAllow: [urlB.replace('127.0.0.1', 'localhost')],
    });
    http.allowOrigin(urlA);
    const same = await http.request(`${urlA}/same`);
    expect(await same.body.text()).toBe('same-host');
    // another origin: for package bytes only (test/integration/redirects.test.ts has the rules)
    const other = await http.request(`${urlA}/download`, { kind: 'package' });
    expect(await other.body.text()).toBe('blob-bytes');
    expect(seenA.every((h) => h['x-nuget-apikey'] === 'k-secret')).toBe(true);
    expect(seenB).toHaveLength(1);
    expect(seenB[0]!['x-nuget-apikey']).toBeUndefined();
    expect(seenB[0]!.authorization).toBeUndefined();
    // a URL outside the upstream's own hosts is never fetched
    await expect(http.request(`${urlB}/blob`)).rejects.toMatchObject({ code: 'UPSTREAM_HOST_NOT_ALLOWED' });
    await http.close();
  });
});
