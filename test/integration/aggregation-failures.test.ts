// Merged feeds when an upstream fails (issue #3): answers built from the upstreams that did answer are marked
// partial and never cached; an id owned by the failed upstream fails (502) rather than falling back to the public
// feed; everything failing is a 502, never a 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';

type Json = any;

const timeouts = { connect: '2s', headers: '5s', body: '5s' };
const EVERYTHING = /.*/;
const down = { kind: 'status', status: 500 } as const;

describe('an upstream failing behind a merged feed', () => {
  let pub: TestUpstream;
  let company: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    pub = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Shared.Lib', version: '1.0.0', description: 'Shared.Lib from public' }),
        makeNupkg({ id: 'Public.Only', version: '1.0.0' }),
        makeNupkg({ id: 'Never.Asked', version: '1.0.0' }),
        // the public feed also publishes the company's id, higher: must never be served instead
        makeNupkg({ id: 'Corp.Lib', version: '9.0.0', description: 'EVIL public Corp.Lib' }),
      ],
    });
    company = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Shared.Lib', version: '2.0.0', description: 'Shared.Lib from company' }),
        makeNupkg({ id: 'Corp.Lib', version: '1.0.0', description: 'the real Corp.Lib' }),
      ],
    });
    proxy = await startTestProxy({
      upstreams: [
        // the circuit breaker is tested on its own; here every failure must reach the merge policy
        { name: 'public', serviceIndex: pub.serviceIndexUrl, retries: 0, timeouts, circuitBreaker: { failures: 1000 } },
        { name: 'company', serviceIndex: company.serviceIndexUrl, retries: 0, timeouts, owns: ['Corp.*'], circuitBreaker: { failures: 1000 } },
      ],
    });
    // the company feed is down from the start, service index included
    company.setFault(EVERYTHING, down);
  });
  afterAll(async () => {
    await proxy?.stop();
    await pub?.close();
    await company?.close();
  });

  const logLine = (path: string): Record<string, unknown> | undefined =>
    [...proxy.logs.lines].reverse().find((l) => l.msg === 'request' && l.path === path) ??
    [...proxy.logs.lines].reverse().find((l) => l.path === path);

  it('answers ids the other upstream serves with 200, marked partial in a header and the log line', async () => {
    const r = await get(`${proxy.url}v3/flat/shared.lib/index.json`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ versions: ['1.0.0'] });
    expect(r.headers['x-nuproxy-partial']).toBe('company');
    expect(r.headers['x-nuproxy-upstream']).toBe('public');
    const line = logLine('/v3/flat/shared.lib/index.json');
    expect(line).toBeDefined();
    expect(line).toMatchObject({ status: 200, partial: ['company'] });
    expect(company.hits(EVERYTHING)).toBeGreaterThan(0);
  });

  it('does not cache the partial answer: every request asks the failed upstream again', async () => {
    const before = company.requests.length;
    const again = await get(`${proxy.url}v3/flat/shared.lib/index.json`);
    expect(again.status).toBe(200);
    expect(again.headers['x-nuproxy-partial']).toBe('company');
    expect(company.requests.length).toBeGreaterThan(before);
  });

  it('marks partial registration, search and autocomplete answers too', async () => {
    const reg = await get(`${proxy.url}v3/registration/semver2/shared.lib/index.json`);
    expect(reg.status).toBe(200);
    expect(reg.headers['x-nuproxy-partial']).toBe('company');
    const leaves = (reg.json().items as Json[]).flatMap((p) => p.items ?? []);
    expect(leaves.map((l: Json) => l.catalogEntry.version)).toEqual(['1.0.0']);

    const search = await get(`${proxy.url}v3/query?q=lib&prerelease=true`);
    expect(search.status).toBe(200);
    expect(search.headers['x-nuproxy-partial']).toBe('company');
    const shared = (search.json().data as Json[]).find((d) => d.id === 'Shared.Lib');
    expect((shared.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0']);
    // the public feed's Corp.Lib is not allowed from it (owned by company), failing owner or not
    expect(search.text).not.toContain('9.0.0');
    expect((search.json().data as Json[]).map((d) => d.id)).not.toContain('Corp.Lib');

    const ac = await get(`${proxy.url}v3/autocomplete?q=lib`);
    expect(ac.status).toBe(200);
    expect(ac.headers['x-nuproxy-partial']).toBe('company');
    expect(ac.json().data).not.toContain('Corp.Lib');
    const acVersions = await get(`${proxy.url}v3/autocomplete?id=Shared.Lib`);
    expect(acVersions.status).toBe(200);
    expect(acVersions.headers['x-nuproxy-partial']).toBe('company');
    expect(acVersions.json().data).toEqual(['1.0.0']);
  });

  it('answers 502 for an id owned by the failed upstream, never the public versions instead', async () => {
    const paths = [
      'v3/flat/corp.lib/index.json',
      'v3/flat/Corp.Lib/index.json',
      'v3/flat/corp.lib/9.0.0/corp.lib.9.0.0.nupkg',
      'v3/flat/corp.lib/1.0.0/corp.lib.1.0.0.nupkg',
      'v3/flat/corp.lib/1.0.0/corp.lib.nuspec',
      'v3/registration/semver2/corp.lib/index.json',
      'v3/registration/gz-semver1/corp.lib/index.json',
      'v3/registration/semver1/corp.lib/index.json',
      'v3/registration/semver2/corp.lib/9.0.0.json',
      'v3/autocomplete?id=Corp.Lib',
    ];
    for (const p of paths) {
      const r = await get(`${proxy.url}${p}`);
      expect(r.status, `${p}: ${r.text}`).toBe(502);
      expect(r.json(), p).toMatchObject({ upstream: 'company' });
      expect(r.text).not.toContain('9.0.0');
    }
    expect(pub.hits(/corp\.lib/i)).toBe(0);
    const line = logLine('/v3/flat/corp.lib/index.json');
    expect(line).toMatchObject({ status: 502 });
  });

  it('answers a package version only the failed upstream could have with 502, not 404 (down never looks like absent)', async () => {
    // Shared.Lib 2.0.0 is on the company feed, which is down: the public feed's list lacks it
    const r = await get(`${proxy.url}v3/flat/shared.lib/2.0.0/shared.lib.2.0.0.nupkg`);
    expect(r.status, r.text).toBe(502);
    expect(r.json()).toMatchObject({ upstream: 'company' });
  });

  it('explains which upstream failed', async () => {
    const ex = (await get(`${proxy.url}explain/shared.lib`)).json();
    expect(ex.upstreams).toMatchObject([
      { name: 'public', status: 'listed', versions: ['1.0.0'] },
      { name: 'company', status: 'failed' },
    ]);
    expect(typeof ex.upstreams[1].error).toBe('string');
    expect(ex.versions).toEqual([{ version: '1.0.0', servedBy: 'public' }]);
    const corp = (await get(`${proxy.url}explain/corp.lib`)).json();
    expect(corp).toMatchObject({ owner: 'company' });
    expect(corp.upstreams).toMatchObject([
      { name: 'public', allowed: false, status: 'not asked' },
      { name: 'company', allowed: true, status: 'failed' },
    ]);
    expect(corp.versions).toEqual([]);
  });

  it('gives the full union, without the partial mark, once the upstream is back', async () => {
    company.setFault(EVERYTHING, undefined);
    const r = await get(`${proxy.url}v3/flat/shared.lib/index.json`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ versions: ['1.0.0', '2.0.0'] });
    expect(r.headers['x-nuproxy-partial']).toBeUndefined();
    expect(r.headers['x-nuproxy-upstream']).toBe('public, company');
    const line = logLine('/v3/flat/shared.lib/index.json');
    expect(line?.partial).toBeUndefined();

    const reg = await get(`${proxy.url}v3/registration/semver2/shared.lib/index.json`);
    expect(reg.headers['x-nuproxy-partial']).toBeUndefined();
    expect((reg.json().items as Json[]).flatMap((p) => p.items).map((l: Json) => l.catalogEntry.version)).toEqual(['1.0.0', '2.0.0']);

    const search = await get(`${proxy.url}v3/query?q=lib&prerelease=true`);
    expect(search.headers['x-nuproxy-partial']).toBeUndefined();
    const shared = (search.json().data as Json[]).find((d) => d.id === 'Shared.Lib');
    expect((shared.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0', '2.0.0']);
    expect((search.json().data as Json[]).find((d) => d.id === 'Corp.Lib')).toMatchObject({ version: '1.0.0', description: 'the real Corp.Lib' });

    const ac = await get(`${proxy.url}v3/autocomplete?id=Shared.Lib`);
    expect(ac.headers['x-nuproxy-partial']).toBeUndefined();
    expect(ac.json().data).toEqual(['1.0.0', '2.0.0']);

    expect((await get(`${proxy.url}v3/flat/corp.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
    const pkg = await get(`${proxy.url}v3/flat/shared.lib/2.0.0/shared.lib.2.0.0.nupkg`);
    expect(pkg.status).toBe(200);
    expect(pkg.headers['x-nuproxy-upstream']).toBe('company');
  });

  it('answers 502, never 404, when every upstream fails', async () => {
    pub.setFault(EVERYTHING, down);
    company.setFault(EVERYTHING, down);
    try {
      const paths = [
        'v3/flat/never.asked/index.json', // the public feed has it
        'v3/flat/nothere.lib/index.json', // nobody has it, but nobody could say so
        'v3/flat/never.asked/1.0.0/never.asked.1.0.0.nupkg',
        'v3/registration/semver2/never.asked/index.json',
        'v3/registration/semver1/nothere.lib/index.json',
        'v3/query?q=never',
        'v3/autocomplete?q=never',
        'v3/autocomplete?id=Never.Asked',
      ];
      for (const p of paths) {
        const r = await get(`${proxy.url}${p}`);
        expect(r.status, `${p}: ${r.text}`).toBe(502);
        expect(['public', 'company'], p).toContain(r.json().upstream);
      }
      const ex = (await get(`${proxy.url}explain/never.asked`)).json();
      expect(ex.upstreams).toMatchObject([
        { name: 'public', status: 'failed' },
        { name: 'company', status: 'failed' },
      ]);
    } finally {
      pub.setFault(EVERYTHING, undefined);
      company.setFault(EVERYTHING, undefined);
    }
    // and the failures were not remembered
    expect((await get(`${proxy.url}v3/flat/never.asked/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
  });
});
