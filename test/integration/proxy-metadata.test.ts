import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { allStrings, get } from '../support/http.js';

describe('registration, search, autocomplete and vulnerabilities through the proxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  // 130 versions: more than nuget.org inlines (127), so the proxy serves separate page documents; the upstream
  // pages every 2 leaves and inlines nothing, so the proxy must follow the upstream's page documents too.
  const versions = [...Array.from({ length: 128 }, (_, i) => `1.${i}.0`), '2.0.0-beta.1', '2.0.0'];

  beforeAll(async () => {
    upstream = await startTestUpstream({
      packages: [
        ...versions.map((v) => makeNupkg({ id: 'Paged.Lib', version: v, dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: [{ id: 'Dep.One', range: '[1.0.0, )' }] }] })),
        makeNupkg({ id: 'Dep.One', version: '1.0.0' }),
        makeNupkg({ id: 'Small.Lib', version: '3.0.0' }),
        makeNupkg({ id: 'Small.Lib', version: '3.1.0' }),
      ],
      unlisted: ['Small.Lib@3.0.0'],
      inlineThreshold: 0,
      pageSize: 2,
      vulnerabilities: { 'small.lib': [{ severity: 2, url: 'https://github.com/advisories/GHSA-test', versions: '[3.0.0, 3.1.0)' }] },
    });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  // Catalog URLs (catalogEntry.@id and dependency-group fragments) stay upstream: the proxy does not serve the
  // catalog and clients never fetch them (protocol notes Appendix A). Every other URL must be the proxy's.
  const noUpstream = (text: string): void => {
    text = text.replaceAll(new RegExp(`${upstream.origin}/v3/catalog0/[^"]*`, 'g'), '');
    expect(text).not.toContain(upstream.origin);
    expect(text).not.toContain('127.0.0.1:' + new URL(upstream.origin).port);
  };

  it('advertises each upstream hive under its own types, and vulnerability info', async () => {
    const idx = (await get(proxy.index)).json<{ resources: { '@id': string; '@type': string; clientVersion?: string }[] }>();
    const byType = new Map(idx.resources.map((r) => [r['@type'], r]));
    expect(byType.get('RegistrationsBaseUrl/3.6.0')?.['@id']).toBe(`${proxy.url}v3/registration/semver2/`);
    expect(byType.get('RegistrationsBaseUrl/Versioned')).toMatchObject({ '@id': `${proxy.url}v3/registration/semver2/`, clientVersion: '4.3.0-alpha' });
    expect(byType.get('RegistrationsBaseUrl/3.4.0')?.['@id']).toBe(`${proxy.url}v3/registration/gz-semver1/`);
    expect(byType.get('RegistrationsBaseUrl/3.0.0-beta')?.['@id']).toBe(`${proxy.url}v3/registration/semver1/`);
    expect(byType.get('VulnerabilityInfo/6.7.0')?.['@id']).toBe(`${proxy.url}v3/vulnerabilities/index.json`);
    expect(byType.get('SearchQueryService/3.5.0')?.['@id']).toBe(`${proxy.url}v3/query`);
  });

  it('serves a paged registration index with every URL on the proxy, gzip only when asked', async () => {
    const url = `${proxy.url}v3/registration/semver2/paged.lib/index.json`;
    const gz = await get(url, { 'accept-encoding': 'gzip, deflate' });
    expect(gz.status).toBe(200);
    expect(gz.headers['content-encoding']).toBe('gzip');
    const text = gunzipSync(gz.body).toString('utf8');
    const plain = await get(url);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.text).toBe(text);
    noUpstream(text);
    const doc = JSON.parse(text) as { count: number; items: { '@id': string; lower: string; upper: string; count: number; items?: unknown[] }[] };
    expect(doc.count).toBe(3);
    expect(doc.items.map((p) => [p.lower, p.upper, p.count])).toEqual([
      ['1.0.0', '1.63.0', 64],
      ['1.64.0', '1.127.0', 64],
      ['2.0.0-beta.1', '2.0.0', 2],
    ]);
    for (const p of doc.items) {
      expect(p.items).toBeUndefined();
      expect(p['@id']).toBe(`${proxy.url}v3/registration/semver2/paged.lib/page/${p.lower}/${p.upper}.json`);
    }
    // the client follows a page URL: served through the proxy, rewritten, with its leaves
    const page = await get(doc.items[1]!['@id']);
    expect(page.status).toBe(200);
    noUpstream(page.text);
    const pageDoc = page.json();
    expect(pageDoc.items.map((l: any) => l.catalogEntry.version)).toEqual(versions.slice(64, 128));
    expect(pageDoc).toMatchObject({ count: 64, lower: '1.64.0', upper: '1.127.0', parent: url });
    const leaf = pageDoc.items.find((l: any) => l.catalogEntry.version === '1.120.0');
    expect(leaf['@id']).toBe(`${proxy.url}v3/registration/semver2/paged.lib/1.120.0.json`);
    expect(leaf.packageContent).toBe(`${proxy.url}v3/flat/paged.lib/1.120.0/paged.lib.1.120.0.nupkg`);
    expect(leaf.catalogEntry.packageContent).toBe(leaf.packageContent);
    expect(leaf.catalogEntry.dependencyGroups[0].dependencies[0].registration).toBe(`${proxy.url}v3/registration/semver2/dep.one/index.json`);
    // and a leaf document
    const leafDoc = await get(leaf['@id']);
    expect(leafDoc.status).toBe(200);
    expect(leafDoc.json()).toMatchObject({ '@id': leaf['@id'], packageContent: leaf.packageContent, registration: `${proxy.url}v3/registration/semver2/paged.lib/index.json` });
    // packageContent really downloads through the proxy
    const pkg = await get(leaf.packageContent);
    expect(pkg.status).toBe(200);
    expect(pkg.body.equals(Buffer.from(makeNupkg({ id: 'Paged.Lib', version: '1.120.0', dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: [{ id: 'Dep.One', range: '[1.0.0, )' }] }] })))).toBe(true);
  });

  it('keeps the identity hive identity, SemVer 1 only, and unlisted versions marked', async () => {
    const r = await get(`${proxy.url}v3/registration/semver1/small.lib/index.json`, { 'accept-encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBeUndefined();
    const doc = r.json();
    const leaves = doc.items.flatMap((p: any) => p.items);
    expect(leaves.map((l: any) => [l.catalogEntry.version, l.catalogEntry.listed])).toEqual([
      ['3.0.0', false],
      ['3.1.0', true],
    ]);
    expect(leaves[0].catalogEntry.published).toMatch(/^1900-01-01/);
    const semver1Paged = await get(`${proxy.url}v3/registration/semver1/paged.lib/index.json`);
    const all = semver1Paged.json().items.flatMap((p: any) => p.items ?? []).map((l: any) => l.catalogEntry.version);
    expect(all).not.toContain('2.0.0-beta.1');
  });

  it('answers 404 for an unknown hive, id, page or leaf', async () => {
    expect((await get(`${proxy.url}v3/registration/nope/paged.lib/index.json`)).status).toBe(404);
    expect((await get(`${proxy.url}v3/registration/semver2/unknown.pkg/index.json`)).status).toBe(404);
    expect((await get(`${proxy.url}v3/registration/semver2/paged.lib/page/9.0.0/9.9.0.json`)).status).toBe(404);
    expect((await get(`${proxy.url}v3/registration/semver2/small.lib/page/3.0.0/3.1.0.json`)).status).toBe(404); // inlined
    expect((await get(`${proxy.url}v3/registration/semver2/paged.lib/7.0.0.json`)).status).toBe(404);
  });

  it('passes search queries through raw, rewrites result URLs and caches the answer', async () => {
    const q = 'q=lib&skip=0&take=20&prerelease=true&semVerLevel=2.0.0';
    const r = await get(`${proxy.url}v3/query?${q}`);
    expect(r.status).toBe(200);
    noUpstream(r.text);
    // forwarded raw, with skip/take widened to the merge window (skip=0, take=50)
    expect(upstream.requests.some((x) => x.path === `/query?${q.replace("take=20", "take=50")}`)).toBe(true);
    const doc = r.json();
    const hit = doc.data.find((d: any) => d.id === 'Paged.Lib');
    expect(hit.registration).toBe(`${proxy.url}v3/registration/semver2/paged.lib/index.json`);
    expect(hit.versions.map((v: any) => v['@id'])).toContain(`${proxy.url}v3/registration/semver2/paged.lib/2.0.0-beta.1.json`);
    expect(doc['@context']['@base']).toBe(`${proxy.url}v3/registration/semver2/`);
    const before = upstream.hits('/query');
    expect((await get(`${proxy.url}v3/query?${q}`)).headers['x-nuproxy-cache']).toBe('hit');
    expect(upstream.hits('/query')).toBe(before);
    const semver1 = await get(`${proxy.url}v3/query?q=lib`);
    expect(semver1.json()['@context']['@base']).toBe(`${proxy.url}v3/registration/semver1/`);
  });

  it('passes autocomplete through', async () => {
    const ids = await get(`${proxy.url}v3/autocomplete?q=small`);
    expect(ids.json().data).toEqual(['Small.Lib']);
    const vers = await get(`${proxy.url}v3/autocomplete?id=Small.Lib&prerelease=true`);
    expect(vers.json().data).toEqual(['3.1.0']);
  });

  it('proxies the vulnerability index and pages', async () => {
    const idx = await get(`${proxy.url}v3/vulnerabilities/index.json`);
    expect(idx.status).toBe(200);
    noUpstream(idx.text);
    const entries = idx.json() as { '@name': string; '@id': string }[];
    expect(entries).toHaveLength(1);
    expect(entries[0]!['@id']).toMatch(new RegExp(`^${proxy.url}v3/vulnerabilities/up0-base/[0-9a-f]{16}\\.json$`));
    const page = await get(entries[0]!['@id']);
    expect(page.status).toBe(200);
    expect(page.json()).toEqual({ 'small.lib': [{ severity: 2, url: 'https://github.com/advisories/GHSA-test', versions: '[3.0.0, 3.1.0)' }] });
    expect(entries[0]!['@name']).toBe('up0-base');
    expect((await get(`${proxy.url}v3/vulnerabilities/up0-base/0000000000000000.json`)).status).toBe(404);
  });

  it('builds URLs from the Host header, and from X-Forwarded-* only when trusted', async () => {
    const viaHost = (await get(proxy.index, { host: 'nuget.corp.example:8443' })).json();
    expect(allStrings(viaHost.resources.map((r: any) => r['@id'])).every((u) => u.startsWith('http://nuget.corp.example:8443/v3/'))).toBe(true);
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', 'x-forwarded-prefix': '/nuget' };
    const untrusted = (await get(proxy.index, forwarded)).json();
    expect(untrusted.resources[0]['@id'].startsWith(proxy.url)).toBe(true);
    const trusting = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { trustForwardedHeaders: true } });
    try {
      const trusted = (await get(trusting.index, forwarded)).json();
      expect(trusted.resources[0]['@id']).toBe('https://evil.example/nuget/v3/flat/');
      expect((await get(trusting.index, { 'x-forwarded-host': 'bad host"' })).status).toBe(400);
    } finally {
      await trusting.stop();
    }
    const fixed = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { publicUrl: 'https://nuget.example.com/feed/' } });
    try {
      const doc = (await get(fixed.index, { host: 'other:1' })).json();
      expect(doc.resources.every((r: any) => r['@id'].startsWith('https://nuget.example.com/feed/v3/'))).toBe(true);
    } finally {
      await fixed.stop();
    }
  });

  it('logs one JSON line per request with method, path, status, duration, cache outcome and upstream', async () => {
    await get(`${proxy.url}v3/flat/dep.one/index.json`);
    await get(`${proxy.url}v3/flat/dep.one/index.json`);
    const lines = proxy.logs.lines.filter((l) => l.path === '/v3/flat/dep.one/index.json');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ method: 'GET', status: 200, cache: 'miss', upstream: 'up0', msg: 'request' });
    expect(lines[1]).toMatchObject({ cache: 'hit' });
    expect(typeof lines[0]!.durationMs).toBe('number');
  });
});
