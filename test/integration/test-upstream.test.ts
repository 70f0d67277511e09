// The test upstream itself: feed shapes, conditional requests, search, faults and auth, over real sockets.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg, readNupkg } from '../support/nupkg.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { needTool } from '../support/need.js';
import { BLOB_NOT_FOUND_XML, startTestUpstream, type TestUpstream } from '../support/upstream.js';

const REG2 = '/v3/registration5-gz-semver2/';
const REG1GZ = '/v3/registration5-gz-semver1/';
const REG1 = '/v3/registration5-semver1/';

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<Got> {
  const r = await request(url, { method, headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body };
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<any> {
  const r = await get(url, headers);
  expect(r.status).toBe(200);
  const raw = r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
  return JSON.parse(raw.toString('utf8'));
}

/** A raw HTTP/1.1 exchange: everything the server sent until it closed (or reset) the connection. */
function rawGet(origin: string, path: string): Promise<{ head: string; body: Buffer; error?: string; ms: number }> {
  const { hostname, port } = new URL(origin);
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(port), hostname, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
    });
    let error: string | undefined;
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      const head = sep < 0 ? all.toString('latin1') : all.subarray(0, sep).toString('latin1');
      const body = sep < 0 ? Buffer.alloc(0) : all.subarray(sep + 4);
      resolve({ head, body, ms: Date.now() - started, ...(error ? { error } : {}) });
    });
  });
}

const contentLength = (head: string): number => Number(/content-length:\s*(\d+)/i.exec(head)?.[1]);

const core = (version: string, deps: { id: string; range: string }[] = []) =>
  makeNupkg({
    id: 'Contoso.Core',
    version,
    authors: 'Alice, Bob',
    ...(deps.length > 0 ? { dependencyGroups: [{ targetFramework: 'netstandard2.0', dependencies: deps }] } : {}),
  });

describe('test upstream', () => {
  let up: TestUpstream;
  const bigNupkg = makeNupkg({ id: 'Contoso.Big', version: '1.0.0', padBytes: 256 * 1024 });

  beforeAll(async () => {
    up = await startTestUpstream({
      packages: [
        core('1.0.0'),
        core('1.1.0'),
        core('2.0.0-beta'),
        core('2.0.0-beta.2'), // SemVer 2 (dotted label)
        core('0.9.0'),
        makeNupkg({
          id: 'Contoso.Lib',
          version: '1.0.0',
          dependencyGroups: [{ dependencies: [{ id: 'Contoso.Core', range: '1.0.0' }] }],
        }),
        makeNupkg({ id: 'Fabrikam.Tools', version: '3.0.0' }),
        bigNupkg,
      ],
      unlisted: ['contoso.core@0.9'],
    });
  });
  afterAll(async () => {
    await up.close();
  });

  it('serves a nuget.org-like service index', async () => {
    const idx = await getJson(up.serviceIndexUrl);
    expect(idx.version).toBe('3.0.0');
    // what nuget.org itself sends (captured), not merely "some @context"
    const captured = JSON.parse(readFileSync(new URL('../fixtures/captured/nuget.org/service-index.2025.host-templated.json', import.meta.url), 'utf8'));
    expect(idx['@context']).toEqual(captured['@context']);
    // every type the test upstream advertises is one nuget.org advertises too
    const nugetTypes = new Set(captured.resources.map((r: any) => r['@type']));
    expect(idx.resources.map((r: any) => r['@type']).filter((t: string) => !nugetTypes.has(t))).toEqual([]);
    const byType = new Map<string, any>(idx.resources.map((r: any) => [r['@type'], r]));
    const o = up.origin;
    expect(byType.get('PackageBaseAddress/3.0.0')['@id']).toBe(`${o}/v3-flatcontainer/`);
    expect(byType.get('RegistrationsBaseUrl/3.6.0')['@id']).toBe(`${o}${REG2}`);
    expect(byType.get('RegistrationsBaseUrl/Versioned')).toMatchObject({ '@id': `${o}${REG2}`, clientVersion: '4.3.0-alpha' });
    expect(byType.get('RegistrationsBaseUrl/3.4.0')['@id']).toBe(`${o}${REG1GZ}`);
    for (const t of ['RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-beta', 'RegistrationsBaseUrl/3.0.0-rc']) {
      expect(byType.get(t)['@id']).toBe(`${o}${REG1}`);
    }
    for (const t of ['', '/3.0.0-beta', '/3.0.0-rc', '/3.5.0']) expect(byType.get(`SearchQueryService${t}`)['@id']).toBe(`${o}/query`);
    for (const t of ['', '/3.0.0-beta', '/3.0.0-rc']) {
      expect(byType.get(`SearchAutocompleteService${t}`)['@id']).toBe(`${o}/autocomplete`);
    }
    expect(byType.get('LegacyGallery/2.0.0')['@id']).toBe(`${o}/api/v2`);
    expect(byType.get('Catalog/3.0.0')['@id']).toBe(`${o}/v3/catalog0/index.json`);
    expect(byType.get('SearchGalleryQueryService/3.0.0-rc')['@id']).toBe(`${o}/gallery`);
    expect(byType.has('VulnerabilityInfo/6.7.0')).toBe(false);
    expect([...byType.keys()].some((t) => t.startsWith('RepositorySignatures') || t.startsWith('PackagePublish'))).toBe(false);
    const pairs = idx.resources.map((r: any) => `${r['@id']} ${r['@type']}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    for (const p of ['/api/v2', '/v3/catalog0/index.json', '/gallery']) expect((await get(`${o}${p}`)).status).toBe(404);
    const head = await get(up.serviceIndexUrl, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(100);
  });

  it('flat container: versions (unlisted included), 404 XML, case-sensitive paths, nupkg and nuspec', async () => {
    const flat = `${up.origin}/v3-flatcontainer/`;
    expect(await getJson(`${flat}contoso.core/index.json`)).toEqual({
      versions: ['0.9.0', '1.0.0', '1.1.0', '2.0.0-beta', '2.0.0-beta.2'],
    });
    const missing = await get(`${flat}no.such.package/index.json`);
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/xml');
    expect(missing.body.toString()).toBe(BLOB_NOT_FOUND_XML);
    expect((await get(`${flat}Contoso.Core/index.json`)).status).toBe(404);
    expect((await get(`${flat}contoso.core/2.0.0-BETA/contoso.core.2.0.0-BETA.nupkg`)).status).toBe(404);
    expect((await get(`${flat}contoso.core/2.0.0-beta/Contoso.Core.2.0.0-beta.nupkg`)).status).toBe(404);
    expect((await get(`${flat}contoso.core/9.9.9/contoso.core.9.9.9.nupkg`)).status).toBe(404);

    const pkg = await get(`${flat}contoso.big/1.0.0/contoso.big.1.0.0.nupkg`);
    expect(pkg.status).toBe(200);
    expect(pkg.headers['content-type']).toBe('application/octet-stream');
    expect(Number(pkg.headers['content-length'])).toBe(bigNupkg.length);
    expect(Buffer.compare(pkg.body, Buffer.from(bigNupkg))).toBe(0);
    expect(pkg.headers['x-ms-meta-sha512']).toBe(createHash('sha512').update(bigNupkg).digest('base64'));
    expect(pkg.headers.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(pkg.headers['last-modified']).toBeTruthy();

    const head = await get(`${flat}contoso.big/1.0.0/contoso.big.1.0.0.nupkg`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(bigNupkg.length);
    expect(head.body.length).toBe(0);

    const nuspec = await get(`${flat}contoso.core/1.0.0/contoso.core.nuspec`);
    expect(nuspec.status).toBe(200);
    expect(nuspec.headers['content-type']).toBe('text/xml');
    expect(nuspec.body.toString()).toContain('<id>Contoso.Core</id>');
  });

  it('answers conditional requests with 304 and changes validators when content changes', async () => {
    const url = `${up.origin}/v3-flatcontainer/contoso.lib/index.json`;
    const first = await get(url);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    const revalidated = await get(url, { 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.body.length).toBe(0);
    expect((await get(url, { 'if-modified-since': first.headers['last-modified'] as string })).status).toBe(304);
    expect((await get(url, { 'if-none-match': '"nope"' })).status).toBe(200);

    const nupkgUrl = `${up.origin}/v3-flatcontainer/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg`;
    const n = await get(nupkgUrl);
    expect((await get(nupkgUrl, { 'if-none-match': n.headers.etag as string })).status).toBe(304);
    const reg = `${up.origin}${REG2}contoso.lib/index.json`;
    const r = await get(reg);
    expect((await get(reg, { 'if-none-match': r.headers.etag as string })).status).toBe(304);

    up.addPackage(makeNupkg({ id: 'Contoso.Lib', version: '1.1.0' }));
    const after = await get(url, { 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body.toString()).versions).toEqual(['1.0.0', '1.1.0']);
    expect(Date.parse(after.headers['last-modified'] as string)).toBeGreaterThan(
      Date.parse(first.headers['last-modified'] as string),
    );
    expect((await get(url, { 'if-modified-since': first.headers['last-modified'] as string })).status).toBe(200);
  });

  it('registration: gzip hives always gzip, semver1 hives hide SemVer 2, leaves look like nuget.org', async () => {
    const gz = await get(`${up.origin}${REG2}contoso.core/index.json`); // undici sends no Accept-Encoding
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.etag).toBeTruthy();
    const plain = await get(`${up.origin}${REG1}contoso.core/index.json`);
    expect(plain.headers['content-encoding']).toBeUndefined();

    const idx2 = JSON.parse(gunzipSync(gz.body).toString());
    expect(idx2['@id']).toBe(`${up.origin}${REG2}contoso.core/index.json`);
    expect(idx2.count).toBe(1);
    const page = idx2.items[0];
    expect(page['@id']).toBe(`${up.origin}${REG2}contoso.core/index.json#page/0.9.0/2.0.0-beta.2`);
    expect(page).toMatchObject({ count: 5, lower: '0.9.0', upper: '2.0.0-beta.2', parent: idx2['@id'] });
    expect(page.items.map((l: any) => l.catalogEntry.version)).toEqual(['0.9.0', '1.0.0', '1.1.0', '2.0.0-beta', '2.0.0-beta.2']);

    const idx1 = JSON.parse(plain.body.toString());
    expect(idx1.items[0].items.map((l: any) => l.catalogEntry.version)).toEqual(['0.9.0', '1.0.0', '1.1.0', '2.0.0-beta']);
    expect(idx1.items[0].upper).toBe('2.0.0-beta');
    const idx1gz = await getJson(`${up.origin}${REG1GZ}contoso.core/index.json`);
    expect(idx1gz.items[0].count).toBe(4);
    expect((await get(`${up.origin}${REG1}contoso.core/2.0.0-beta.2.json`)).status).toBe(404);
    expect((await get(`${up.origin}${REG2}no.such/index.json`)).status).toBe(404);
    expect((await get(`${up.origin}${REG2}Contoso.Core/index.json`)).status).toBe(404);

    const unlisted = page.items[0];
    expect(unlisted).toMatchObject({
      '@id': `${up.origin}${REG2}contoso.core/0.9.0.json`,
      '@type': 'Package',
      packageContent: `${up.origin}/v3-flatcontainer/contoso.core/0.9.0/contoso.core.0.9.0.nupkg`,
      registration: idx2['@id'],
    });
    expect(unlisted.catalogEntry).toMatchObject({
      '@type': 'PackageDetails',
      id: 'Contoso.Core',
      listed: false,
      published: '1900-01-01T00:00:00+00:00',
      authors: 'Alice, Bob',
      packageContent: unlisted.packageContent,
    });
    expect(unlisted.catalogEntry['@id']).toMatch(new RegExp(`^${up.origin}/v3/catalog0/data/`));
    expect(page.items[1].catalogEntry.listed).toBe(true);
    expect(page.items[1].catalogEntry.published.startsWith('2024-')).toBe(true);

    const lib = await getJson(`${up.origin}${REG2}contoso.lib/index.json`);
    const dep = lib.items[0].items[0].catalogEntry.dependencyGroups[0];
    expect(dep.targetFramework).toBeUndefined();
    expect(dep.dependencies[0]).toMatchObject({
      '@type': 'PackageDependency',
      id: 'Contoso.Core',
      range: '[1.0.0, )',
      registration: `${up.origin}${REG2}contoso.core/index.json`,
    });

    const leaf = await getJson(`${up.origin}${REG2}contoso.core/1.0.0.json`);
    expect(leaf).toMatchObject({
      '@id': `${up.origin}${REG2}contoso.core/1.0.0.json`,
      '@type': ['Package', 'http://schema.nuget.org/catalog#Permalink'],
      listed: true,
      registration: `${up.origin}${REG2}contoso.core/index.json`,
    });
    expect(typeof leaf.catalogEntry).toBe('string');
  });

  it('setListed / addPackage take effect immediately', async () => {
    up.setListed('CONTOSO.CORE', '1.1', false);
    let idx = await getJson(`${up.origin}${REG2}contoso.core/index.json`);
    expect(idx.items[0].items[2].catalogEntry).toMatchObject({ version: '1.1.0', listed: false });
    up.setListed('contoso.core', '1.1.0', true);
    idx = await getJson(`${up.origin}${REG2}contoso.core/index.json`);
    expect(idx.items[0].items[2].catalogEntry.listed).toBe(true);
    expect(up.addPackage(makeNupkg({ id: 'Brand.New', version: '1.0.0-RC1' }))).toEqual({
      lowerId: 'brand.new',
      lowerVersion: '1.0.0-rc1',
    });
    expect(await getJson(`${up.origin}/v3-flatcontainer/brand.new/index.json`)).toEqual({ versions: ['1.0.0-rc1'] });
    expect(() => up.setListed('nope', '1.0.0', false)).toThrow();
  });

  it('search: listed only, prerelease and semVerLevel filters, paging, shape', async () => {
    const q = (s: string) => getJson(`${up.origin}/query?${s}`);
    const all = await q('q=contoso');
    expect(all.totalHits).toBe(3);
    expect(all.data.map((d: any) => d.id)).toEqual(['Contoso.Big', 'Contoso.Core', 'Contoso.Lib']);
    expect(all['@context']).toEqual({ '@vocab': 'http://schema.nuget.org/schema#', '@base': `${up.origin}${REG1}` });
    const c = all.data[1];
    expect(c).toMatchObject({
      '@id': `${up.origin}${REG1}contoso.core/index.json`,
      '@type': 'Package',
      registration: `${up.origin}${REG1}contoso.core/index.json`,
      version: '1.1.0',
      authors: ['Alice', 'Bob'],
      verified: false,
      packageTypes: [{ name: 'Dependency' }],
      vulnerabilities: [],
    });
    expect(c.versions.map((v: any) => v.version)).toEqual(['1.0.0', '1.1.0']); // 0.9.0 unlisted
    expect(c.versions[0]['@id']).toBe(`${up.origin}${REG1}contoso.core/1.0.0.json`);

    const pre = await q('q=CONTOSO.core&prerelease=true');
    expect(pre.data[0].versions.map((v: any) => v.version)).toEqual(['1.0.0', '1.1.0', '2.0.0-beta']);
    const pre2 = await q('q=contoso.core&prerelease=true&semVerLevel=2.0.0');
    expect(pre2.data[0].version).toBe('2.0.0-beta.2');
    expect(pre2['@context']['@base']).toBe(`${up.origin}${REG2}`);
    expect(pre2.data[0].versions[3]['@id']).toBe(`${up.origin}${REG2}contoso.core/2.0.0-beta.2.json`);

    const page = await q('q=&skip=1&take=2');
    expect(page.totalHits).toBe(4); // Brand.New is prerelease-only
    expect(page.data.map((d: any) => d.id)).toEqual(['Contoso.Core', 'Contoso.Lib']);
    expect((await q('q=&prerelease=true')).totalHits).toBe(5);
    expect((await q('q=contoso&packageType=DotnetTool')).totalHits).toBe(0);

    expect(await getJson(`${up.origin}/autocomplete?q=fab`)).toMatchObject({ totalHits: 1, data: ['Fabrikam.Tools'] });
    expect((await getJson(`${up.origin}/autocomplete?id=Contoso.Core&prerelease=true`)).data).toEqual([
      '1.0.0',
      '1.1.0',
      '2.0.0-beta',
    ]);
  });

  it('registration paging: separate page documents above inlineThreshold', async () => {
    const small = await startTestUpstream({
      packages: ['1.0.0', '1.0.1', '1.0.2', '2.0.0', '3.0.0-alpha'].map((v) => core(v)),
      inlineThreshold: 2,
      pageSize: 2,
    });
    try {
      const base = `${small.origin}${REG2}contoso.core/`;
      const idx = await getJson(`${base}index.json`);
      expect(idx.count).toBe(3);
      expect(idx.items.map((p: any) => [p.lower, p.upper, p.count])).toEqual([
        ['1.0.0', '1.0.1', 2],
        ['1.0.2', '2.0.0', 2],
        ['3.0.0-alpha', '3.0.0-alpha', 1],
      ]);
      for (const p of idx.items) {
        expect(p.items).toBeUndefined();
        expect(p.parent).toBeUndefined();
        expect(p['@id']).toBe(`${base}page/${p.lower}/${p.upper}.json`);
        const doc = await getJson(p['@id']);
        expect(doc).toMatchObject({ '@id': p['@id'], count: p.count, lower: p.lower, upper: p.upper, parent: `${base}index.json` });
        expect(doc.items).toHaveLength(p.count);
      }
      expect((await get(`${base}page/1.0.0/9.0.0.json`)).status).toBe(404);
      const plainPage = await get(`${small.origin}${REG1}contoso.core/page/1.0.0/1.0.1.json`);
      expect(plainPage.status).toBe(200);
      expect(plainPage.headers['content-encoding']).toBeUndefined();
    } finally {
      await small.close();
    }
  });

  it('records requests and counts hits', async () => {
    up.resetHits();
    await get(`${up.origin}/v3-flatcontainer/contoso.core/index.json?x=1`, { 'x-test': 'yes' });
    await get(`${up.origin}/v3-flatcontainer/nope/index.json`);
    expect(up.requests[0]).toMatchObject({ method: 'GET', path: '/v3-flatcontainer/contoso.core/index.json?x=1' });
    expect(up.requests[0]!.headers['x-test']).toBe('yes');
    expect(up.hits('/v3-flatcontainer/contoso.core/index.json')).toBe(1);
    expect(up.hits(/^\/v3-flatcontainer\//)).toBe(2);
    expect(up.hits(/x=1$/)).toBe(1);
    up.resetHits();
    expect(up.requests).toHaveLength(0);
  });

  describe('faults', () => {
    const path = '/v3-flatcontainer/contoso.big/1.0.0/contoso.big.1.0.0.nupkg';
    const n = bigNupkg.length;

    it('status, limited by times, then cleared', async () => {
      up.setFault(path, { kind: 'status', status: 503 }, 2);
      expect((await get(`${up.origin}${path}`)).status).toBe(503);
      const second = await get(`${up.origin}${path}`);
      expect(second.status).toBe(503);
      expect(second.headers['content-type']).toBe('application/json');
      expect((await get(`${up.origin}${path}`)).status).toBe(200);
      up.setFault(/contoso\.big/, { kind: 'status', status: 429, body: 'slow down', contentType: 'text/plain' });
      for (let i = 0; i < 3; i++) {
        const r = await get(`${up.origin}${path}`);
        expect([r.status, r.body.toString(), r.headers['content-type']]).toEqual([429, 'slow down', 'text/plain']);
      }
      up.setFault(/contoso\.big/, undefined);
      expect((await get(`${up.origin}${path}`)).status).toBe(200);
    });

    it('reset-mid-body: true Content-Length, some bytes, then the connection dies', async () => {
      up.setFault(path, { kind: 'reset-mid-body', afterBytes: 1000 }, 1);
      const r = await rawGet(up.origin, path);
      expect(r.head).toMatch(/^HTTP\/1\.1 200/);
      expect(contentLength(r.head)).toBe(n);
      expect(r.body.length).toBeLessThanOrEqual(1000);
      expect(r.error).toBe('ECONNRESET');
      up.setFault(path, { kind: 'reset-mid-body' }, 1);
      await expect(get(`${up.origin}${path}`)).rejects.toThrow();
    });

    it('short-body and long-body', async () => {
      up.setFault(path, { kind: 'short-body' }, 1);
      const short = await rawGet(up.origin, path);
      expect(contentLength(short.head)).toBe(n);
      expect(short.body.length).toBe(Math.floor(n / 2));
      up.setFault(path, { kind: 'short-body' }, 1);
      await expect(get(`${up.origin}${path}`)).rejects.toThrow();

      up.setFault(path, { kind: 'long-body' }, 1);
      const long = await rawGet(up.origin, path);
      expect(contentLength(long.head)).toBe(Math.floor(n / 2));
      expect(long.body.length).toBe(n);
    });

    it('stall and stall-body', async () => {
      up.setFault(path, { kind: 'stall', ms: 400 }, 1);
      let t = Date.now();
      const stalled = await get(`${up.origin}${path}`);
      expect(stalled.status).toBe(200);
      expect(stalled.body.length).toBe(n);
      expect(Date.now() - t).toBeGreaterThanOrEqual(350);

      up.setFault(path, { kind: 'stall-body', afterBytes: 100, ms: 400 }, 1);
      const r = await request(`${up.origin}${path}`);
      const headersAt = Date.now();
      const body = Buffer.from(await r.body.arrayBuffer());
      // the stall is in the body, after the headers (however long the headers took on a busy machine)
      expect(Date.now() - headersAt).toBeGreaterThanOrEqual(350);
      expect(Buffer.compare(body, Buffer.from(bigNupkg))).toBe(0);
    });

    it('html and invalid-json', async () => {
      const flatIndex = '/v3-flatcontainer/contoso.core/index.json';
      up.setFault(flatIndex, { kind: 'html' }, 1);
      const html = await get(`${up.origin}${flatIndex}`);
      expect(html.status).toBe(200);
      expect(html.headers['content-type']).toMatch(/^text\/html/);
      expect(html.body.toString()).toMatch(/<html>/);

      up.setFault(flatIndex, { kind: 'invalid-json' }, 1);
      const bad = await get(`${up.origin}${flatIndex}`);
      expect(bad.status).toBe(200);
      expect(bad.headers['content-type']).toBe('application/json');
      expect(() => JSON.parse(bad.body.toString())).toThrow();
      expect(bad.body.toString().startsWith('{"versions":[')).toBe(true);
    });

    it('throttle paces the real body', async () => {
      const small = '/v3-flatcontainer/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg';
      const size = Number((await get(`${up.origin}${small}`, {}, 'HEAD')).headers['content-length']);
      up.setFault(small, { kind: 'throttle', bytesPerSecond: size * 2 }, 1); // ~0.5 s
      const t = Date.now();
      const r = await get(`${up.origin}${small}`);
      expect(r.body.length).toBe(size);
      expect(Date.now() - t).toBeGreaterThanOrEqual(350);
    });

    it('faults are recorded like any request', async () => {
      up.resetHits();
      up.setFault('/v3/index.json', { kind: 'status', status: 500 }, 1);
      expect((await get(up.serviceIndexUrl)).status).toBe(500);
      expect((await get(up.serviceIndexUrl)).status).toBe(200);
      expect(up.hits('/v3/index.json')).toBe(2);
    });
  });
});

describe('test upstream options', () => {
  it('auth: basic, bearer and custom header', async () => {
    const nupkg = makeNupkg({ id: 'Secret.Pkg', version: '1.0.0' });
    const basic = await startTestUpstream({ packages: [nupkg], auth: { kind: 'basic', username: 'u', password: 'p' } });
    const bearer = await startTestUpstream({ packages: [nupkg], auth: { kind: 'bearer', token: 't0k' } });
    const header = await startTestUpstream({ packages: [nupkg], auth: { kind: 'header', name: 'X-Api-Key', value: 'k' } });
    try {
      const denied = await get(basic.serviceIndexUrl);
      expect(denied.status).toBe(401);
      expect(denied.headers['www-authenticate']).toBe('Basic realm="test-upstream"');
      expect(denied.headers['content-type']).toBe('application/json');
      expect((await get(basic.serviceIndexUrl, { authorization: `Basic ${Buffer.from('u:wrong').toString('base64')}` })).status).toBe(401);
      expect((await get(basic.serviceIndexUrl, { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` })).status).toBe(200);
      expect(basic.requests).toHaveLength(3);

      const b = await get(`${bearer.origin}/v3-flatcontainer/secret.pkg/index.json`);
      expect([b.status, b.headers['www-authenticate']]).toEqual([401, 'Bearer realm="test-upstream"']);
      expect((await get(`${bearer.origin}/v3-flatcontainer/secret.pkg/index.json`, { authorization: 'Bearer t0k' })).status).toBe(200);

      expect((await get(header.serviceIndexUrl)).status).toBe(401);
      expect((await get(header.serviceIndexUrl, { 'x-api-key': 'k' })).status).toBe(200);
    } finally {
      await Promise.all([basic.close(), bearer.close(), header.close()]);
    }
  });

  it('packageDirs: global-packages layout, symbols packages skipped; vulnerabilities', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nuproxy-upstream-'));
    try {
      await mkdir(join(dir, 'a.b', '1.0.0'), { recursive: true });
      await writeFile(join(dir, 'a.b', '1.0.0', 'a.b.1.0.0.nupkg'), makeNupkg({ id: 'A.B', version: '1.0.0' }));
      await writeFile(join(dir, 'a.b', '1.0.0', 'a.b.1.0.0.symbols.nupkg'), makeNupkg({ id: 'A.B', version: '9.0.0' }));
      await writeFile(join(dir, 'a.b', '1.0.0', 'a.b.1.0.0.snupkg'), 'not a zip');
      const vulns = { 'a.b': [{ severity: 2, url: 'https://example.test/advisory/1', versions: '[1.0.0, 1.0.0]' }] };
      const up = await startTestUpstream({ packageDirs: [dir], vulnerabilities: vulns });
      try {
        expect(await getJson(`${up.origin}/v3-flatcontainer/a.b/index.json`)).toEqual({ versions: ['1.0.0'] });
        const idx = await getJson(up.serviceIndexUrl);
        const v = idx.resources.find((r: any) => r['@type'] === 'VulnerabilityInfo/6.7.0');
        expect(v['@id']).toBe(`${up.origin}/v3/vulnerabilities/index.json`);
        const vIndex = await getJson(v['@id']);
        expect(vIndex).toEqual([{ '@name': 'base', '@id': `${up.origin}/v3/vulnerabilities/base.json`, '@updated': '2024-01-01T00:00:00Z' }]);
        expect(await getJson(vIndex[0]['@id'])).toEqual(vulns);
      } finally {
        await up.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makeNupkg is deterministic and round-trips through readNupkg', () => {
    const spec = {
      id: 'Det.Pkg',
      version: '1.2.3-beta.1',
      description: 'a <b> & "c"',
      dependencyGroups: [
        { targetFramework: 'net8.0', dependencies: [{ id: 'X', range: '[1.0.0, 2.0.0)' }] },
        { targetFramework: 'netstandard2.0', dependencies: [] },
      ],
      padBytes: 100_000,
    };
    const a = makeNupkg(spec);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(makeNupkg(spec)))).toBe(0);
    expect(a.length).toBeGreaterThan(100_000); // padding is stored, not deflated
    const info = readNupkg(a);
    expect(info).toMatchObject({
      id: 'Det.Pkg',
      version: '1.2.3-beta.1',
      description: 'a <b> & "c"',
      authors: 'nuproxy-tests',
      dependencyGroups: spec.dependencyGroups,
    });
  });

  const noReal = needTool('real-packages', findRealPackagesDir() !== undefined, 'the test upstream tests over real packages');

  it.skipIf(noReal !== undefined)('readNupkg parses real nuspecs (xunit, Microsoft.NET.Test.Sdk, xunit.core)', () => {
    const root = findRealPackagesDir()!;
    const xunit = readNupkg(readFileSync(join(root, 'xunit', '2.9.3', 'xunit.2.9.3.nupkg')));
    expect(xunit).toMatchObject({ id: 'xunit', version: '2.9.3', authors: 'jnewkirk,bradwilson' });
    expect(xunit.dependencyGroups).toEqual([
      {
        dependencies: [
          { id: 'xunit.core', range: '[2.9.3]' },
          { id: 'xunit.assert', range: '2.9.3' },
          { id: 'xunit.analyzers', range: '1.18.0' },
        ],
      },
    ]);
    const sdk = readNupkg(readFileSync(join(root, 'microsoft.net.test.sdk', '18.0.1', 'microsoft.net.test.sdk.18.0.1.nupkg')));
    expect(sdk.id).toBe('Microsoft.NET.Test.Sdk');
    expect(sdk.dependencyGroups.map((g) => [g.targetFramework, g.dependencies.length])).toEqual([
      ['net8.0', 2],
      ['.NETFramework4.6.2', 1],
      ['native0.0', 0],
    ]);
  });

  it.skipIf(noReal !== undefined)('serves real packages with nuget.org-style registration data', async () => {
    const up = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    try {
      const xunit = await getJson(`${up.origin}${REG2}xunit/index.json`);
      const entry = xunit.items[0].items[0].catalogEntry;
      expect(entry).toMatchObject({ id: 'xunit', version: '2.9.3', listed: true });
      expect(entry.dependencyGroups[0].dependencies.map((d: any) => [d.id, d.range])).toEqual([
        ['xunit.core', '[2.9.3, 2.9.3]'],
        ['xunit.assert', '[2.9.3, )'],
        ['xunit.analyzers', '[1.18.0, )'],
      ]);
      const sdk = await getJson(`${up.origin}${REG1}microsoft.net.test.sdk/index.json`);
      const groups = sdk.items[0].items[0].catalogEntry.dependencyGroups;
      expect(groups.map((g: any) => g.targetFramework)).toEqual(['net8.0', '.NETFramework4.6.2', 'native0.0']);
      expect(groups[2].dependencies).toBeUndefined(); // like nuget.org: an empty group has no dependencies property
      const search = await getJson(`${up.origin}/query?q=xunit&take=100`);
      expect(search.data.map((d: any) => d.id)).toContain('xunit.runner.visualstudio');
    } finally {
      await up.close();
    }
  });
});
