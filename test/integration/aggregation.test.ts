// Several upstream feeds merged into one (issue #3), over real sockets: version lists, package bytes, registration,
// search/autocomplete, vulnerability info, parallel fan-out, id ownership and include/exclude rules, /explain.
// Upstream failures are in aggregation-failures.test.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { allStrings, get } from '../support/http.js';
import { deferred } from '../support/wait.js';

type Json = any;

const timeouts = { connect: '2s', headers: '5s', body: '5s' };
const upstreamEntry = (name: string, u: TestUpstream, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  serviceIndex: u.serviceIndexUrl,
  retries: 0,
  timeouts,
  ...extra,
});

const HIVES = ['semver2', 'gz-semver1', 'semver1'] as const;

/** Every leaf of a registration index, following page documents that are not inlined. */
async function registrationLeaves(indexUrl: string): Promise<Json[]> {
  const r = await get(indexUrl);
  expect(r.status, `${indexUrl}: ${r.text}`).toBe(200);
  const leaves: Json[] = [];
  for (const page of r.json().items as Json[]) {
    if (Array.isArray(page.items)) {
      leaves.push(...page.items);
      continue;
    }
    const p = await get(page['@id']);
    expect(p.status, `page ${page['@id']}`).toBe(200);
    leaves.push(...p.json().items);
  }
  return leaves;
}

const lowerVersionsOf = (leaves: Json[]): string[] => leaves.map((l) => String(l.catalogEntry.version).toLowerCase());

/** A hand-written V3 feed: exact JSON documents by path (built from its origin), 404 for anything else. */
async function startRawUpstream(docs: (origin: string) => Record<string, unknown>): Promise<{ origin: string; index: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  let byPath: Record<string, unknown> = {};
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    paths.push(path);
    const body = byPath[path.split('?')[0]!];
    const text = JSON.stringify(body ?? { error: 'not found' });
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  byPath = docs(origin);
  return {
    origin,
    index: `${origin}/v3/index.json`,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A flat-container-only feed that lists versions exactly as given (non-normalized, mixed case). */
function startRawFlatUpstream(lists: Record<string, string[]>): ReturnType<typeof startRawUpstream> {
  return startRawUpstream((origin) => ({
    '/v3/index.json': { version: '3.0.0', resources: [{ '@id': `${origin}/flat/`, '@type': 'PackageBaseAddress/3.0.0' }] },
    ...Object.fromEntries(Object.entries(lists).map(([id, versions]) => [`/flat/${id}/index.json`, { versions }])),
  }));
}

describe('two merged upstreams: first (priority 1) and second (priority 2)', () => {
  let first: TestUpstream;
  let second: TestUpstream;
  let proxy: TestProxy;

  const desc = (id: string, up: string): string => `${id} from ${up}`;
  // the same id@version on both upstreams with different bytes (description and padding differ)
  const dupFirst10 = makeNupkg({ id: 'Dup.Lib', version: '1.0', description: desc('Dup.Lib', 'first'), padBytes: 100 });
  const dupSecond10 = makeNupkg({ id: 'Dup.Lib', version: '1.0.0', description: desc('Dup.Lib', 'second'), padBytes: 4096 });
  const dupSecond15 = makeNupkg({ id: 'Dup.Lib', version: '1.5.0', description: desc('Dup.Lib', 'second') });
  const manyFirst = Array.from({ length: 70 }, (_, i) => `1.${i}.0`); // 1.0.0 .. 1.69.0
  const manySecond = Array.from({ length: 80 }, (_, i) => `1.${i + 60}.0`); // 1.60.0 .. 1.139.0 (overlap 1.60-1.69)
  const manyAll = Array.from({ length: 140 }, (_, i) => `1.${i}.0`);

  const vulnFirst = { 'dup.lib': [{ severity: 2, url: 'https://example.test/advisories/first', versions: '[1.0.0, 1.5.0)' }] };
  const vulnSecond = { 'onlyb.lib': [{ severity: 3, url: 'https://example.test/advisories/second', versions: '(, 2.0.0)' }] };

  beforeAll(async () => {
    first = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Dup.Lib', version: '0.9.0', description: desc('Dup.Lib', 'first') }),
        dupFirst10,
        makeNupkg({ id: 'Dup.Lib', version: '2.0.0-Beta', description: desc('Dup.Lib', 'first') }),
        ...manyFirst.map((v) => makeNupkg({ id: 'Many.Lib', version: v, description: desc('Many.Lib', 'first') })),
        makeNupkg({ id: 'Alpha.Lib', version: '1.0.0' }),
        makeNupkg({ id: 'Gamma.Lib', version: '1.0.0' }),
        makeNupkg({ id: 'Shared.Lib', version: '1.0.0', description: desc('Shared.Lib', 'first') }),
        makeNupkg({ id: 'Par.Lib', version: '1.0.0' }),
      ],
      unlisted: ['Dup.Lib@0.9.0'],
      vulnerabilities: vulnFirst,
    });
    second = await startTestUpstream({
      packages: [
        dupSecond10,
        dupSecond15,
        makeNupkg({ id: 'Dup.Lib', version: '2.0.0-beta', description: desc('Dup.Lib', 'second') }),
        makeNupkg({ id: 'Dup.Lib', version: '3.0.0-rc.1', description: desc('Dup.Lib', 'second') }),
        ...manySecond.map((v) => makeNupkg({ id: 'Many.Lib', version: v, description: desc('Many.Lib', 'second') })),
        makeNupkg({ id: 'OnlyB.Lib', version: '1.0.0' }),
        makeNupkg({ id: 'Beta.Lib', version: '1.0.0' }),
        makeNupkg({ id: 'Shared.Lib', version: '1.0.0', description: desc('Shared.Lib', 'second') }),
        makeNupkg({ id: 'Shared.Lib', version: '2.0.0', description: desc('Shared.Lib', 'second') }),
        makeNupkg({ id: 'PreOnly.Lib', version: '1.0.0-alpha' }),
        makeNupkg({ id: 'Par.Lib', version: '2.0.0' }),
      ],
      unlisted: ['Dup.Lib@1.5.0'],
      // the second upstream pages everything (pages of 10, nothing inlined): the proxy must follow its page documents
      inlineThreshold: 0,
      pageSize: 10,
      vulnerabilities: vulnSecond,
    });
    proxy = await startTestProxy({ upstreams: [upstreamEntry('first', first), upstreamEntry('second', second)] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await first?.close();
    await second?.close();
  });

  // Catalog @ids may stay upstream (the client never fetches them); every other URL must be the proxy's.
  const noUpstream = (text: string): void => {
    for (const u of [first, second]) {
      const stripped = text.replaceAll(new RegExp(`${u.origin}/v3/catalog0/[^"]*`, 'g'), '');
      expect(stripped).not.toContain(u.origin);
    }
  };

  describe('version lists', () => {
    it('unions the upstreams, deduplicated, sorted, lowercase normalized', async () => {
      const r = await get(`${proxy.url}v3/flat/Dup.Lib/index.json`);
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ versions: ['0.9.0', '1.0.0', '1.5.0', '2.0.0-beta', '3.0.0-rc.1'] });
      expect(r.headers['x-nuproxy-upstream']).toBe('first, second');
      expect(r.headers['x-nuproxy-partial']).toBeUndefined();
      const many = await get(`${proxy.url}v3/flat/many.lib/index.json`);
      expect(many.json().versions).toEqual(manyAll);
    });

    it('takes a 404 from one upstream as contributing nothing; 404 only when every upstream says 404', async () => {
      const onlyB = await get(`${proxy.url}v3/flat/onlyb.lib/index.json`);
      expect(onlyB.status).toBe(200);
      expect(onlyB.json()).toEqual({ versions: ['1.0.0'] });
      expect(onlyB.headers['x-nuproxy-partial']).toBeUndefined();
      expect(first.hits('/v3-flatcontainer/onlyb.lib/index.json')).toBe(1);
      const none = await get(`${proxy.url}v3/flat/nothere.lib/index.json`);
      expect(none.status).toBe(404);
      expect(first.hits('/v3-flatcontainer/nothere.lib/index.json')).toBe(1);
      expect(second.hits('/v3-flatcontainer/nothere.lib/index.json')).toBe(1);
    });

    it('uses NuGet version equality across upstreams that list non-normalized versions', async () => {
      const raw = await startRawFlatUpstream({ 'mixed.lib': ['1.0', '1.0.0-Beta', '2.0.0.0', '10.0.0', '2.0.0-alpha.10', '2.0.0-Alpha.9'] });
      const other = await startTestUpstream({
        packages: ['1.0.0', '1.0.0-beta', '1.0.0.1', '2.0.0', '2.0.0-alpha.9'].map((v) => makeNupkg({ id: 'Mixed.Lib', version: v })),
      });
      const p = await startTestProxy({ upstreams: [{ name: 'raw', serviceIndex: raw.index, retries: 0, timeouts }, upstreamEntry('other', other)] });
      try {
        const r = await get(`${p.url}v3/flat/mixed.lib/index.json`);
        expect(r.status).toBe(200);
        expect(r.json().versions).toEqual(['1.0.0-beta', '1.0.0', '1.0.0.1', '2.0.0-alpha.9', '2.0.0-alpha.10', '2.0.0', '10.0.0']);
        // the winner of each version is the first upstream (in priority order) that lists it in any spelling
        const ex = (await get(`${p.url}explain/mixed.lib`)).json();
        const servedBy = Object.fromEntries((ex.versions as Json[]).map((v) => [v.version, v.servedBy]));
        expect(servedBy).toEqual({
          '1.0.0-beta': 'raw',
          '1.0.0': 'raw',
          '1.0.0.1': 'other',
          '2.0.0-alpha.9': 'raw',
          '2.0.0-alpha.10': 'raw',
          '2.0.0': 'raw',
          '10.0.0': 'raw',
        });
        // the semver2 registration lists exactly what the flat container lists (leaves synthesized where needed)
        const leaves = await registrationLeaves(`${p.url}v3/registration/semver2/mixed.lib/index.json`);
        expect(lowerVersionsOf(leaves)).toEqual(r.json().versions);
      } finally {
        await p.stop();
        await other.close();
        await raw.close();
      }
    });
  });

  describe('package files', () => {
    it('serves the bytes of the highest-priority upstream that lists the version, fetched and stored once', async () => {
      const url = `${proxy.url}v3/flat/dup.lib/1.0.0/dup.lib.1.0.0.nupkg`;
      const cold = await get(url);
      expect(cold.status).toBe(200);
      expect(cold.body.equals(Buffer.from(dupFirst10))).toBe(true);
      expect(cold.headers['x-nuproxy-upstream']).toBe('first');
      expect(cold.headers['x-nuproxy-cache']).toBe('miss');
      for (const u of [url, `${proxy.url}v3/flat/Dup.Lib/1.0/Dup.Lib.1.0.nupkg`, url]) {
        const warm = await get(u);
        expect(warm.status).toBe(200);
        expect(warm.headers['x-nuproxy-cache']).toMatch(/^(hit|shared)$/); // 'shared': the first download is still being moved into place
        expect(warm.headers['x-nuproxy-upstream']).toBe('first');
        expect(warm.body.equals(Buffer.from(dupFirst10))).toBe(true);
      }
      expect(first.hits('/v3-flatcontainer/dup.lib/1.0.0/dup.lib.1.0.0.nupkg')).toBe(1);
      expect(second.hits(/\/dup\.lib\/1\.0\.0\/dup\.lib\.1\.0\.0\.nupkg$/)).toBe(0);
    });

    it('serves a version only a lower-priority upstream has from that upstream', async () => {
      const r = await get(`${proxy.url}v3/flat/dup.lib/1.5.0/dup.lib.1.5.0.nupkg`);
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.from(dupSecond15))).toBe(true);
      expect(r.headers['x-nuproxy-upstream']).toBe('second');
      const again = await get(`${proxy.url}v3/flat/dup.lib/1.5.0/dup.lib.1.5.0.nupkg`);
      expect(again.headers['x-nuproxy-cache']).toMatch(/^(hit|shared)$/);
      expect(again.headers['x-nuproxy-upstream']).toBe('second');
      expect(first.hits(/dup\.lib\.1\.5\.0\.nupkg$/)).toBe(0);
      expect(second.hits('/v3-flatcontainer/dup.lib/1.5.0/dup.lib.1.5.0.nupkg')).toBe(1);
    });

    it('answers the nuspec from the same winner', async () => {
      const r = await get(`${proxy.url}v3/flat/dup.lib/1.0.0/dup.lib.nuspec`);
      expect(r.status).toBe(200);
      expect(r.text).toContain(desc('Dup.Lib', 'first'));
      expect(r.headers['x-nuproxy-upstream']).toBe('first');
      expect(second.hits(/dup\.lib\/1\.0\.0\/dup\.lib\.nuspec$/)).toBe(0);
    });
  });

  describe('registration', () => {
    const expectedDup: Record<(typeof HIVES)[number], [string, boolean, string][]> = {
      semver2: [
        ['0.9.0', false, 'first'],
        ['1.0.0', true, 'first'],
        ['1.5.0', false, 'second'],
        ['2.0.0-beta', true, 'first'],
        ['3.0.0-rc.1', true, 'second'],
      ],
      'gz-semver1': [
        ['0.9.0', false, 'first'],
        ['1.0.0', true, 'first'],
        ['1.5.0', false, 'second'],
        ['2.0.0-beta', true, 'first'],
      ],
      semver1: [
        ['0.9.0', false, 'first'],
        ['1.0.0', true, 'first'],
        ['1.5.0', false, 'second'],
        ['2.0.0-beta', true, 'first'],
      ],
    };

    for (const hive of HIVES) {
      it(`${hive}: leaves of both upstreams, the winner's leaf per version, one inlined page, every URL on the proxy`, async () => {
        const url = `${proxy.url}v3/registration/${hive}/dup.lib/index.json`;
        const r = await get(url, { 'accept-encoding': 'gzip' });
        expect(r.status).toBe(200);
        expect(r.headers['content-encoding']).toBe(hive === 'semver1' ? undefined : 'gzip');
        const text = hive === 'semver1' ? r.text : gunzipSync(r.body).toString('utf8');
        noUpstream(text);
        const doc = JSON.parse(text);
        expect(doc['@id']).toBe(url);
        expect(doc.count).toBe(1);
        const page = doc.items[0];
        const exp = expectedDup[hive];
        expect(page).toMatchObject({ count: exp.length, parent: url });
        // lower/upper are the normalized versions of the first/last leaf (the original case may be kept: 2.0.0-Beta)
        expect([String(page.lower).toLowerCase(), String(page.upper).toLowerCase()]).toEqual([exp[0]![0], exp[exp.length - 1]![0]]);
        expect(page.upper).toBe(page.items[page.items.length - 1].catalogEntry.version);
        expect(page.lower).toBe(page.items[0].catalogEntry.version);
        expect(page.items).toHaveLength(exp.length);
        const got = (page.items as Json[]).map((l) => [
          String(l.catalogEntry.version).toLowerCase(),
          l.catalogEntry.listed,
          l.catalogEntry.description === desc('Dup.Lib', 'first') ? 'first' : l.catalogEntry.description === desc('Dup.Lib', 'second') ? 'second' : l.catalogEntry.description,
        ]);
        expect(got).toEqual(exp);
        for (const leaf of page.items as Json[]) {
          const v = String(leaf.catalogEntry.version).toLowerCase();
          expect(leaf['@id']).toBe(`${proxy.url}v3/registration/${hive}/dup.lib/${v}.json`);
          expect(leaf.packageContent).toBe(`${proxy.url}v3/flat/dup.lib/${v}/dup.lib.${v}.nupkg`);
          expect(leaf.catalogEntry.packageContent).toBe(leaf.packageContent);
          expect(leaf.registration).toBe(url);
          // unlisted leaves keep the 1900 published date the upstream gave them
          if (leaf.catalogEntry.listed === false) expect(leaf.catalogEntry.published).toMatch(/^1900-01-01/);
          else expect(leaf.catalogEntry.published).toMatch(/^2024-01-01/);
        }
      });
    }

    it('leaf documents come from the winner and stay unlisted when it is unlisted', async () => {
      const unlisted = await get(`${proxy.url}v3/registration/semver2/dup.lib/1.5.0.json`);
      expect(unlisted.status).toBe(200);
      noUpstream(unlisted.text);
      expect(unlisted.json()).toMatchObject({
        listed: false,
        packageContent: `${proxy.url}v3/flat/dup.lib/1.5.0/dup.lib.1.5.0.nupkg`,
        registration: `${proxy.url}v3/registration/semver2/dup.lib/index.json`,
      });
      expect(unlisted.json().published).toMatch(/^1900-01-01/);
      const listed = await get(`${proxy.url}v3/registration/semver2/dup.lib/1.0.0.json`);
      expect(listed.json()).toMatchObject({ listed: true });
      expect((await get(`${proxy.url}v3/registration/semver1/dup.lib/3.0.0-rc.1.json`)).status).toBe(404);
    });

    it('rebuilds more than 127 leaves from two upstreams into separate page documents on the proxy', async () => {
      const url = `${proxy.url}v3/registration/semver2/many.lib/index.json`;
      const r = await get(url);
      expect(r.status).toBe(200);
      noUpstream(r.text);
      const doc = r.json();
      expect(doc.count).toBe(3);
      expect((doc.items as Json[]).map((p) => [p.lower, p.upper, p.count])).toEqual([
        ['1.0.0', '1.63.0', 64],
        ['1.64.0', '1.127.0', 64],
        ['1.128.0', '1.139.0', 12],
      ]);
      const all: Json[] = [];
      for (const p of doc.items as Json[]) {
        expect(p.items).toBeUndefined();
        expect(p['@id']).toBe(`${proxy.url}v3/registration/semver2/many.lib/page/${p.lower}/${p.upper}.json`);
        const page = await get(p['@id']);
        expect(page.status).toBe(200);
        noUpstream(page.text);
        const pd = page.json();
        expect(pd).toMatchObject({ '@id': p['@id'], count: p.count, lower: p.lower, upper: p.upper, parent: url });
        expect(pd.items).toHaveLength(p.count);
        expect(pd.items[0].catalogEntry.version).toBe(p.lower);
        expect(pd.items[pd.items.length - 1].catalogEntry.version).toBe(p.upper);
        all.push(...pd.items);
      }
      expect(lowerVersionsOf(all)).toEqual(manyAll);
      // overlap 1.60-1.69: the first upstream's leaf; above: the second's
      const by = new Map(all.map((l) => [l.catalogEntry.version as string, l]));
      expect(by.get('1.65.0').catalogEntry.description).toBe(desc('Many.Lib', 'first'));
      expect(by.get('1.59.0').catalogEntry.description).toBe(desc('Many.Lib', 'first'));
      expect(by.get('1.70.0').catalogEntry.description).toBe(desc('Many.Lib', 'second'));
      expect(by.get('1.139.0').catalogEntry.description).toBe(desc('Many.Lib', 'second'));
      // a leaf document and the package behind it
      const leaf = await get(by.get('1.100.0')['@id']);
      expect(leaf.status).toBe(200);
      const pkg = await get(leaf.json().packageContent);
      expect(pkg.status).toBe(200);
      expect(pkg.headers['x-nuproxy-upstream']).toBe('second');
      // unknown pages are 404
      expect((await get(`${proxy.url}v3/registration/semver2/many.lib/page/1.0.0/1.62.0.json`)).status).toBe(404);
    });

    it('lists exactly the versions of the flat container (semver2 hive)', async () => {
      for (const id of ['dup.lib', 'many.lib', 'shared.lib', 'onlyb.lib']) {
        const flat = (await get(`${proxy.url}v3/flat/${id}/index.json`)).json().versions;
        const leaves = await registrationLeaves(`${proxy.url}v3/registration/semver2/${id}/index.json`);
        expect(lowerVersionsOf(leaves), id).toEqual(flat);
      }
    });

    it('is 404 for an id no upstream has', async () => {
      for (const hive of HIVES) expect((await get(`${proxy.url}v3/registration/${hive}/nothere.lib/index.json`)).status).toBe(404);
    });
  });

  describe('search and autocomplete', () => {
    const big = 'q=lib&prerelease=true&semVerLevel=2.0.0&take=100';
    const allIds = ['Alpha.Lib', 'Beta.Lib', 'Dup.Lib', 'Gamma.Lib', 'Many.Lib', 'OnlyB.Lib', 'Par.Lib', 'PreOnly.Lib', 'Shared.Lib'];

    it('fans out to every upstream and merges hits by id: the winner entry, versions unioned, downloads summed', async () => {
      const r = await get(`${proxy.url}v3/query?${big}`);
      expect(r.status).toBe(200);
      noUpstream(r.text);
      expect(first.requests.some((x) => x.path.startsWith('/query?'))).toBe(true);
      expect(second.requests.some((x) => x.path.startsWith('/query?'))).toBe(true);
      const doc = r.json();
      const ids = (doc.data as Json[]).map((d) => d.id as string);
      expect([...ids].sort()).toEqual(allIds);
      expect(doc.totalHits).toBe(allIds.length);
      const dup = (doc.data as Json[]).find((d) => d.id === 'Dup.Lib');
      expect(dup.description).toBe(desc('Dup.Lib', 'first'));
      // first: 1.0.0, 2.0.0-Beta (0.9.0 unlisted); second: 1.0.0, 2.0.0-beta, 3.0.0-rc.1 (1.5.0 unlisted)
      expect((dup.versions as Json[]).map((v) => String(v.version).toLowerCase())).toEqual(['1.0.0', '2.0.0-beta', '3.0.0-rc.1']);
      expect((dup.versions as Json[]).map((v) => v.downloads)).toEqual([2000, 2000, 1000]);
      expect(dup.totalDownloads).toBe(5000);
      expect(dup.version).toBe('3.0.0-rc.1');
      expect(dup.registration).toBe(`${proxy.url}v3/registration/semver2/dup.lib/index.json`);
      for (const v of dup.versions as Json[]) expect(v['@id']).toMatch(new RegExp(`^${proxy.url}v3/registration/semver2/dup\\.lib/`));
      const shared = (doc.data as Json[]).find((d) => d.id === 'Shared.Lib');
      expect(shared.description).toBe(desc('Shared.Lib', 'first'));
      expect((shared.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0', '2.0.0']);
      expect(shared.totalDownloads).toBe(3000);
    });

    it('pages with skip/take over the merged list: every id exactly once, the same order as one big page', async () => {
      const bigIds = ((await get(`${proxy.url}v3/query?${big}`)).json().data as Json[]).map((d) => d.id);
      const paged: string[] = [];
      for (let skip = 0; skip < 50; skip += 2) {
        const r = await get(`${proxy.url}v3/query?q=lib&prerelease=true&semVerLevel=2.0.0&skip=${skip}&take=2`);
        expect(r.status).toBe(200);
        const doc = r.json();
        expect(doc.data.length).toBeLessThanOrEqual(2);
        if (doc.data.length === 0) break;
        expect(doc.totalHits).toBeGreaterThanOrEqual(skip + doc.data.length);
        paged.push(...(doc.data as Json[]).map((d) => d.id as string));
      }
      expect(paged).toEqual(bigIds);
      expect(new Set(paged.map((id) => id.toLowerCase())).size).toBe(paged.length);
    });

    it('honours prerelease and semVerLevel', async () => {
      const stable = (await get(`${proxy.url}v3/query?q=lib&take=100`)).json();
      const stableIds = (stable.data as Json[]).map((d) => d.id);
      expect(stableIds).not.toContain('PreOnly.Lib');
      expect(stable.totalHits).toBe(allIds.length - 1);
      const dupStable = (stable.data as Json[]).find((d) => d.id === 'Dup.Lib');
      expect((dupStable.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0']);
      expect(dupStable.totalDownloads).toBe(2000);

      const pre = (await get(`${proxy.url}v3/query?q=lib&prerelease=true&take=100`)).json();
      expect((pre.data as Json[]).map((d) => d.id)).toContain('PreOnly.Lib');
      const dupPre = (pre.data as Json[]).find((d) => d.id === 'Dup.Lib');
      expect((dupPre.versions as Json[]).map((v) => String(v.version).toLowerCase())).toEqual(['1.0.0', '2.0.0-beta']);
      expect(dupPre.registration).toBe(`${proxy.url}v3/registration/semver1/dup.lib/index.json`);
      expect(JSON.stringify(pre)).not.toContain('3.0.0-rc.1');
    });

    it('merges autocomplete ids, and unions the versions of one id', async () => {
      const ids = (await get(`${proxy.url}v3/autocomplete?q=lib&prerelease=true&take=100`)).json();
      expect([...(ids.data as string[])].sort()).toEqual(allIds);
      expect(ids.totalHits).toBe(allIds.length);
      const paged: string[] = [];
      for (let skip = 0; skip < 50; skip += 2) {
        const page = (await get(`${proxy.url}v3/autocomplete?q=lib&prerelease=true&skip=${skip}&take=2`)).json();
        if (page.data.length === 0) break;
        paged.push(...page.data);
      }
      expect(paged).toEqual(ids.data);

      const vers = await get(`${proxy.url}v3/autocomplete?id=Dup.Lib&prerelease=true&semVerLevel=2.0.0`);
      expect(vers.status).toBe(200);
      expect((vers.json().data as string[]).map((v) => v.toLowerCase())).toEqual(['1.0.0', '2.0.0-beta', '3.0.0-rc.1']);
      const stableVers = await get(`${proxy.url}v3/autocomplete?id=shared.lib`);
      expect(stableVers.json().data).toEqual(['1.0.0', '2.0.0']);
    });
  });

  describe('vulnerability info', () => {
    it('combines the indexes with per-upstream prefixed names, each page fetchable through the proxy', async () => {
      const idx = await get(`${proxy.url}v3/index.json`);
      const types = (idx.json().resources as Json[]).map((r) => r['@type']);
      expect(types).toContain('VulnerabilityInfo/6.7.0');

      const r = await get(`${proxy.url}v3/vulnerabilities/index.json`);
      expect(r.status).toBe(200);
      noUpstream(r.text);
      const entries = r.json() as Json[];
      expect(entries.map((e) => e['@name']).sort()).toEqual(['first-base', 'second-base']);
      const expected: Record<string, unknown> = { 'first-base': vulnFirst, 'second-base': vulnSecond };
      for (const e of entries) {
        expect(e['@id']).toMatch(new RegExp(`^${proxy.url}v3/vulnerabilities/${e['@name']}/[0-9a-f]{16}\\.json$`));
        const page = await get(e['@id']);
        expect(page.status, e['@id']).toBe(200);
        expect(page.json()).toEqual(expected[e['@name']]);
      }
    });
  });

  describe('fan-out', () => {
    it('asks the upstreams in parallel: a cold merged version list costs the slowest upstream, not the sum', async () => {
      // neither upstream answers before both have been asked: asking one after the other would wait for the
      // first until its timeout, and the answer would be partial (or fail) instead of whole
      const bothAsked = deferred();
      let asked = 0;
      const hold = { kind: 'hold' as const, until: bothAsked.promise, arrived: () => void (++asked === 2 && bothAsked.resolve()) };
      first.setFault('/v3-flatcontainer/par.lib/index.json', hold);
      second.setFault('/v3-flatcontainer/par.lib/index.json', hold);
      try {
        const r = await get(`${proxy.url}v3/flat/par.lib/index.json`);
        expect(asked).toBe(2);
        expect(r.status).toBe(200);
        expect(r.headers['x-nuproxy-partial']).toBeUndefined();
        expect(r.headers['x-nuproxy-upstream']).toBe('first, second');
        expect(r.json()).toEqual({ versions: ['1.0.0', '2.0.0'] });
      } finally {
        first.setFault('/v3-flatcontainer/par.lib/index.json', undefined);
        second.setFault('/v3-flatcontainer/par.lib/index.json', undefined);
      }
    });
  });

  describe('publishing on an upstream', () => {
    it('serves a version published after the merged list was cached (one revalidation, not a 404)', async () => {
      expect((await get(`${proxy.url}v3/flat/shared.lib/index.json`)).json()).toEqual({ versions: ['1.0.0', '2.0.0'] });
      const bytes = makeNupkg({ id: 'Shared.Lib', version: '3.0.0', description: desc('Shared.Lib', 'second') });
      second.addPackage(bytes);
      const r = await get(`${proxy.url}v3/flat/shared.lib/3.0.0/shared.lib.3.0.0.nupkg`);
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.from(bytes))).toBe(true);
      expect(r.headers['x-nuproxy-upstream']).toBe('second');
      expect((await get(`${proxy.url}v3/flat/shared.lib/index.json`)).json()).toEqual({ versions: ['1.0.0', '2.0.0', '3.0.0'] });
    });

    it('serves a brand-new id published after every upstream answered 404 for it (one revalidation, not a 404)', async () => {
      expect((await get(`${proxy.url}v3/flat/brand.new/index.json`)).status).toBe(404);
      const bytes = makeNupkg({ id: 'Brand.New', version: '1.0.0' });
      second.addPackage(bytes);
      const r = await get(`${proxy.url}v3/flat/brand.new/1.0.0/brand.new.1.0.0.nupkg`);
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.from(bytes))).toBe(true);
      expect(r.headers['x-nuproxy-upstream']).toBe('second');
    });
  });

  describe('explain', () => {
    it('says what each upstream lists and which upstream serves each version', async () => {
      const r = await get(`${proxy.url}explain/Dup.Lib`);
      expect(r.status).toBe(200);
      const ex = r.json();
      expect(ex).toMatchObject({ id: 'dup.lib', owner: null });
      expect(ex.rules).toEqual([
        { upstream: 'first', allowed: true, reason: 'allowed' },
        { upstream: 'second', allowed: true, reason: 'allowed' },
      ]);
      expect(ex.upstreams).toMatchObject([
        { name: 'first', allowed: true, status: 'listed', versions: ['0.9.0', '1.0.0', '2.0.0-beta'] },
        { name: 'second', allowed: true, status: 'listed', versions: ['1.0.0', '1.5.0', '2.0.0-beta', '3.0.0-rc.1'] },
      ]);
      expect(ex.versions).toEqual([
        { version: '0.9.0', servedBy: 'first' },
        { version: '1.0.0', servedBy: 'first' },
        { version: '1.5.0', servedBy: 'second' },
        { version: '2.0.0-beta', servedBy: 'first' },
        { version: '3.0.0-rc.1', servedBy: 'second' },
      ]);
      const onlyB = (await get(`${proxy.url}explain/onlyb.lib`)).json();
      expect(onlyB.upstreams).toMatchObject([
        { name: 'first', status: 'not found' },
        { name: 'second', status: 'listed', versions: ['1.0.0'] },
      ]);
      expect(onlyB.versions).toEqual([{ version: '1.0.0', servedBy: 'second' }]);
    });
  });
});

describe('search paging across upstreams whose rankings differ', () => {
  let p: TestUpstream;
  let q: TestUpstream;
  let pub: TestUpstream;
  let company: TestUpstream;
  let merged: TestProxy;
  let owned: TestProxy;

  beforeAll(async () => {
    // p ranks Dup.Lib 1st; q ranks it 6th (five ids sort before it)
    p = await startTestUpstream({
      packages: [makeNupkg({ id: 'Dup.Lib', version: '1.0.0' }), makeNupkg({ id: 'Pa.One', version: '1.0.0' }), makeNupkg({ id: 'Pa.Two', version: '1.0.0' })],
    });
    q = await startTestUpstream({
      packages: [...[1, 2, 3, 4, 5].map((i) => makeNupkg({ id: `Aa${i}.Lib`, version: '1.0.0' })), makeNupkg({ id: 'Dup.Lib', version: '2.0.0' })],
    });
    merged = await startTestProxy({ upstreams: [upstreamEntry('p', p), upstreamEntry('q', q)] });
    // the public feed's best hits for "contoso" are squats on the company's prefix: all dropped by the id rules
    pub = await startTestUpstream({
      packages: ['Contoso.Alpha', 'Contoso.Beta', 'Contoso.Secret', 'ContosoFans.One', 'ContosoFans.Two'].map((id) => makeNupkg({ id, version: '9.9.9' })),
    });
    company = await startTestUpstream({
      packages: ['Contoso.Other', 'Contoso.Secret'].map((id) => makeNupkg({ id, version: '1.0.0' })),
    });
    owned = await startTestProxy({ upstreams: [upstreamEntry('public', pub), upstreamEntry('company', company, { owns: ['Contoso.*'] })] });
  });
  afterAll(async () => {
    await merged?.stop();
    await owned?.stop();
    for (const u of [p, q, pub, company]) await u?.close();
  });

  async function pageThrough(proxyUrl: string, endpoint: 'query' | 'autocomplete', query: string): Promise<unknown[]> {
    const out: unknown[] = [];
    for (let skip = 0; skip < 40; skip += 2) {
      const r = await get(`${proxyUrl}v3/${endpoint}?${query}&skip=${skip}&take=2`);
      expect(r.status).toBe(200);
      const data = r.json().data as unknown[];
      if (data.length === 0) break;
      out.push(...data);
    }
    return out;
  }

  it('returns every id exactly once when a public feed\'s top hits are dropped by the id rules', async () => {
    const big = (await get(`${owned.url}v3/query?q=contoso&take=100`)).json();
    const bigIds = (big.data as Json[]).map((d) => d.id);
    expect([...bigIds].sort()).toEqual(['Contoso.Other', 'Contoso.Secret', 'ContosoFans.One', 'ContosoFans.Two']);
    expect(big.totalHits).toBe(4);
    const paged = ((await pageThrough(owned.url, 'query', 'q=contoso')) as Json[]).map((d) => d.id);
    expect(paged).toEqual(bigIds);

    const bigAc = (await get(`${owned.url}v3/autocomplete?q=contoso&take=100`)).json().data;
    expect([...bigAc].sort()).toEqual(['Contoso.Other', 'Contoso.Secret', 'ContosoFans.One', 'ContosoFans.Two']);
    expect(await pageThrough(owned.url, 'autocomplete', 'q=contoso')).toEqual(bigAc);
  });

  it('pages carry the same merged entries (versions unioned, downloads summed) as one big page', async () => {
    const big = (await get(`${merged.url}v3/query?q=&take=100`)).json();
    const dup = (big.data as Json[]).find((d) => d.id === 'Dup.Lib');
    expect((dup.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0', '2.0.0']);
    expect(dup.totalDownloads).toBe(2000);
    const paged = (await pageThrough(merged.url, 'query', 'q=')) as Json[];
    expect(paged.map((d) => d.id)).toEqual((big.data as Json[]).map((d) => d.id));
    const pagedDup = paged.find((d) => d.id === 'Dup.Lib');
    expect((pagedDup.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0', '2.0.0']);
    expect(pagedDup.totalDownloads).toBe(2000);
    expect(paged).toEqual(big.data);
  });
});

describe('deprecation and vulnerability data in merged registration', () => {
  // A hand-written feed whose registration carries deprecation and vulnerabilities (the test upstream has none).
  const annotatedDocs = (origin: string): Record<string, unknown> => {
    const hive = `${origin}/reg/`;
    const leaf = (v: string, extra: Record<string, unknown>): Record<string, unknown> => ({
      '@id': `${hive}dep.lib/${v}.json`,
      '@type': 'Package',
      catalogEntry: {
        '@id': `${origin}/catalog/dep.lib.${v}.json`,
        '@type': 'PackageDetails',
        id: 'Dep.Lib',
        version: v,
        description: 'Dep.Lib from annotated',
        listed: true,
        published: '2023-05-05T00:00:00+00:00',
        packageContent: `${origin}/flat/dep.lib/${v}/dep.lib.${v}.nupkg`,
        ...extra,
      },
      packageContent: `${origin}/flat/dep.lib/${v}/dep.lib.${v}.nupkg`,
      registration: `${hive}dep.lib/index.json`,
    });
    return {
      '/v3/index.json': {
        version: '3.0.0',
        resources: [
          { '@id': `${origin}/flat/`, '@type': 'PackageBaseAddress/3.0.0' },
          { '@id': hive, '@type': 'RegistrationsBaseUrl/3.6.0' },
        ],
      },
      '/flat/dep.lib/index.json': { versions: ['1.0.0', '2.0.0'] },
      '/reg/dep.lib/index.json': {
        '@id': `${hive}dep.lib/index.json`,
        count: 1,
        items: [
          {
            '@id': `${hive}dep.lib/index.json#page/1.0.0/2.0.0`,
            count: 2,
            lower: '1.0.0',
            upper: '2.0.0',
            items: [
              leaf('1.0.0', {
                deprecation: {
                  '@id': `${origin}/catalog/dep.lib.1.0.0.json#deprecation`,
                  reasons: ['Legacy', 'CriticalBugs'],
                  message: 'Use New.Lib',
                  alternatePackage: { '@id': `${origin}/catalog/dep.lib.1.0.0.json#deprecation/alternatePackage`, id: 'New.Lib', range: '[2.0.0, )' },
                },
                vulnerabilities: [{ '@id': `${origin}/catalog/dep.lib.1.0.0.json#vulnerability/GHSA-1`, advisoryUrl: 'https://example.test/GHSA-1', severity: '2' }],
              }),
              leaf('2.0.0', {}),
            ],
          },
        ],
      },
    };
  };

  it("keeps the winning upstream's deprecation and vulnerabilities, and never mixes in a losing upstream's", async () => {
    const annotated = await startRawUpstream(annotatedDocs);
    const plain = await startTestUpstream({
      packages: ['1.0.0', '3.0.0'].map((v) => makeNupkg({ id: 'Dep.Lib', version: v, description: 'Dep.Lib from plain' })),
    });
    const annotatedFirst = await startTestProxy({ upstreams: [{ name: 'annotated', serviceIndex: annotated.index, retries: 0, timeouts }, upstreamEntry('plain', plain)] });
    const plainFirst = await startTestProxy({ upstreams: [upstreamEntry('plain', plain), { name: 'annotated', serviceIndex: annotated.index, retries: 0, timeouts }] });
    try {
      for (const hive of HIVES) {
        const leaves = await registrationLeaves(`${annotatedFirst.url}v3/registration/${hive}/dep.lib/index.json`);
        expect(lowerVersionsOf(leaves), hive).toEqual(['1.0.0', '2.0.0', '3.0.0']);
        const [v1, v2, v3] = leaves.map((l) => l.catalogEntry);
        expect(v1.description).toBe('Dep.Lib from annotated');
        expect(v1.deprecation).toMatchObject({ reasons: ['Legacy', 'CriticalBugs'], message: 'Use New.Lib', alternatePackage: { id: 'New.Lib', range: '[2.0.0, )' } });
        expect(v1.vulnerabilities).toMatchObject([{ advisoryUrl: 'https://example.test/GHSA-1', severity: '2' }]);
        expect(v1.published).toBe('2023-05-05T00:00:00+00:00');
        expect(v2.deprecation).toBeUndefined();
        expect(v3.description).toBe('Dep.Lib from plain');
        expect(leaves[0].packageContent).toBe(`${annotatedFirst.url}v3/flat/dep.lib/1.0.0/dep.lib.1.0.0.nupkg`);
        expect(JSON.stringify(leaves)).not.toContain(`${annotated.origin}/flat/`);
      }
      const swapped = await registrationLeaves(`${plainFirst.url}v3/registration/semver2/dep.lib/index.json`);
      expect(lowerVersionsOf(swapped)).toEqual(['1.0.0', '2.0.0', '3.0.0']);
      expect(swapped[0].catalogEntry.description).toBe('Dep.Lib from plain');
      expect(swapped[0].catalogEntry.deprecation).toBeUndefined();
      expect(swapped[0].catalogEntry.vulnerabilities).toBeUndefined();
      expect(swapped[1].catalogEntry.description).toBe('Dep.Lib from annotated');
    } finally {
      await annotatedFirst.stop();
      await plainFirst.stop();
      await plain.close();
      await annotated.close();
    }
  });
});

describe('id ownership (dependency confusion) and include/exclude rules', () => {
  let pub: TestUpstream;
  let company: TestUpstream;
  let vendor: TestUpstream;
  let proxy: TestProxy;

  const companySecret = makeNupkg({ id: 'Contoso.Secret', version: '1.0.0', description: 'the real Contoso.Secret' });
  const evilSecret100 = makeNupkg({ id: 'Contoso.Secret', version: '1.0.0', description: 'EVIL public Contoso.Secret', padBytes: 512 });

  beforeAll(async () => {
    pub = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Contoso.Secret', version: '9.9.9', description: 'EVIL public Contoso.Secret' }),
        evilSecret100,
        makeNupkg({ id: 'Other.Lib', version: '1.0.0', description: 'Other.Lib from public' }),
        makeNupkg({ id: 'Vendor.Tools', version: '2.0.0', description: 'Vendor.Tools from public' }),
        // a squat on the company's prefix for an id the company does not have at all
        makeNupkg({ id: 'Contoso.Ghost', version: '1.0.0', description: 'EVIL public Contoso.Ghost' }),
      ],
    });
    company = await startTestUpstream({
      packages: [companySecret, makeNupkg({ id: 'Contoso.Other', version: '2.0.0' })],
    });
    vendor = await startTestUpstream({
      packages: [makeNupkg({ id: 'Vendor.Tools', version: '1.0.0', description: 'Vendor.Tools from vendor' }), makeNupkg({ id: 'Other.Lib', version: '5.0.0' })],
    });
    proxy = await startTestProxy({
      upstreams: [
        upstreamEntry('public', pub, { exclude: ['Vendor.Tools'] }),
        upstreamEntry('company', company, { owns: ['Contoso.*'] }),
        upstreamEntry('vendor', vendor, { include: ['Vendor.*'] }),
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await pub?.close();
    await company?.close();
    await vendor?.close();
  });

  /** Requests about an id (flat, registration, package, autocomplete id=); search queries go to every upstream. */
  const askedAbout = (u: TestUpstream, id: RegExp): number => u.requests.filter((r) => id.test(r.path) && !r.path.startsWith('/query?')).length;
  // The public feed must never be asked about an id the company owns.
  const publicAskedAboutSecret = (): number => askedAbout(pub, /contoso\.secret/i);

  it('version list: only the owner, whatever the public feed publishes at a higher priority', async () => {
    const r = await get(`${proxy.url}v3/flat/Contoso.Secret/index.json`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ versions: ['1.0.0'] });
    expect(r.headers['x-nuproxy-upstream']).toBe('company');
    expect(publicAskedAboutSecret()).toBe(0);
  });

  it('registration (every hive): only the owner', async () => {
    for (const hive of HIVES) {
      const leaves = await registrationLeaves(`${proxy.url}v3/registration/${hive}/contoso.secret/index.json`);
      expect(lowerVersionsOf(leaves), hive).toEqual(['1.0.0']);
      expect(leaves[0].catalogEntry.description).toBe('the real Contoso.Secret');
      expect(allStrings(leaves).join('\n')).not.toContain('9.9.9');
      expect((await get(`${proxy.url}v3/registration/${hive}/contoso.secret/9.9.9.json`)).status).toBe(404);
    }
    expect(publicAskedAboutSecret()).toBe(0);
  });

  it("package: the public 9.9.9 is 404 and never requested; 1.0.0 is the owner's bytes", async () => {
    for (const path of ['contoso.secret/9.9.9/contoso.secret.9.9.9.nupkg', 'Contoso.Secret/9.9.9/Contoso.Secret.9.9.9.nupkg', 'contoso.secret/9.9.9/contoso.secret.nuspec']) {
      expect((await get(`${proxy.url}v3/flat/${path}`)).status, path).toBe(404);
    }
    const good = await get(`${proxy.url}v3/flat/contoso.secret/1.0.0/contoso.secret.1.0.0.nupkg`);
    expect(good.status).toBe(200);
    expect(good.body.equals(Buffer.from(companySecret))).toBe(true);
    expect(good.body.equals(Buffer.from(evilSecret100))).toBe(false);
    expect(good.headers['x-nuproxy-upstream']).toBe('company');
    expect(pub.hits(/9\.9\.9/)).toBe(0);
    expect(publicAskedAboutSecret()).toBe(0);
  });

  it('search: the owned id only with the owner entry and versions', async () => {
    const search = async (q: string): Promise<Json[]> => {
      const r = await get(`${proxy.url}v3/query?${q}`);
      expect(r.status, q).toBe(200);
      expect(r.text, q).not.toContain('9.9.9');
      expect(r.text, q).not.toContain('EVIL');
      return r.json().data as Json[];
    };
    for (const q of ['q=contoso&prerelease=true&semVerLevel=2.0.0', 'q=secret']) {
      const hit = (await search(q)).find((d) => d.id === 'Contoso.Secret');
      expect(hit, q).toBeDefined();
      expect(hit).toMatchObject({ version: '1.0.0', description: 'the real Contoso.Secret', totalDownloads: 1000 });
      expect((hit!.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0']);
    }
    // page by page: the public squats (Contoso.Ghost, its Contoso.Secret) take no place on any page
    const all = (await search('q=contoso')).map((d) => d.id);
    expect([...all].sort()).toEqual(['Contoso.Other', 'Contoso.Secret']);
    expect((await search('q=contoso&skip=0&take=1')).map((d) => d.id)).toEqual([all[0]]);
    expect((await search('q=contoso&skip=1&take=1')).map((d) => d.id)).toEqual([all[1]]);
    // totalHits: public 1 (dropped: owned by company) + company 2 (Contoso.Other, Contoso.Secret)
    expect((await get(`${proxy.url}v3/query?q=contoso`)).json().totalHits).toBe(2);
    // the public feed was searched (search fans out to everyone), but its Contoso.Secret hit was dropped
    expect(pub.hits('/query')).toBeGreaterThan(0);
  });

  it('autocomplete: the owned id once; its versions only from the owner', async () => {
    const ids = (await get(`${proxy.url}v3/autocomplete?q=contoso&prerelease=true`)).json();
    expect((ids.data as string[]).filter((d) => d.toLowerCase() === 'contoso.secret')).toEqual(['Contoso.Secret']);
    const vers = await get(`${proxy.url}v3/autocomplete?id=Contoso.Secret&prerelease=true&semVerLevel=2.0.0`);
    expect(vers.status).toBe(200);
    expect(vers.json().data).toEqual(['1.0.0']);
    expect(publicAskedAboutSecret()).toBe(0);
  });

  it("autocomplete versions asked nuget.org's other way (id= with an empty q=) are routed by the id rules too", async () => {
    // nuget.org answers versions when `id` is given and `q` is absent OR EMPTY (ASP.NET binds an empty value as
    // absent; see isAutocompleteVersionsQuery in src/protocol/search-merge.ts), so this is a versions query too.
    const r = await get(`${proxy.url}v3/autocomplete?id=Contoso.Secret&q=&prerelease=true&semVerLevel=2.0.0`);
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('9.9.9');
    // (the test upstream itself answers `q=` with ids, unlike nuget.org, so only the routing is asserted here)
    expect((r.json().data as string[]).every((v) => v === '1.0.0')).toBe(true);
    expect(askedAbout(company, /autocomplete\?id=Contoso\.Secret&q=&/)).toBe(1);
    expect(publicAskedAboutSecret()).toBe(0);
  });

  it('an owned id the owner does not have is absent everywhere, even though the public feed has it', async () => {
    for (const p of [
      'v3/flat/contoso.ghost/index.json',
      'v3/flat/contoso.ghost/1.0.0/contoso.ghost.1.0.0.nupkg',
      'v3/registration/semver2/contoso.ghost/index.json',
      'v3/registration/semver1/contoso.ghost/index.json',
    ]) {
      expect((await get(`${proxy.url}${p}`)).status, p).toBe(404);
    }
    const search = await get(`${proxy.url}v3/query?q=ghost`);
    expect(search.status).toBe(200);
    expect(search.json()).toMatchObject({ totalHits: 0, data: [] });
    expect((await get(`${proxy.url}v3/autocomplete?q=ghost`)).json().data).toEqual([]);
    const vers = await get(`${proxy.url}v3/autocomplete?id=Contoso.Ghost`);
    expect(vers.status === 404 || (vers.status === 200 && vers.json().data.length === 0), vers.text).toBe(true);
    expect(askedAbout(pub, /contoso\.ghost/i)).toBe(0);
  });

  it('include: an upstream is never asked about ids outside its include list', async () => {
    const flat = await get(`${proxy.url}v3/flat/other.lib/index.json`);
    expect(flat.json()).toEqual({ versions: ['1.0.0'] });
    expect(lowerVersionsOf(await registrationLeaves(`${proxy.url}v3/registration/semver2/other.lib/index.json`))).toEqual(['1.0.0']);
    expect((await get(`${proxy.url}v3/flat/other.lib/5.0.0/other.lib.5.0.0.nupkg`)).status).toBe(404);
    expect((await get(`${proxy.url}v3/autocomplete?id=other.lib`)).json().data).toEqual(['1.0.0']);
    const search = (await get(`${proxy.url}v3/query?q=other.lib`)).json();
    const hit = (search.data as Json[]).find((d) => d.id === 'Other.Lib');
    expect((hit.versions as Json[]).map((v) => v.version)).toEqual(['1.0.0']);
    expect(askedAbout(vendor, /other\.lib/i)).toBe(0);
  });

  it('exclude: an upstream is never asked about an excluded id', async () => {
    const flat = await get(`${proxy.url}v3/flat/vendor.tools/index.json`);
    expect(flat.json()).toEqual({ versions: ['1.0.0'] });
    expect(flat.headers['x-nuproxy-upstream']).toBe('vendor');
    const leaves = await registrationLeaves(`${proxy.url}v3/registration/semver2/vendor.tools/index.json`);
    expect(lowerVersionsOf(leaves)).toEqual(['1.0.0']);
    expect(leaves[0].catalogEntry.description).toBe('Vendor.Tools from vendor');
    expect((await get(`${proxy.url}v3/flat/vendor.tools/2.0.0/vendor.tools.2.0.0.nupkg`)).status).toBe(404);
    expect((await get(`${proxy.url}v3/autocomplete?id=Vendor.Tools`)).json().data).toEqual(['1.0.0']);
    expect(askedAbout(pub, /vendor\.tools/i)).toBe(0);
  });

  it('explain: the owner, each rule decision, and who serves each version', async () => {
    const ex = (await get(`${proxy.url}explain/contoso.secret`)).json();
    expect(ex).toMatchObject({ id: 'contoso.secret', owner: 'company', ownerPattern: 'Contoso.*' });
    expect(ex.rules).toMatchObject([
      { upstream: 'public', allowed: false },
      { upstream: 'company', allowed: true },
      { upstream: 'vendor', allowed: false },
    ]);
    expect(ex.rules[0].reason).toMatch(/owned by company/);
    expect(ex.upstreams).toMatchObject([
      { name: 'public', allowed: false, status: 'not asked' },
      { name: 'company', allowed: true, status: 'listed', versions: ['1.0.0'] },
      { name: 'vendor', allowed: false, status: 'not asked' },
    ]);
    expect(ex.upstreams[0].versions).toBeUndefined();
    expect(ex.versions).toEqual([{ version: '1.0.0', servedBy: 'company' }]);

    const other = (await get(`${proxy.url}explain/Other.Lib`)).json();
    expect(other.owner).toBeNull();
    expect(other.rules[2]).toMatchObject({ upstream: 'vendor', allowed: false });
    expect(other.rules[2].reason).toMatch(/not included/);
    expect(other.upstreams).toMatchObject([
      { name: 'public', status: 'listed', versions: ['1.0.0'] },
      { name: 'company', status: 'not found' },
      { name: 'vendor', status: 'not asked' },
    ]);
    expect(other.versions).toEqual([{ version: '1.0.0', servedBy: 'public' }]);

    const tools = (await get(`${proxy.url}explain/vendor.tools`)).json();
    expect(tools.rules[0]).toMatchObject({ upstream: 'public', allowed: false });
    expect(tools.rules[0].reason).toMatch(/excluded/);
    expect(tools.versions).toEqual([{ version: '1.0.0', servedBy: 'vendor' }]);
    expect(askedAbout(vendor, /other\.lib/i)).toBe(0);
    expect(askedAbout(pub, /vendor\.tools|contoso\.secret/i)).toBe(0);
  });
});
