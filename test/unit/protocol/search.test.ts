import { describe, expect, it } from 'vitest';
import { rewriteSearch, searchHive } from '../../../src/protocol/search.js';
import { BASE } from '../../../src/protocol/urls.js';
import { captured, capturedText, strings } from './captured.js';

type Json = Record<string, any>;

const NUGET_SEMVER2 = 'https://api.nuget.org/v3/registration5-gz-semver2/';
const SLEET = 'https://github.com/moomiji/host-nuget-on-github/raw/test-commit-no-sign/';
const hiveBase = (hive: string): string => `${BASE}v3/registration/${hive}/`;

/** The hit without the fields the rewrite rebuilds; everything left must come through unchanged. */
function withoutRebuilt(hit: Json): Json {
  const { '@id': _id, registration: _reg, versions, ...rest } = hit;
  return { ...rest, versions: (versions as Json[] | undefined)?.map(({ '@id': _v, ...r }) => r) };
}

describe('rewriteSearch: nuget.org, GitVersion.CommandLine with 519 versions', () => {
  const FILE = 'nuget.org/search.gitversion-commandline.519-versions.json';
  const up = captured<Json>(FILE);
  const doc = rewriteSearch(up, 'semver2') as Json;

  it('rewrites every versions[].@id to the proxy leaf URL in the hive (all 519 of the first hit)', () => {
    expect((up.data as Json[])[0]!.versions).toHaveLength(519);
    expect((doc.data as Json[])[0]!.versions).toHaveLength(519);
    let n = 0;
    (doc.data as Json[]).forEach((hit, i) => {
      const lid = (hit.id as string).toLowerCase();
      const upHit = (up.data as Json[])[i]!;
      expect(hit.versions).toHaveLength(upHit.versions.length);
      (hit.versions as Json[]).forEach((ver, j) => {
        // upstream names the same leaf under its own hive: same id and version segments, proxy base
        const upId = upHit.versions[j]['@id'] as string;
        expect(upId.startsWith(`${NUGET_SEMVER2}${lid}/`)).toBe(true);
        expect(ver['@id']).toBe(`${hiveBase('semver2')}${upId.slice(NUGET_SEMVER2.length)}`);
        expect(ver['@id']).toBe(`${BASE}v3/registration/semver2/${lid}/${(ver.version as string).toLowerCase()}.json`);
        n++;
      });
    });
    expect(n).toBe(519 + 17 + 7 + 26);
  });

  it('rewrites @id, registration and @context.@base; keeps totalHits, @vocab, iconUrl, projectUrl, licenseUrl and the rest', () => {
    expect(doc.totalHits).toBe(up.totalHits);
    expect(doc['@context']).toEqual({ '@vocab': 'http://schema.nuget.org/schema#', '@base': hiveBase('semver2') });
    expect(doc.data).toHaveLength(4);
    (doc.data as Json[]).forEach((hit, i) => {
      const upHit = (up.data as Json[])[i]!;
      const index = `${BASE}v3/registration/semver2/${(hit.id as string).toLowerCase()}/index.json`;
      expect(hit['@id']).toBe(index);
      expect(hit.registration).toBe(index);
      expect(hit.iconUrl).toBe(upHit.iconUrl);
      expect(hit.projectUrl).toBe(upHit.projectUrl);
      expect(hit.licenseUrl).toBe(upHit.licenseUrl);
      expect(withoutRebuilt(hit)).toEqual(withoutRebuilt(upHit));
    });
    expect((doc.data as Json[])[0]!.iconUrl).toBe('https://api.nuget.org/v3-flatcontainer/gitversion.commandline/5.12.0/icon');
    expect((doc.data as Json[])[0]!.vulnerabilities).toEqual([]);
  });

  it('leaves no registration URL of the upstream anywhere', () => {
    const left = strings(doc).filter((s) => s.includes('api.nuget.org/v3/registration'));
    expect(left).toEqual([]);
    expect(JSON.stringify(up)).toContain(NUGET_SEMVER2); // (the input did have them)
  });

  it('points into whichever hive it is given', () => {
    const s1 = rewriteSearch(up, 'semver1') as Json;
    expect(s1['@context']['@base']).toBe(hiveBase('semver1'));
    expect(s1.data[0].versions[0]['@id']).toBe(`${BASE}v3/registration/semver1/gitversion.commandline/1.1.0.json`);
  });

  it('does not modify its input', () => {
    const fresh = captured<Json>(FILE);
    rewriteSearch(fresh, 'semver2');
    expect(JSON.stringify(fresh)).toBe(JSON.stringify(captured<Json>(FILE)));
  });
});

describe('rewriteSearch: other captured answers', () => {
  it('nuget.org hit with a deprecation: kept unchanged', () => {
    const up = captured<Json>('nuget.org/search.deprecated-package.json');
    const doc = rewriteSearch(up, 'semver2') as Json;
    const hit = doc.data[0];
    expect(hit.deprecation).toEqual({
      message: 'This package has been deprecated as part of the .NET Package Deprecation effort. You can learn more about it from https://github.com/dotnet/announcements/issues/217',
      reasons: ['Other', 'Legacy'],
    });
    expect(hit.registration).toBe(`${BASE}v3/registration/semver2/microsoft.extensions.platformabstractions/index.json`);
    expect(hit.versions.map((x: Json) => x['@id'])).toEqual(
      up.data[0].versions.map((x: Json) => (x['@id'] as string).replace(NUGET_SEMVER2, hiveBase('semver2'))),
    );
    expect(doc.data.map(withoutRebuilt)).toEqual(up.data.map(withoutRebuilt));
    expect(strings(doc).filter((s) => s.includes('api.nuget.org/v3/registration'))).toEqual([]);
  });

  it('Sleet static search: hit @id (a leaf URL upstream) becomes the index URL; no @base invented', () => {
    const up = captured<Json>('sleet/search-static.json');
    const doc = rewriteSearch(up, 'gz-semver1') as Json;
    const hit = doc.data[0];
    expect(up.data[0]['@id']).toBe(`${SLEET}registration/mstest/3.7.0-preview.24501.5.json`);
    expect(hit['@id']).toBe(`${BASE}v3/registration/gz-semver1/mstest/index.json`);
    expect(hit.registration).toBe(`${BASE}v3/registration/gz-semver1/mstest/index.json`);
    expect(hit.versions.map((x: Json) => x['@id'])).toEqual(
      ['3.6.0', '3.7.0-preview.24477.4', '3.7.0-preview.24480.1', '3.7.0-preview.24480.12', '3.7.0-preview.24501.5'].map(
        (ver) => `${BASE}v3/registration/gz-semver1/mstest/${ver}.json`,
      ),
    );
    expect(doc['@context']).toEqual(up['@context']);
    expect(doc.index).toBe('sleet-static');
    expect(doc.data.map(withoutRebuilt)).toEqual(up.data.map(withoutRebuilt));
    expect(strings(doc).filter((s) => s.startsWith(`${SLEET}registration/`))).toEqual([]);
    expect(hit.iconUrl).toBe(`${SLEET}flatcontainer/mstest/3.7.0-preview.24501.5/icon`);
  });

  it('empty answers: data stays empty, @base rewritten, legacy fields kept (2017 Lucene one has a BOM)', () => {
    const empty = rewriteSearch(captured<Json>('nuget.org/search.empty.json'), 'semver2') as Json;
    expect(empty).toEqual({ '@context': { '@vocab': 'http://schema.nuget.org/schema#', '@base': hiveBase('semver2') }, totalHits: 0, data: [] });

    expect(capturedText('nuget.org/search.empty.2017-lucene.json').charCodeAt(0)).toBe(0xfeff);
    const lucene = rewriteSearch(captured<Json>('nuget.org/search.empty.2017-lucene.json'), 'semver1') as Json;
    expect(lucene).toEqual({
      '@context': { '@vocab': 'http://schema.nuget.org/schema#', '@base': hiveBase('semver1') },
      totalHits: 0,
      lastReopen: '2017-03-23T00:12:00.6338277Z',
      index: 'v3-lucene0-v2v3-20170110',
      data: [],
    });
  });
});

describe('rewriteSearch: synthetic edge cases', () => {
  const hit = (id: unknown, versions: unknown[]): Json => ({
    '@id': `https://up.example/reg/${String(id).toLowerCase()}/index.json`,
    registration: `https://up.example/reg/${String(id).toLowerCase()}/index.json`,
    id,
    version: '1.0.0',
    versions,
  });

  it('drops hits whose id the proxy cannot serve, and version entries whose version does not parse', () => {
    const doc = rewriteSearch(
      {
        totalHits: 3,
        data: [
          hit('Good.Id', [
            { '@id': 'https://up.example/reg/good.id/1.0.0.json', version: '1.0.0', downloads: 5 },
            { '@id': 'https://up.example/reg/good.id/bad.json', version: 'not-a-version', downloads: 1 },
            { '@id': 'https://up.example/reg/good.id/x.json', downloads: 1 },
            { version: '2.0.0+meta', downloads: 2 },
            'garbage',
            { '@id': 'https://up.example/reg/good.id/3.0.0-rc.1.json', version: '3.0.0-RC.1+sha', downloads: 3 },
          ]),
          hit('Bad Id!', [{ '@id': 'https://up.example/reg/bad/1.0.0.json', version: '1.0.0' }]),
          hit(42, []),
          'garbage',
        ],
      },
      'semver2',
    ) as Json;
    expect(doc.totalHits).toBe(3);
    expect(doc.data).toHaveLength(1);
    expect(doc.data[0].versions).toEqual([
      { '@id': `${BASE}v3/registration/semver2/good.id/1.0.0.json`, version: '1.0.0', downloads: 5 },
      { version: '2.0.0+meta', downloads: 2 },
      { '@id': `${BASE}v3/registration/semver2/good.id/3.0.0-rc.1.json`, version: '3.0.0-RC.1+sha', downloads: 3 },
    ]);
    expect(strings(doc).filter((s) => s.includes('up.example'))).toEqual([]);
  });

  it('adds no @id/registration a hit did not have; a document without data is left as it is', () => {
    const doc = rewriteSearch({ data: [{ id: 'A', version: '1.0.0', versions: [{ version: '1.0.0' }] }] }, 'semver1') as Json;
    expect(doc.data[0]).toEqual({ id: 'A', version: '1.0.0', versions: [{ version: '1.0.0' }] });
    expect(rewriteSearch({ totalHits: 0 }, 'semver1')).toEqual({ totalHits: 0 });
  });
});

describe('searchHive', () => {
  const both = ['semver2', 'gz-semver1', 'semver1'];
  const q = (s: string) => new URLSearchParams(s);

  it.each([
    ['semVerLevel=2.0.0', both, 'semver2'],
    ['q=json&prerelease=true&semVerLevel=2.0.0', both, 'semver2'],
    ['semVerLevel=2', both, 'semver2'],
    ['semVerLevel=3.0', both, 'semver2'],
    ['semVerLevel=10.0.0', both, 'semver2'],
    ['q=json', both, 'semver1'],
    ['', both, 'semver1'],
    ['semVerLevel=1.0.0', both, 'semver1'],
    ['semVerLevel=', both, 'semver1'],
    ['semVerLevel=abc', both, 'semver1'],
    // nuget.org parses the value as a NuGet version and compares it with 2.0.0
    ['semVerLevel=2.0.0-beta', both, 'semver1'],
    ['semVerLevel=01.0.0', both, 'semver1'],
    ['semverlevel=2.0.0', both, 'semver1'], // parameter names are case-sensitive here
    // only some hives: the nearest one
    ['semVerLevel=2.0.0', ['semver1'], 'semver1'],
    ['semVerLevel=2.0.0', ['gz-semver1', 'semver1'], 'gz-semver1'],
    ['q=x', ['semver2'], 'semver2'],
    ['q=x', ['semver2', 'gz-semver1'], 'gz-semver1'],
    ['q=x', ['gz-semver1'], 'gz-semver1'], // Sleet
    ['semVerLevel=2.0.0', ['gz-semver1'], 'gz-semver1'],
  ] as const)('%s with %j -> %s', (query, hives, expected) => {
    expect(searchHive(q(query), hives)).toBe(expected);
  });

  it('no hives at all -> undefined', () => {
    expect(searchHive(q('semVerLevel=2.0.0'), [])).toBeUndefined();
  });
});
