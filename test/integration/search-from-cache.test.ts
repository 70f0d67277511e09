// Search and autocomplete behind an upstream that has none (a flat-only feed: its service index names no
// SearchQueryService): nuproxy advertises both and answers them over what it has cached, with exact paging; beside
// an upstream that has search, ids that upstream can find come from its search and the rest from the cache. The
// real client lists a cached package through it (`dotnet package search`) and installs a cached template package
// (`dotnet new install`, which searches for the id before it downloads).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageKey } from '../../src/feed/cache-keys.js';
import { nugetConfigXml, runDotnet, skipReason } from '../support/dotnet.js';
import { get } from '../support/http.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

type Json = Record<string, any>;

const reason = skipReason('dotnet package search / dotnet new install over the cache');

const PAGE_IDS = Array.from({ length: 12 }, (_, i) => `Page.Lib.${String(i).padStart(2, '0')}`);

/** Fetches a package through the proxy, and waits (bounded) until it is committed to the cache. */
async function fetchPackage(proxy: TestProxy, id: string, version: string): Promise<void> {
  const l = id.toLowerCase();
  const r = await get(`${proxy.url}v3/flat/${l}/${version}/${l}.${version}.nupkg`);
  expect(r.status, `${id} ${version}: ${r.text.slice(0, 200)}`).toBe(200);
  const file = join(proxy.cacheDir, packageKey(l, version, 'nupkg'));
  for (const deadline = Date.now() + 5000; !existsSync(file); ) {
    if (Date.now() > deadline) throw new Error(`${id} ${version} was served but never stored in the cache`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A template package (packageType Template, one template under content/) for `dotnet new install`. */
function templatePackage(id: string, version: string): Uint8Array {
  const nuspec = `<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata><id>${id}</id><version>${version}</version><authors>nuproxy-tests</authors><description>a template</description><packageTypes><packageType name="Template" /></packageTypes></metadata></package>`;
  const template = { $schema: 'http://json.schemastore.org/template', author: 'nuproxy-tests', identity: `${id}.Hello`, name: 'Hello from the cache', shortName: 'hellocache', tags: { language: 'C#', type: 'project' }, sourceName: 'Hello' };
  return zipSync({
    '_rels/.rels': strToU8(`<?xml version="1.0" encoding="utf-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/${id}.nuspec" Id="R1" /></Relationships>`),
    [`${id}.nuspec`]: strToU8(nuspec),
    'content/hello/.template.config/template.json': strToU8(JSON.stringify(template)),
    'content/hello/Hello.txt': strToU8('hello'),
    '[Content_Types].xml': strToU8('<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" /><Default Extension="nuspec" ContentType="application/octet" /><Default Extension="json" ContentType="application/octet" /><Default Extension="txt" ContentType="application/octet" /></Types>'),
  }, { mtime: new Date(2024, 0, 1) });
}

/** A folder for one real-client run: its own NuGet.Config (only the proxy), packages, http-cache and home. */
async function clientDirs(proxy: TestProxy): Promise<{ root: string; p: { dir: string; packagesDir: string; httpCacheDir: string; homeDir: string }; config: string }> {
  const root = await mkdtemp(join(tmpdir(), 'nuproxy-search-client-'));
  const p = { dir: join(root, 'cfg'), packagesDir: join(root, 'packages'), httpCacheDir: join(root, 'http-cache'), homeDir: join(root, 'home') };
  await Promise.all(Object.values(p).map((d) => mkdir(d, { recursive: true })));
  const config = join(p.dir, 'NuGet.Config');
  await writeFile(config, nugetConfigXml(proxy.index, true, p.packagesDir));
  return { root, p, config };
}

const idsOf = (doc: Json): string[] => (doc.data as Json[]).map((d) => (typeof d === 'string' ? d : d.id));

describe('search over the cache for an upstream without search', () => {
  let flat: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    flat = await startTestUpstream({
      search: false,
      packages: [
        makeNupkg({ id: 'Flat.Only.Lib', version: '1.0.0', description: 'the flat lib' }),
        makeNupkg({ id: 'Flat.Only.Lib', version: '2.0.0-beta.1', description: 'the flat lib, next' }),
        makeNupkg({ id: 'Flat.Other', version: '1.0.0' }),
        ...PAGE_IDS.map((id) => makeNupkg({ id, version: '1.0.0' })),
        templatePackage('Cached.Templates', '1.0.0'),
      ],
    });
    proxy = await startTestProxy({ upstreams: [flat.serviceIndexUrl] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await flat?.close();
  });

  it('advertises search and autocomplete, and answers them, empty, before anything is cached', async () => {
    const upstreamIndex = (await get(flat.serviceIndexUrl)).json() as { resources: { '@type': string }[] };
    expect(upstreamIndex.resources.some((r) => r['@type'].startsWith('Search'))).toBe(false);

    const index = (await get(proxy.index)).json() as { resources: { '@id': string; '@type': string }[] };
    const byType = new Map(index.resources.map((r) => [r['@type'], r['@id']]));
    expect(byType.get('SearchQueryService/3.0.0-beta')).toBe(`${proxy.url}v3/query`);
    expect(byType.get('SearchAutocompleteService/3.0.0-beta')).toBe(`${proxy.url}v3/autocomplete`);

    const search = await get(`${proxy.url}v3/query?q=flat`);
    expect(search.status, search.text).toBe(200);
    expect(search.json()).toMatchObject({ totalHits: 0, data: [] });
    const ac = await get(`${proxy.url}v3/autocomplete?q=flat`);
    expect(ac.status, ac.text).toBe(200);
    expect(ac.json()).toMatchObject({ totalHits: 0, data: [] });
    expect(flat.hits(/\/(query|autocomplete)$/)).toBe(0);
  });

  it('after a package was fetched, /v3/query and /v3/autocomplete answer from the cache', async () => {
    await fetchPackage(proxy, 'Flat.Only.Lib', '1.0.0');
    await fetchPackage(proxy, 'Flat.Only.Lib', '2.0.0-beta.1');

    const stable = await get(`${proxy.url}v3/query?q=flat`);
    expect(stable.status).toBe(200);
    expect(stable.json().totalHits).toBe(1); // Flat.Other was never fetched: not in the cache, not found
    const hit = stable.json().data[0] as Json;
    expect(hit).toMatchObject({ id: 'Flat.Only.Lib', version: '1.0.0', description: 'the flat lib' });
    expect((hit.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0']);
    expect(hit.registration).toBe(`${proxy.url}v3/registration/semver1/flat.only.lib/index.json`);
    expect(stable.text).not.toContain(flat.origin);

    const pre = (await get(`${proxy.url}v3/query?q=FLAT.only&prerelease=true&semVerLevel=2.0.0`)).json();
    expect(pre.data[0]).toMatchObject({ id: 'Flat.Only.Lib', version: '2.0.0-beta.1' });
    expect((pre.data[0].versions as Json[]).map((v) => v.version)).toEqual(['1.0.0', '2.0.0-beta.1']);
    expect(pre.data[0].registration).toBe(`${proxy.url}v3/registration/semver2/flat.only.lib/index.json`);

    expect((await get(`${proxy.url}v3/autocomplete?q=flat`)).json()).toMatchObject({ totalHits: 1, data: ['Flat.Only.Lib'] });
    expect((await get(`${proxy.url}v3/autocomplete?id=flat.only.lib`)).json()).toMatchObject({ data: ['1.0.0'] });
    expect((await get(`${proxy.url}v3/autocomplete?id=Flat.Only.Lib&prerelease=true&semVerLevel=2.0.0`)).json()).toMatchObject({ data: ['1.0.0', '2.0.0-beta.1'] });
    expect(flat.hits(/\/(query|autocomplete)$/)).toBe(0);
  });

  it('paging over the cache is exact: pages put together are the one big page', async () => {
    for (const id of PAGE_IDS) await fetchPackage(proxy, id, '1.0.0');
    const big = (await get(`${proxy.url}v3/query?q=page.lib&take=100`)).json();
    expect(big.totalHits).toBe(12);
    expect(idsOf(big).sort()).toEqual(PAGE_IDS);
    const paged: string[] = [];
    for (let skip = 0; skip < 15; skip += 5) {
      const page = (await get(`${proxy.url}v3/query?q=page.lib&skip=${skip}&take=5`)).json();
      expect(page.totalHits).toBe(12);
      paged.push(...idsOf(page));
    }
    expect(paged).toEqual(idsOf(big));

    const bigAc = (await get(`${proxy.url}v3/autocomplete?q=page&take=100`)).json();
    expect(bigAc.data).toEqual(idsOf(big));
    const pagedAc: string[] = [];
    for (let skip = 0; skip < 12; skip += 7) pagedAc.push(...idsOf((await get(`${proxy.url}v3/autocomplete?q=page&skip=${skip}&take=7`)).json()));
    expect(pagedAc).toEqual(bigAc.data);
  });

  it.skipIf(reason !== undefined)('dotnet package search lists the cached package through nuproxy', async () => {
    const { root, p, config } = await clientDirs(proxy);
    try {
      const r = await runDotnet(['package', 'search', 'flat.only', '--source', proxy.index, '--configfile', config, '--format', 'json'], p, { timeoutMs: 120_000 });
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { problems: unknown[]; searchResult: { problems?: unknown[]; packages: { id: string; latestVersion: string }[] }[] };
      // today's failure: "The source does not have a Search service!" as a problem of the source, and no packages
      expect([...out.problems, ...out.searchResult.flatMap((s) => s.problems ?? [])]).toEqual([]);
      expect(out.searchResult.flatMap((s) => s.packages)).toEqual([expect.objectContaining({ id: 'Flat.Only.Lib', latestVersion: '1.0.0' })]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it.skipIf(reason !== undefined)('dotnet new install installs a cached template package through nuproxy', async () => {
    await fetchPackage(proxy, 'Cached.Templates', '1.0.0');
    const { root, p } = await clientDirs(proxy);
    try {
      // the NuGet.Config in the working folder names the proxy as the only source
      const r = await runDotnet(['new', 'install', 'Cached.Templates', '--force'], p, { timeoutMs: 120_000 });
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/Success: Cached\.Templates@1\.0\.0 installed the following templates:[\s\S]*hellocache/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('search beside an upstream that has search', () => {
  let flat: TestUpstream;
  let pub: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    pub = await startTestUpstream({
      packages: [makeNupkg({ id: 'Pub.Lib', version: '1.0.0' }), makeNupkg({ id: 'Pub.Other.Lib', version: '1.0.0' }), makeNupkg({ id: 'Pub.Hidden', version: '1.0.0' })],
      unlisted: ['Pub.Hidden@1.0.0'],
    });
    flat = await startTestUpstream({ search: false, packages: [makeNupkg({ id: 'Flat.Only.Lib', version: '1.0.0' }), makeNupkg({ id: 'Flat.Second.Lib', version: '1.0.0' })] });
    proxy = await startTestProxy({ upstreams: [pub.serviceIndexUrl, flat.serviceIndexUrl] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await pub?.close();
    await flat?.close();
  });

  it("ids the upstream with search can find come from its search, copies from the searchless one from the cache; paging stays exact", async () => {
    await fetchPackage(proxy, 'Flat.Only.Lib', '1.0.0');
    await fetchPackage(proxy, 'Flat.Second.Lib', '1.0.0');
    await fetchPackage(proxy, 'Pub.Hidden', '1.0.0'); // unlisted upstream, cached here: the upstream's search is the authority on it
    pub.resetHits();

    const big = await get(`${proxy.url}v3/query?q=lib&take=100`);
    expect(big.status).toBe(200);
    expect(idsOf(big.json()).sort()).toEqual(['Flat.Only.Lib', 'Flat.Second.Lib', 'Pub.Lib', 'Pub.Other.Lib']);
    expect(big.json().totalHits).toBe(4);
    expect(pub.hits('/query')).toBeGreaterThanOrEqual(1);
    expect(idsOf((await get(`${proxy.url}v3/query?q=pub`)).json())).toEqual(['Pub.Lib', 'Pub.Other.Lib']);

    const paged: string[] = [];
    for (let skip = 0; skip < 5; skip++) {
      const page = (await get(`${proxy.url}v3/query?q=lib&skip=${skip}&take=1`)).json();
      expect(page.totalHits).toBe(4);
      paged.push(...idsOf(page));
    }
    expect(paged).toEqual(idsOf(big.json()));

    const ac = (await get(`${proxy.url}v3/autocomplete?q=lib&take=100`)).json();
    expect([...ac.data].sort()).toEqual(['Flat.Only.Lib', 'Flat.Second.Lib', 'Pub.Lib', 'Pub.Other.Lib']);
    expect((await get(`${proxy.url}v3/autocomplete?id=Flat.Only.Lib`)).json().data).toEqual(['1.0.0']);
    expect((await get(`${proxy.url}v3/autocomplete?id=Pub.Lib`)).json().data).toEqual(['1.0.0']);
  });
});
