// The admin API (/admin) through a real nuproxy and a real test upstream: the token check (401 with the realm,
// 404 when off), each route's effect on what the proxy then serves, 400s for malformed input, the token's name
// in the audit line and its value nowhere; purge reaching a second instance through a shared real Redis.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { needTool } from '../support/need.js';

const TOKEN = 'adm-token-9c1f4e7a2b8d6f30';
const OTHER = 'someone-elses-token-1234';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const tokens = [{ name: 'ops-team', sha256: sha(TOKEN) }];
const noRedis = needTool('redis-server', redisServerPath() !== undefined, 'admin API purge across instances sharing Redis');

async function call(url: string, opts: { method?: string; token?: string; header?: Record<string, string> } = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await request(url, {
    method: (opts.method ?? 'POST') as 'POST',
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.header },
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function get(url: string): Promise<number> {
  const res = await request(url);
  await res.body.dump();
  return res.statusCode;
}

describe('admin API', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const lib = makeNupkg({ id: 'Admin.Lib', version: '1.0.0', padBytes: 5_000 });
  const other = makeNupkg({ id: 'Admin.Other', version: '2.0.0' });
  const FLAT = '/v3-flatcontainer/admin.lib/index.json';

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [lib, other, makeNupkg({ id: 'Admin.Lib', version: '1.1.0' })] });
    proxy = await startTestProxy({
      upstreams: [{ name: 'main', serviceIndex: upstream.serviceIndexUrl, retries: 1, timeouts: { connect: '2s', headers: '5s', body: '5s' } }],
      config: { admin: { tokens }, cache: { maxSize: '1GB' } },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const pkg = (id: string, v: string): string => `${proxy.url}v3/flat/${id}/${v}/${id}.${v}.nupkg`;

  it('refuses a missing or wrong token with 401, the realm and a JSON body', async () => {
    // no token: the Basic challenge (a browser asks for one); a wrong Bearer token: a Bearer challenge
    for (const [token, challenge] of [[undefined, 'Basic realm="nuproxy"'], [OTHER, 'Bearer realm="nuproxy"']] as const) {
      const r = await call(`${proxy.url}admin/summary`, { method: 'GET', ...(token ? { token } : {}) });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe(challenge);
      expect(r.json.error).toBe('unauthorized');
    }
    expect((await call(`${proxy.url}admin/purge/Admin.Lib`, { header: { authorization: 'Basic abc' } })).status).toBe(401);
  });

  it('accepts the token as Bearer and as X-NuGet-ApiKey', async () => {
    expect((await call(`${proxy.url}admin/summary`, { method: 'GET', token: TOKEN })).status).toBe(200);
    expect((await call(`${proxy.url}admin/summary`, { method: 'GET', header: { 'x-nuget-apikey': TOKEN } })).status).toBe(200);
  });

  it('summary: the store against maxSize, top ids by requests and bytes, upstream health', async () => {
    expect(await get(`${proxy.url}v3/flat/admin.lib/index.json`)).toBe(200);
    for (let i = 0; i < 3; i++) expect(await get(pkg('admin.lib', '1.0.0'))).toBe(200);
    expect(await get(pkg('admin.other', '2.0.0'))).toBe(200);
    let s: Record<string, any> = {};
    for (let i = 0; i < 100; i++) {
      s = (await call(`${proxy.url}admin/summary`, { method: 'GET', token: TOKEN })).json;
      if (s.store.packages === 2) break;
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(s.store.packages).toBe(2);
    expect(s.store.bytes).toBe(lib.length + other.length + (s.store.bytes - lib.length - other.length)); // nupkg + nuspec copies
    expect(s.store.bytes).toBeGreaterThanOrEqual(lib.length + other.length);
    expect(s.store.maxSize).toBe(1024 ** 3);
    expect(s.topIds.byRequests[0]).toEqual({ id: 'admin.lib', requests: 4, bytes: expect.any(Number) });
    expect(s.topIds.byBytes[0].id).toBe('admin.lib');
    expect(s.topIds.byBytes[0].bytes).toBeGreaterThanOrEqual(3 * lib.length);
    expect(s.topIds.byRequests.find((x: { id: string }) => x.id === 'admin.other').requests).toBe(1);
    expect(s.upstreams).toEqual([expect.objectContaining({ name: 'main', circuit: expect.objectContaining({ state: 'closed' }) })]);
  });

  it('purge drops every metadata document of the id: the next version list asks the upstream again', async () => {
    expect(await get(`${proxy.url}v3/flat/admin.lib/index.json`)).toBe(200);
    const before = upstream.hits(FLAT);
    expect(await get(`${proxy.url}v3/flat/admin.lib/index.json`)).toBe(200);
    expect(upstream.hits(FLAT)).toBe(before); // cached
    const r = await call(`${proxy.url}admin/purge/Admin.LIB`, { token: TOKEN });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ id: 'admin.lib', documents: ['flat:main:admin.lib'], packages: [] });
    expect(await get(`${proxy.url}v3/flat/admin.lib/index.json`)).toBe(200);
    expect(upstream.hits(FLAT)).toBe(before + 1);
    // the package stays (no ?packages)
    const res = await request(pkg('admin.lib', '1.0.0'));
    await res.body.dump();
    expect(res.headers['x-nuproxy-cache']).toBe('hit');
  });

  it('purge?packages=true also removes the stored packages', async () => {
    const summary = async (): Promise<{ packages: number }> => (await call(`${proxy.url}admin/summary`, { method: 'GET', token: TOKEN })).json.store as { packages: number };
    const before = (await summary()).packages;
    const r = await call(`${proxy.url}admin/purge/admin.lib?packages=true`, { token: TOKEN });
    expect(r.status).toBe(200);
    expect(r.json.packages).toEqual(['1.0.0']);
    expect((await summary()).packages).toBe(before - 1); // out of the evictor's running total at once
    const res = await request(pkg('admin.lib', '1.0.0'));
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-nuproxy-cache']).toBe('miss'); // fetched again
  });

  it('invalidate/{upstream} drops that upstream\'s documents of the known ids', async () => {
    expect(await get(`${proxy.url}v3/flat/admin.other/index.json`)).toBe(200);
    const before = upstream.hits('/v3-flatcontainer/admin.other/index.json');
    const r = await call(`${proxy.url}admin/invalidate/main`, { token: TOKEN });
    expect(r.status).toBe(200);
    expect(r.json.upstream).toBe('main');
    expect(r.json.documents).toBeGreaterThanOrEqual(2); // the service index and admin.other's list at least
    expect(await get(`${proxy.url}v3/flat/admin.other/index.json`)).toBe(200);
    expect(upstream.hits('/v3-flatcontainer/admin.other/index.json')).toBe(before + 1);
    expect((await call(`${proxy.url}admin/invalidate/nosuch`, { token: TOKEN })).status).toBe(404);
  });

  it('prune: the dry run names nothing under the cap; a run answers the plan', async () => {
    const dry = await call(`${proxy.url}admin/prune?dryRun=true`, { token: TOKEN });
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({ dryRun: true, bounded: true, remove: [], freed: 0, target: Math.floor(0.9 * 1024 ** 3) });
    expect(dry.json.packages).toBeGreaterThanOrEqual(1);
    const run = await call(`${proxy.url}admin/prune`, { token: TOKEN });
    expect(run.status).toBe(200);
    expect(run.json).toMatchObject({ dryRun: false, remove: [], freed: 0 });
  });

  it('malformed ids and arguments are 400 with a JSON body', async () => {
    for (const url of [`admin/purge/${encodeURIComponent('bad id!')}`, 'admin/purge/ok.id?packages=maybe', 'admin/prune?dryRun=yes', `admin/invalidate/${encodeURIComponent('a b')}`]) {
      const r = await call(`${proxy.url}${url}`, { token: TOKEN });
      expect(r.status, url).toBe(400);
      expect(r.json.error, url).toBe('bad_request');
    }
  });

  it('the dashboard pages answer HTML at /ui (/ui/ redirects there), /ui/packages and an id\'s page; a malformed id is a JSON 400', async () => {
    for (const path of ['ui', 'ui/packages', 'ui/packages?q=admin&page=1', 'ui/packages/Admin.Other']) {
      const res = await request(`${proxy.url}${path}`);
      const text = await res.body.text();
      expect(res.statusCode, path).toBe(200);
      expect(String(res.headers['content-type']), path).toMatch(/^text\/html/);
      expect(text, path).toContain('<title>');
    }
    // a failed answer (the upstream fails a package download) is among the recent errors, the token nowhere
    upstream.setFault(/admin\.other\.2\.0\.0\.nupkg$/, { kind: 'status', status: 500 }, 5);
    await request(`${proxy.url}admin/purge/admin.other?packages=true`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.body.dump());
    const failed = await request(pkg('admin.other', '2.0.0'));
    await failed.body.dump();
    expect(failed.statusCode).toBe(502);
    upstream.setFault(/admin\.other\.2\.0\.0\.nupkg$/, undefined);
    const overview = await (await request(`${proxy.url}ui`)).body.text();
    expect(overview).toContain('/v3/flat/admin.other/2.0.0/admin.other.2.0.0.nupkg');
    expect(overview).toContain('502');
    expect(overview).not.toContain(TOKEN);
    const slash = await request(`${proxy.url}ui/`);
    await slash.body.dump();
    expect(slash.statusCode).toBe(301);
    expect(slash.headers.location).toBe('/ui');
    const bad = await request(`${proxy.url}ui/packages/${encodeURIComponent('a<b')}`);
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: string }).error).toBe('bad_request');
  });

  it('logs each action with the token\'s name; the token never appears in the log', async () => {
    const audit = proxy.logs.lines.filter((l) => l.msg === 'admin action');
    expect(audit.map((l) => l.action)).toEqual(expect.arrayContaining(['summary', 'purge', 'invalidate', 'prune']));
    expect(audit.every((l) => l.admin === 'ops-team')).toBe(true);
    expect(audit.find((l) => l.action === 'purge' && l.packages === true)).toMatchObject({ id: 'admin.lib' });
    expect(proxy.logs.raw()).not.toContain(TOKEN);
    expect(proxy.logs.raw()).not.toContain(OTHER);
  });
});

describe('admin API off', () => {
  it('answers 404 with a JSON body saying how to turn it on', async () => {
    const upstream = await startTestUpstream({ packages: [] });
    const proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
    try {
      const r = await call(`${proxy.url}admin/summary`, { method: 'GET', token: TOKEN });
      expect(r.status).toBe(404);
      expect(String(r.json.message)).toMatch(/permissions: \[admin\]/);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});

describe.skipIf(noRedis)('admin API with instances sharing Redis', () => {
  let redis: TestRedis;
  let upstream: TestUpstream;
  let a: TestProxy;
  let b: TestProxy;
  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Shared.Lib', version: '1.0.0' })] });
    const config = { admin: { tokens }, cache: { metadata: redis.url, localTtl: '1h' } };
    const up = [{ name: 'main', serviceIndex: upstream.serviceIndexUrl, retries: 1, timeouts: { connect: '2s', headers: '5s', body: '5s' } }];
    a = await startTestProxy({ upstreams: up, config });
    b = await startTestProxy({ upstreams: up, config });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    await redis?.stop();
  });

  it('a purge through one instance drops the id on the other', async () => {
    const FLAT = '/v3-flatcontainer/shared.lib/index.json';
    expect(await get(`${a.url}v3/flat/shared.lib/index.json`)).toBe(200);
    expect(await get(`${b.url}v3/flat/shared.lib/index.json`)).toBe(200);
    expect(upstream.hits(FLAT)).toBe(1); // b read a's copy from Redis
    const r = await call(`${a.url}admin/purge/shared.lib`, { token: TOKEN });
    expect(r.json.documents).toEqual(['flat:main:shared.lib']);
    // b's memory copy (localTtl 1h) is dropped through the invalidation channel: it asks the upstream again
    for (let i = 0; i < 50 && upstream.hits(FLAT) < 2; i++) {
      expect(await get(`${b.url}v3/flat/shared.lib/index.json`)).toBe(200);
      if (upstream.hits(FLAT) < 2) await new Promise((r) => setTimeout(r, 20));
    }
    expect(upstream.hits(FLAT)).toBe(2);
  });
});
