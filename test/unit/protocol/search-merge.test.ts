import { describe, expect, it } from 'vitest';
import {
  isAutocompleteVersionsQuery,
  mergeAutocompleteIds,
  mergeAutocompleteVersions,
  mergeSearch,
  upstreamAutocompleteQuery,
  upstreamSearchQuery,
  type UpstreamSearch,
} from '../../../src/protocol/search-merge.js';
import { rewriteSearch } from '../../../src/protocol/search.js';
import { IdRouter } from '../../../src/protocol/id-rules.js';
import { BASE } from '../../../src/protocol/urls.js';
import { captured } from './captured.js';

type Json = Record<string, any>;

const ALL = () => true;

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    Object.values(v).forEach(deepFreeze);
    Object.freeze(v);
  }
  return v;
}

/** A rewritten-looking search hit. */
function hit(id: string, versions: [string, number][], extra: Json = {}): Json {
  const lid = id.toLowerCase();
  return {
    '@id': `${BASE}v3/registration/semver2/${lid}/index.json`,
    '@type': 'Package',
    registration: `${BASE}v3/registration/semver2/${lid}/index.json`,
    id,
    version: versions.at(-1)?.[0] ?? '1.0.0',
    description: `${id} description`,
    totalDownloads: versions.reduce((a, [, d]) => a + d, 0),
    versions: versions.map(([version, downloads]) => ({
      version,
      downloads,
      '@id': `${BASE}v3/registration/semver2/${lid}/${version.toLowerCase()}.json`,
    })),
    ...extra,
  };
}

const answer = (upstream: string, data: unknown[], totalHits: number = data.length, extra: Json = {}): UpstreamSearch => ({
  upstream,
  doc: { totalHits, data, ...extra },
});

describe('upstreamSearchQuery', () => {
  it.each([
    // raw query, upstream query, skip, take
    [
      'q=a%20b&skip=10&take=5&prerelease=true&semVerLevel=2.0.0&packageType=Dependency',
      'q=a%20b&skip=0&take=15&prerelease=true&semVerLevel=2.0.0&packageType=Dependency',
      10,
      5,
    ],
    [
      'q=a%20b&prerelease=true&semVerLevel=2.0.0&packageType=Dependency',
      'q=a%20b&prerelease=true&semVerLevel=2.0.0&packageType=Dependency&skip=0&take=20',
      0,
      20,
    ],
    ['', 'skip=0&take=20', 0, 20],
    ['?q=x&take=30', '?q=x&take=30&skip=0', 0, 30],
    ['q=x&skip=-1&take=abc', 'q=x&skip=0&take=20', 0, 20],
    ['q=x&skip=1.5&take=', 'q=x&skip=0&take=20', 0, 20],
    ['take=5000', 'take=1000&skip=0', 0, 1000],
    ['skip=5000&take=10', 'skip=0&take=1000', 3000, 10],
    ['skip=990&take=20', 'skip=0&take=1000', 990, 20],
    ['skip=40&take=0', 'skip=0&take=40', 40, 0],
    ['Skip=5&TAKE=5&q=x', 'skip=0&take=10&q=x', 5, 5],
    ['skip=1&take=3&skip=2&take=9', 'skip=0&take=4', 1, 3],
    ['q=take%3D5&skip=2', 'q=take%3D5&skip=0&take=22', 2, 20],
    ['q=%E4%B8%AD+x&supportedFramework=net8.0&supportedFramework=net472&skip=%32&take=26', 'q=%E4%B8%AD+x&supportedFramework=net8.0&supportedFramework=net472&skip=0&take=28', 2, 26],
    ['q=100%&skip=1&&debug', 'q=100%&skip=0&&debug&take=21', 1, 20],
  ] as const)('%j -> %j', (raw, want, skip, take) => {
    expect(upstreamSearchQuery(raw)).toEqual({ rawQuery: want, skip, take });
  });
});

describe('upstreamAutocompleteQuery', () => {
  it.each([
    ['q=newt&skip=5&take=10&prerelease=true&semVerLevel=2.0.0', 'q=newt&skip=0&take=15&prerelease=true&semVerLevel=2.0.0', false],
    ['q=newt&prerelease=false', 'q=newt&prerelease=false&skip=0&take=20', false],
    ['id=Newtonsoft.Json&prerelease=true&semVerLevel=2.0.0', 'id=Newtonsoft.Json&prerelease=true&semVerLevel=2.0.0', true],
    ['id=Newtonsoft.Json&q=&skip=3', 'id=Newtonsoft.Json&q=&skip=3', true],
    ['id=Newtonsoft.Json&q=newt', 'id=Newtonsoft.Json&q=newt&skip=0&take=20', false],
    ['id=&q=', 'id=&q=&skip=0&take=20', false],
  ] as const)('%j -> %j', (raw, want, versions) => {
    expect(upstreamAutocompleteQuery(raw).rawQuery).toBe(want);
    expect(isAutocompleteVersionsQuery(raw)).toBe(versions);
  });
});

describe('mergeSearch: round-robin order, dedupe and paging', () => {
  // Overlapping ids at different ranks and in different case.
  const U1 = ['A', 'B', 'C', 'D', 'E'];
  const U2 = ['b', 'F', 'a', 'G'];
  const U3 = ['H', 'c', 'I', 'A', 'J', 'K'];
  const FEEDS: [string, string[]][] = [
    ['u1', U1],
    ['u2', U2],
    ['u3', U3],
  ];
  // r0: A b H | r1: (B) F c | r2: (C) (a) I | r3: D G (A) | r4: E J | r5: K; spelling from the first upstream.
  const EXPECTED = ['A', 'B', 'H', 'F', 'C', 'I', 'D', 'G', 'E', 'J', 'K'];

  /** What the feeds answer to the upstream query derived from the client's. */
  function search(clientQuery: string) {
    const q = upstreamSearchQuery(clientQuery);
    const take = Number(new URLSearchParams(q.rawQuery).get('take'));
    expect(new URLSearchParams(q.rawQuery).get('skip')).toBe('0');
    const answers = FEEDS.map(([name, ids]) =>
      answer(name, ids.slice(0, take).map((id) => hit(id, [['1.0.0', 1]])), ids.length),
    );
    return mergeSearch(deepFreeze(answers), { skip: q.skip, take: q.take, allowed: ALL }) as Json;
  }

  it('orders by rank across upstreams, keeping each id at its earliest position', () => {
    const doc = search('q=x&skip=0&take=100');
    expect(doc.data.map((h: Json) => h.id)).toEqual(EXPECTED);
    expect(doc.totalHits).toBe(15 - 4); // 4 duplicates: B, C, a, A
  });

  it.each([1, 2, 3, 4, 5])('paging page by page with take %i returns every id exactly once, as one big page', (take) => {
    const seen: string[] = [];
    for (let skip = 0; skip < 30; skip += take) {
      const doc = search(`q=x&skip=${skip}&take=${take}&prerelease=true`);
      expect(doc.data.length).toBeLessThanOrEqual(take);
      if (skip >= EXPECTED.length) expect(doc.data).toEqual([]);
      seen.push(...doc.data.map((h: Json) => h.id));
      expect(doc.totalHits).toBeGreaterThanOrEqual(EXPECTED.length);
    }
    expect(seen).toEqual(EXPECTED);
    expect(new Set(seen.map((s) => s.toLowerCase())).size).toBe(seen.length);
  });

  it('with take 3 the pages are exactly [A B H] [F C I] [D G E] [J K]', () => {
    const pages = [0, 3, 6, 9, 12].map((skip) => search(`q=x&skip=${skip}&take=3`).data.map((h: Json) => h.id));
    expect(pages).toEqual([['A', 'B', 'H'], ['F', 'C', 'I'], ['D', 'G', 'E'], ['J', 'K'], []]);
  });
});

describe('mergeSearch: one entry per id', () => {
  it('takes metadata from the highest-priority upstream even when a lower one ranks the id first', () => {
    const doc = mergeSearch(
      deepFreeze([
        answer('u1', [hit('X', [['1.0.0', 1]]), hit('Y', [['1.0.0', 1]], { description: 'from u1', iconUrl: 'https://u1/icon.png', verified: true })]),
        answer('u2', [hit('y', [['2.0.0', 5]], { description: 'from u2', iconUrl: 'https://u2/icon.png', verified: false, tags: ['u2'] })]),
      ]),
      { skip: 0, take: 20, allowed: ALL },
    ) as Json;
    expect(doc.data.map((h: Json) => h.id)).toEqual(['X', 'Y']);
    const y = doc.data[1];
    expect(y).toMatchObject({ id: 'Y', description: 'from u1', iconUrl: 'https://u1/icon.png', verified: true, version: '2.0.0', totalDownloads: 6 });
    expect(y.tags).toBeUndefined(); // fields come from the winner only
    expect(y['@id']).toBe(`${BASE}v3/registration/semver2/y/index.json`);
    expect(y.versions.map((v: Json) => v.version)).toEqual(['1.0.0', '2.0.0']);
  });

  it.each([
    // [u1 versions, u2 versions, merged versions (version, downloads, from), version]
    [[['1.0.0', 10]], [['1.0', 5], ['2.0', 1]], [['1.0.0', 15, 'u1'], ['2.0', 1, 'u2']], '2.0'],
    [[['1.0', 10]], [['1.0.0.0', 5]], [['1.0', 15, 'u1']], '1.0'],
    [[['1.0.0-Beta', 3]], [['1.0.0-beta', 4], ['1.0.0', 1]], [['1.0.0-Beta', 7, 'u1'], ['1.0.0', 1, 'u2']], '1.0.0'],
    [[['1.0.1-rc.10', 1], ['2.0.0', 2]], [['1.0.1-rc.2', 1], ['10.0.0-alpha', 1]], [['1.0.1-rc.2', 1, 'u2'], ['1.0.1-rc.10', 1, 'u1'], ['2.0.0', 2, 'u1'], ['10.0.0-alpha', 1, 'u2']], '10.0.0-alpha'],
    [[['3.0.0', 1], ['1.0.0', 1]], [['2.0.0', 1], ['not-a-version', 9]], [['1.0.0', 1, 'u1'], ['2.0.0', 1, 'u2'], ['3.0.0', 1, 'u1']], '3.0.0'],
  ] as [ [string, number][], [string, number][], [string, number, string][], string ][])(
    'versions %j + %j -> %j, version %s',
    (v1, v2, want, version) => {
      const u1 = hit('Pkg', v1);
      const u2 = hit('pkg', v2);
      for (const v of u2.versions) v['@id'] = `u2:${v.version}`;
      for (const v of u1.versions) v['@id'] = `u1:${v.version}`;
      const doc = mergeSearch(deepFreeze([answer('u1', [u1]), answer('u2', [u2])]), { skip: 0, take: 20, allowed: ALL }) as Json;
      const merged = doc.data[0];
      expect(merged.versions.map((v: Json) => [v.version, v.downloads, (v['@id'] as string).split(':')[0]])).toEqual(want);
      expect(merged.version).toBe(version);
      expect(merged.totalDownloads).toBe([...v1, ...v2].reduce((a, [, d]) => a + d, 0));
    },
  );

  it("keeps an upstream's own spelling of the top version (build metadata)", () => {
    const doc = mergeSearch(
      [answer('u1', [hit('P', [['1.0.0', 1]], { version: '1.0.0+sha.abc' })]), answer('u2', [hit('P', [['1.0', 1]], { version: '1.0' })])],
      { skip: 0, take: 20, allowed: ALL },
    ) as Json;
    expect(doc.data[0].version).toBe('1.0.0+sha.abc');
  });

  it('sums totalDownloads over the upstreams that report it', () => {
    const noDownloads = hit('P', [['1.0.0', 1]]);
    delete noDownloads.totalDownloads;
    const doc = mergeSearch(
      [answer('u1', [noDownloads]), answer('u2', [hit('P', [['1.0.0', 7]])]), answer('u3', [hit('P', [['1.0.0', 8]])])],
      { skip: 0, take: 20, allowed: ALL },
    ) as Json;
    expect(doc.data[0].totalDownloads).toBe(15);
    expect(doc.data[0].versions).toEqual([expect.objectContaining({ version: '1.0.0', downloads: 16 })]);
  });
});

describe('mergeSearch: filtering and the document', () => {
  const router = new IdRouter([
    { name: 'company', include: [], exclude: [], owns: ['Contoso.*'] },
    { name: 'nuget.org', include: [], exclude: ['Evil.*'], owns: [] },
  ]);
  const allowed = (lid: string, up: string) => router.route(lid).allowed.includes(up);

  it('drops an owned id coming from the public upstream, and ids an upstream may not serve', () => {
    const doc = mergeSearch(
      deepFreeze([
        answer('company', [hit('Contoso.Lib', [['1.0.0', 3]], { description: 'the real one' })]),
        answer('nuget.org', [
          hit('contoso.lib', [['99.0.0', 1000]], { description: 'dependency confusion' }),
          hit('Newtonsoft.Json', [['13.0.3', 5]]),
          hit('Contoso.Evil', [['1.0.0', 1]]),
          hit('Evil.Package', [['1.0.0', 1]]),
        ]),
      ]),
      { skip: 0, take: 20, allowed },
    ) as Json;
    expect(doc.data.map((h: Json) => h.id)).toEqual(['Contoso.Lib', 'Newtonsoft.Json']);
    expect(doc.data[0]).toMatchObject({ description: 'the real one', version: '1.0.0', totalDownloads: 3 });
    expect(doc.data[0].versions).toHaveLength(1);
    expect(doc.totalHits).toBe(1 + 4 - 3);
  });

  it('drops hits without a valid id', () => {
    const doc = mergeSearch(
      [answer('u1', [null, 'x', {}, { id: 42 }, { id: '' }, { id: 'has space' }, { id: '.dot' }, hit('Ok', [['1.0.0', 1]])], 8)],
      { skip: 0, take: 20, allowed: ALL },
    ) as Json;
    expect(doc.data.map((h: Json) => h.id)).toEqual(['Ok']);
    expect(doc.totalHits).toBe(1);
  });

  it('copies @context from the first answer that has one and computes totalHits', () => {
    const ctx = { '@vocab': 'http://schema.nuget.org/schema#', '@base': `${BASE}v3/registration/semver2/` };
    const doc = mergeSearch(
      [
        { upstream: 'u1', doc: { data: [hit('A', [['1.0.0', 1]]), hit('B', [['1.0.0', 1]])] } }, // no totalHits: counts its data
        answer('u2', [hit('b', [['1.0.0', 1]])], 0, { '@context': ctx }), // too low: never below the merged ids seen
        answer('u3', [], 1000, { '@context': { '@vocab': 'other' } }),
      ],
      { skip: 1, take: 1, allowed: ALL },
    );
    expect(Object.keys(doc)).toEqual(['@context', 'totalHits', 'data']);
    expect(doc['@context']).toEqual(ctx);
    expect(doc.totalHits).toBe(2 + 0 + 1000 - 1);
    expect((doc.data as Json[]).map((h) => h.id)).toEqual(['B']);
    expect(mergeSearch([answer('u1', [hit('A', [['1.0.0', 1]])], 0)], { skip: 0, take: 20, allowed: ALL }).totalHits).toBe(1);
  });

  it('answers empty input and windows past the end', () => {
    expect(mergeSearch([], { skip: 0, take: 20, allowed: ALL })).toEqual({ totalHits: 0, data: [] });
    expect(mergeSearch([answer('u1', [hit('A', [['1.0.0', 1]])], 50)], { skip: 5, take: 20, allowed: ALL })).toEqual({ totalHits: 50, data: [] });
    expect(mergeSearch([{ upstream: 'u1', doc: { data: 'nope' } }], { skip: 0, take: 20, allowed: ALL })).toEqual({ totalHits: 0, data: [] });
  });
});

describe('mergeSearch: captured nuget.org answer (GitVersion.CommandLine, 519 versions)', () => {
  const nuget = deepFreeze(rewriteSearch(captured<Json>('nuget.org/search.gitversion-commandline.519-versions.json'), 'semver2') as Json);

  it('a single upstream comes through unchanged', () => {
    expect(mergeSearch([{ upstream: 'nuget.org', doc: nuget }], { skip: 0, take: 20, allowed: ALL })).toEqual(nuget);
  });

  it('merges a private mirror carrying the same id and more', () => {
    const mirror = deepFreeze({
      totalHits: 2,
      data: [
        hit('gitversion.commandline', [['1.1', 100], ['5.12', 10], ['5.12.0.1', 1], ['6.0.0-beta.1', 2]], {
          description: 'mirror copy',
          totalDownloads: 113,
        }),
        hit('Company.GitTools', [['1.0.0', 4]]),
      ],
    });
    const doc = mergeSearch(
      [
        { upstream: 'nuget.org', doc: nuget },
        { upstream: 'mirror', doc: mirror },
      ],
      { skip: 0, take: 20, allowed: ALL },
    ) as Json;
    const ups = nuget.data as Json[];
    // r0: GitVersion.CommandLine (nuget.org), gitversion.commandline (mirror, merged); r1: GitDepend..., Company.GitTools
    expect(doc.data.map((h: Json) => h.id)).toEqual([ups[0]!.id, ups[1]!.id, 'Company.GitTools', ups[2]!.id, ups[3]!.id]);
    expect(doc.totalHits).toBe(4 + 2 - 1);
    expect(doc['@context']).toEqual(nuget['@context']);

    const gv = doc.data[0];
    const orig = ups[0]!;
    expect(gv.id).toBe('GitVersion.CommandLine');
    expect(gv.description).toBe(orig.description);
    expect(gv.authors).toEqual(orig.authors);
    expect(gv.version).toBe('6.0.0-beta.1');
    expect(gv.totalDownloads).toBe(orig.totalDownloads + 113);
    expect(gv.versions).toHaveLength(519 + 2);
    const versions = gv.versions as Json[];
    expect(versions.slice(-3).map((v) => v.version)).toEqual(['5.12.0', '5.12.0.1', '6.0.0-beta.1']);
    const origOf = (ver: string) => (orig.versions as Json[]).find((v) => v.version === ver)!;
    expect(versions.find((v) => v.version === '5.12.0')).toEqual({ ...origOf('5.12.0'), downloads: origOf('5.12.0').downloads + 10 });
    expect(versions.find((v) => v.version === '1.1.0')).toEqual({ ...origOf('1.1.0'), downloads: origOf('1.1.0').downloads + 100 });
    expect(versions.some((v) => v.version === '1.1' || v.version === '5.12')).toBe(false);
    // the others are nuget.org's, in nuget.org's (ascending) order
    expect(versions.filter((v) => v.version !== '5.12.0.1' && v.version !== '6.0.0-beta.1').map((v) => v.version)).toEqual(
      (orig.versions as Json[]).map((v) => v.version),
    );
    // hits found in one upstream only are untouched
    expect([doc.data[1], ...doc.data.slice(3)]).toEqual(ups.slice(1));
  });
});

describe('mergeAutocompleteIds', () => {
  const ac = (upstream: string, data: unknown[], totalHits: number = data.length) => ({ upstream, doc: { totalHits, data } });

  it('orders round-robin, dedupes case-insensitively with the first upstream spelling, filters and slices', () => {
    const answers = deepFreeze([
      ac('u1', ['A', 'B', 'C', 'D', 'E']),
      ac('u2', ['b', 'F', 'a', 'G', 'Contoso.Fake', 'bad id', 7]),
      ac('u3', ['H', 'c', 'I', 'A', 'J', 'K']),
    ]);
    const allowed = (lid: string, up: string) => !(lid.startsWith('contoso.') && up !== 'u1');
    const all = mergeAutocompleteIds(answers, { skip: 0, take: 100, allowed });
    expect(all.data).toEqual(['A', 'B', 'H', 'F', 'C', 'I', 'D', 'G', 'E', 'J', 'K']);
    expect(all.totalHits).toBe(5 + 7 + 6 - 3 - 4);
    const paged: string[] = [];
    for (let skip = 0; skip < 12; skip += 3) paged.push(...mergeAutocompleteIds(answers, { skip, take: 3, allowed }).data);
    expect(paged).toEqual(all.data);
  });

  it('handles empty and malformed answers', () => {
    expect(mergeAutocompleteIds([], { skip: 0, take: 20, allowed: ALL })).toEqual({ totalHits: 0, data: [] });
    expect(mergeAutocompleteIds([{ upstream: 'u', doc: {} }], { skip: 0, take: 20, allowed: ALL })).toEqual({ totalHits: 0, data: [] });
  });
});

describe('mergeAutocompleteVersions', () => {
  it.each([
    [[['1.0', '2.0.0-beta', '1.0.0+meta'], ['1.0.0', '10.0.0', '2.0.0-BETA', 'not-a-version', '1.10.0']], ['1.0', '1.10.0', '2.0.0-beta', '10.0.0']],
    [[['1.0.1-rc.10', '1.0.1-rc.2'], []], ['1.0.1-rc.2', '1.0.1-rc.10']],
    [[[], ['2.0.0', '1.0.0.0', '1.0']], ['1.0.0.0', '2.0.0']],
    [[], []],
  ] as [string[][], string[]][])('%j -> %j', (lists, want) => {
    const answers = lists.map((data, i) => ({ upstream: `u${i}`, doc: { totalHits: data.length, data } }));
    expect(mergeAutocompleteVersions(answers)).toEqual({ totalHits: want.length, data: want });
  });
});
