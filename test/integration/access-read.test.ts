// Access control on reads through a real nuproxy and a real test upstream (issue #15): the 401/403/404 split,
// the Basic challenge, which routes stay open, scopes on every per-id answer (an id outside them answers exactly
// like an absent one), /metrics and /ui behind their rules, wrong tokens slowed per address, and no token value
// in any log line.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { get, getOutcome } from '../support/http.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const basic = (pass: string, user = 'agent'): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

const READER = 'reader-secret-7f3a9c21';
const TEAM = 'team-secret-0b8e44d2';
const PUSHER = 'pusher-secret-5c1d77aa';
const OPS = 'ops-secret-91e2c3f4';
const SCRAPER = 'scraper-secret-2a4b6c8d';
const ALL = [READER, TEAM, PUSHER, OPS, SCRAPER];

describe('reads with access.anonymous false', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  beforeAll(async () => {
    upstream = await startTestUpstream({
      packages: [makeNupkg({ id: 'Contoso.Core', version: '1.0.0' }), makeNupkg({ id: 'Contoso.Web', version: '2.0.0' }), makeNupkg({ id: 'Public.Lib', version: '3.0.0' })],
    });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: {
        access: {
          anonymous: false,
          tokens: [
            { name: 'reader', sha256: sha(READER), permissions: ['read'] },
            { name: 'contoso-team', sha256: sha(TEAM), permissions: ['read'], scopes: ['Contoso.*'] },
            { name: 'pusher', sha256: sha(PUSHER), permissions: ['push'] },
            { name: 'ops', sha256: sha(OPS), permissions: ['admin'] },
            { name: 'scraper', sha256: sha(SCRAPER), permissions: ['metrics'] },
          ],
        },
        metrics: { access: 'token' },
      },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const flat = (id: string, v: string): string => `${proxy.url}v3/flat/${id}/${v}/${id}.${v}.nupkg`;

  it('the service index, / and /health/* need no token', async () => {
    for (const path of ['v3/index.json', '', 'health/live', 'health/ready']) {
      expect((await get(`${proxy.url}${path}`)).status, path).toBe(200);
    }
  });

  it('every other read without a token: 401 with the Basic challenge and a JSON body', async () => {
    for (const path of ['v3/flat/public.lib/index.json', 'v3/flat/public.lib/3.0.0/public.lib.3.0.0.nupkg', 'v3/registration/semver2/public.lib/index.json', 'v3/query?q=lib', 'v3/autocomplete?q=lib', 'explain/Public.Lib']) {
      const r = await get(`${proxy.url}${path}`);
      expect(r.status, path).toBe(401);
      expect(r.headers['www-authenticate'], path).toBe('Basic realm="nuproxy"');
      expect(r.json(), path).toMatchObject({ error: 'unauthorized', message: expect.stringContaining('packageSourceCredentials') });
    }
  });

  it('a read token by Basic (the password; any user name), Bearer or X-NuGet-ApiKey reads', async () => {
    for (const h of [basic(READER), basic(READER, ''), { authorization: `Bearer ${READER}` }, { 'x-nuget-apikey': READER }]) {
      const r = await get(flat('public.lib', '3.0.0'), h);
      expect(r.status).toBe(200);
      expect(r.body.length).toBeGreaterThan(0);
    }
  });

  it('a wrong token: 401 (never read as anonymous); a token without read: 403', async () => {
    const wrong = await get(flat('public.lib', '3.0.0'), basic('not-a-token'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Basic realm="nuproxy"');
    const noRead = await get(flat('public.lib', '3.0.0'), basic(PUSHER));
    expect(noRead.status).toBe(403);
    expect(noRead.json()).toMatchObject({ error: 'forbidden', message: 'token pusher does not have the read permission' });
  });

  it('a scoped token reads its ids; every per-id answer for another id is exactly the absent id\'s', async () => {
    expect((await get(flat('contoso.core', '1.0.0'), basic(TEAM))).status).toBe(200);
    expect((await get(`${proxy.url}v3/flat/contoso.web/index.json`, basic(TEAM))).json()).toEqual({ versions: ['2.0.0'] });
    expect((await get(`${proxy.url}v3/registration/semver2/contoso.web/index.json`, basic(TEAM))).status).toBe(200);
    const pairs: [string, string][] = [
      ['v3/flat/public.lib/index.json', 'v3/flat/absent.lib/index.json'],
      ['v3/flat/public.lib/3.0.0/public.lib.3.0.0.nupkg', 'v3/flat/absent.lib/3.0.0/absent.lib.3.0.0.nupkg'],
      ['v3/flat/public.lib/3.0.0/public.lib.nuspec', 'v3/flat/absent.lib/3.0.0/absent.lib.nuspec'],
      ['v3/registration/semver2/public.lib/index.json', 'v3/registration/semver2/absent.lib/index.json'],
      ['v3/registration/semver2/public.lib/3.0.0.json', 'v3/registration/semver2/absent.lib/3.0.0.json'],
    ];
    for (const [hiddenPath, absentPath] of pairs) {
      const hidden = await get(`${proxy.url}${hiddenPath}`, basic(TEAM));
      const absent = await get(`${proxy.url}${absentPath}`, basic(TEAM));
      expect(hidden.status, hiddenPath).toBe(404);
      expect(hidden.text, hiddenPath).toBe(absent.text);
      expect(hidden.headers['content-type']).toBe(absent.headers['content-type']);
      // and the reader without a scope sees it
      expect((await get(`${proxy.url}${hiddenPath}`, basic(READER))).status, hiddenPath).toBe(200);
    }
    // search and autocomplete over HTTP: only the scope's ids, paged over the filtered list
    const ids = (doc: { data: { id: string }[] }): string[] => doc.data.map((d) => d.id);
    expect(ids((await get(`${proxy.url}v3/query?q=&take=10`, basic(TEAM))).json())).toEqual(['Contoso.Core', 'Contoso.Web']);
    expect(ids((await get(`${proxy.url}v3/query?q=&skip=1&take=1`, basic(TEAM))).json())).toEqual(['Contoso.Web']);
    expect(ids((await get(`${proxy.url}v3/query?q=&take=10`, basic(READER))).json()).sort()).toEqual(['Contoso.Core', 'Contoso.Web', 'Public.Lib']);
    expect((await get(`${proxy.url}v3/autocomplete?q=&take=10`, basic(TEAM))).json().data).toEqual(['Contoso.Core', 'Contoso.Web']);
    const acHidden = await get(`${proxy.url}v3/autocomplete?id=public.lib`, basic(TEAM));
    const acAbsent = await get(`${proxy.url}v3/autocomplete?id=absent.lib`, basic(TEAM));
    expect(acHidden.json()).toEqual(acAbsent.json());
    expect(acHidden.json().data).toEqual([]);
    const explain = await get(`${proxy.url}explain/Public.Lib`, basic(TEAM));
    expect(explain.status).toBe(404);
    expect((await get(`${proxy.url}explain/Contoso.Core`, basic(TEAM))).status).toBe(200);
  });

  it('/metrics needs the metrics permission (admin implies it); /admin and /ui need admin', async () => {
    expect((await get(`${proxy.url}metrics`)).status).toBe(401);
    expect((await get(`${proxy.url}metrics`, basic(READER))).status).toBe(403);
    const scraped = await get(`${proxy.url}metrics`, { authorization: `Bearer ${SCRAPER}` });
    expect(scraped.status).toBe(200);
    expect(scraped.text).toContain('nuproxy_');
    expect((await get(`${proxy.url}metrics`, basic(OPS))).status).toBe(200);
    expect((await get(`${proxy.url}admin/summary`, basic(READER))).status).toBe(403);
    expect((await get(`${proxy.url}admin/summary`, basic(OPS))).status).toBe(200);
    const ui = await get(`${proxy.url}ui`);
    expect(ui.status).toBe(401);
    expect(ui.headers['www-authenticate']).toBe('Basic realm="nuproxy"');
    expect((await get(`${proxy.url}ui`, basic(READER))).status).toBe(403);
    expect((await get(`${proxy.url}ui`, basic(OPS))).status).toBe(200);
  });

  it('access lines name the token; no token value is in any log line', async () => {
    await get(flat('contoso.core', '1.0.0'), basic(TEAM));
    const line = proxy.logs.lines.filter((l) => l.path === '/v3/flat/contoso.core/1.0.0/contoso.core.1.0.0.nupkg' && l.msg === 'request').at(-1);
    expect(line).toMatchObject({ status: 200, principal: 'contoso-team' });
    const anonymous = proxy.logs.lines.find((l) => l.path === '/v3/index.json' && l.msg === 'request');
    expect(anonymous).toBeDefined();
    expect(anonymous!.principal).toBeUndefined();
    const text = proxy.logs.lines.map((l) => JSON.stringify(l)).join('\n');
    for (const secret of ALL) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(Buffer.from(`agent:${secret}`).toString('base64'));
    }
  });
});

describe('a burst of wrong tokens', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Burst.Lib', version: '1.0.0' })] });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { access: { anonymous: false, tokens: [{ name: 'reader', sha256: sha(READER), permissions: ['read'] }] } } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('is answered 401 every time, later and later past the first few, while a right token still reads at once', async () => {
    const url = `${proxy.url}v3/flat/burst.lib/index.json`;
    const started = Date.now();
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => getOutcome(url, basic(`guess-${i}`))));
    expect(burst.map((o) => o.status)).toEqual(Array(8).fill(401));
    // five answered at once, then 250, 500, 1000 ms: the slowest waited at least a second (a lower bound only)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect((await get(url, basic(READER))).status).toBe(200);
    expect((await get(`${proxy.url}health/ready`)).status).toBe(200);
  });
});

describe('anonymous reads (the default) with tokens configured', () => {
  it('reads without a token as before; a scoped token sees less; a wrong token is still 401', async () => {
    const upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Contoso.Core', version: '1.0.0' }), makeNupkg({ id: 'Public.Lib', version: '3.0.0' })] });
    const proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: { access: { tokens: [{ name: 'contoso-team', sha256: sha(TEAM), permissions: ['read'], scopes: ['Contoso.*'] }] } },
    });
    try {
      expect((await get(`${proxy.url}v3/flat/public.lib/index.json`)).status).toBe(200);
      expect((await get(`${proxy.url}v3/flat/public.lib/index.json`, basic(TEAM))).status).toBe(404);
      expect((await get(`${proxy.url}v3/flat/contoso.core/index.json`, basic(TEAM))).status).toBe(200);
      expect((await get(`${proxy.url}v3/flat/public.lib/index.json`, basic('wrong'))).status).toBe(401);
      // /metrics stays open by default (metrics.access anonymous), the dashboard too (anonymous reads)
      expect((await get(`${proxy.url}metrics`)).status).toBe(200);
      expect((await get(`${proxy.url}ui`)).status).toBe(200);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});
