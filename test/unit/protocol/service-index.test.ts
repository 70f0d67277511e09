import { describe, expect, it } from 'vitest';
import {
  buildServiceIndex,
  capabilitiesOf,
  parseServiceIndex,
  ServiceIndexError,
  type ProxyCapabilities,
  type UpstreamResources,
} from '../../../src/protocol/service-index.js';
import { BASE, render } from '../../../src/protocol/urls.js';
import { captured, capturedText } from './captured.js';

type Hive = { name: string; url: string; types: { type: string; clientVersion?: string }[] };

interface Expected {
  file: string;
  host?: string; // for host-templated fixtures
  flat: string | undefined;
  hives: Hive[];
  search: string[];
  searchPackageType: boolean;
  autocomplete: string[];
  vulnerability: string | undefined;
}

const NUGET_SEMVER1 = ['RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-rc', 'RegistrationsBaseUrl/3.0.0-beta'];
const nugetOrg = (file: string, host?: string): Expected => ({
  file,
  ...(host ? { host } : {}),
  flat: 'https://api.nuget.org/v3-flatcontainer/',
  hives: [
    {
      name: 'semver2',
      url: 'https://api.nuget.org/v3/registration5-gz-semver2/',
      types: [{ type: 'RegistrationsBaseUrl/3.6.0' }, { type: 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' }],
    },
    { name: 'gz-semver1', url: 'https://api.nuget.org/v3/registration5-gz-semver1/', types: [{ type: 'RegistrationsBaseUrl/3.4.0' }] },
    { name: 'semver1', url: 'https://api.nuget.org/v3/registration5-semver1/', types: NUGET_SEMVER1.map((type) => ({ type })) },
  ],
  search: ['https://azuresearch-usnc.nuget.org/query', 'https://azuresearch-ussc.nuget.org/query'],
  searchPackageType: true,
  autocomplete: ['https://azuresearch-usnc.nuget.org/autocomplete', 'https://azuresearch-ussc.nuget.org/autocomplete'],
  vulnerability: 'https://api.nuget.org/v3/vulnerabilities/index.json',
});

const AZ = 'https://pkgs.dev.azure.com/dnceng/9ee6d478-d288-47f7-aacc-f6e6d082ae6d/_packaging/45bacae2-5efb-47c8-91e5-8ec20c22b4f8/nuget/v3/';
const azure = (file: string, base: string): Expected => ({
  file,
  flat: `${base}flat2/`,
  hives: [
    // Azure lists /Versioned without clientVersion: kept as is (no clientVersion invented)
    { name: 'semver2', url: `${base}registrations2-semver2/`, types: [{ type: 'RegistrationsBaseUrl/3.6.0' }, { type: 'RegistrationsBaseUrl/Versioned' }] },
    { name: 'semver1', url: `${base}registrations2/`, types: [{ type: 'RegistrationsBaseUrl/3.0.0-beta' }] },
  ],
  search: [`${base}query2/`],
  searchPackageType: false,
  autocomplete: [],
  vulnerability: undefined,
});

const artifactory = (file: string, base: string, host?: string): Expected => ({
  file,
  ...(host ? { host } : {}),
  flat: undefined, // Artifactory advertises no PackageBaseAddress at all
  hives: [
    {
      name: 'semver2',
      url: `${base}registration-semver2/`,
      types: [{ type: 'RegistrationsBaseUrl/3.6.0' }, { type: 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' }],
    },
    { name: 'gz-semver1', url: `${base}registration/`, types: [{ type: 'RegistrationsBaseUrl/3.4.0' }] },
    { name: 'semver1', url: `${base}registration/`, types: NUGET_SEMVER1.map((type) => ({ type })) },
  ],
  search: [`${base}query`],
  searchPackageType: false,
  autocomplete: [],
  vulnerability: undefined,
});

const MYGET = 'https://www.myget.org/F/exceptionless/api/v3/';
const GH = 'https://nuget.pkg.github.com/some-namespace';
const SLEET = 'https://github.com/moomiji/host-nuget-on-github/raw/test-commit-no-sign/';

const CASES: Expected[] = [
  nugetOrg('nuget.org/service-index.2023.json'),
  nugetOrg('nuget.org/service-index.2025.host-templated.json', 'https://api.nuget.org'),
  azure('azure-artifacts/service-index.dnceng-dotnet-public.json', AZ),
  azure('azure-artifacts/service-index.host-rewritten.json', 'http://localhost:1080/v3/'),
  artifactory('artifactory/service-index.host-templated.json', 'https://artifactory.example/artifactory/api/nuget/v3/nuget-repo/', 'https://artifactory.example'),
  artifactory('artifactory/service-index.local.json', 'http://localhost:8081/artifactory/api/nuget/v3/dependabot-nuget-local/'),
  {
    file: 'github-packages/service-index.json',
    flat: `${GH}/download/`, // no trailing slash upstream
    hives: [{ name: 'semver1', url: `${GH}/`, types: ['RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-beta', 'RegistrationsBaseUrl/3.0.0-rc'].map((type) => ({ type })) }],
    search: [`${GH}/query`],
    searchPackageType: false,
    autocomplete: [],
    vulnerability: undefined,
  },
  {
    file: 'myget/service-index.exceptionless.json',
    flat: `${MYGET}flatcontainer/`,
    // one upstream base behind every registration type: still three hives, classified by type
    hives: [
      {
        name: 'semver2',
        url: `${MYGET}registration1/`,
        types: [{ type: 'RegistrationsBaseUrl/3.6.0' }, { type: 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' }],
      },
      { name: 'gz-semver1', url: `${MYGET}registration1/`, types: [{ type: 'RegistrationsBaseUrl/3.4.0' }] },
      { name: 'semver1', url: `${MYGET}registration1/`, types: ['RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-beta', 'RegistrationsBaseUrl/3.0.0-rc'].map((type) => ({ type })) },
    ],
    search: [`${MYGET}query`],
    searchPackageType: false,
    autocomplete: [`${MYGET}autocomplete`],
    vulnerability: undefined,
  },
  {
    file: 'sleet/service-index.json',
    flat: `${SLEET}flatcontainer/`,
    hives: [{ name: 'gz-semver1', url: `${SLEET}registration/`, types: [{ type: 'RegistrationsBaseUrl/3.4.0' }] }],
    search: [`${SLEET}search/query`],
    searchPackageType: false,
    autocomplete: [`${SLEET}autocomplete/query`],
    vulnerability: undefined,
  },
];

const load = (c: Expected): Record<string, unknown> => captured(c.file, c.host);

/** The absolute http(s) @ids of a service index, as written. */
function upstreamIds(doc: Record<string, unknown>): string[] {
  const res = doc.resources as { '@id'?: unknown }[];
  return res.map((r) => r['@id']).filter((id): id is string => typeof id === 'string' && /^https?:\/\//.test(id));
}

describe('parseServiceIndex: every captured service index', () => {
  it.each(CASES)('$file', (c) => {
    const r = parseServiceIndex(load(c));
    expect(r.flat).toBe(c.flat);
    if (r.flat !== undefined) expect(r.flat.endsWith('/')).toBe(true);
    expect(r.hives).toEqual(c.hives);
    for (const h of r.hives) expect(h.url.endsWith('/')).toBe(true);
    expect(r.search).toEqual(c.search);
    expect(r.searchPackageType).toBe(c.searchPackageType);
    expect(r.autocomplete).toEqual(c.autocomplete);
    expect(r.vulnerability).toBe(c.vulnerability);
    // urls: every absolute http(s) @id, once, nothing else (Azure's urn:uuid: and feed-view ids are not URLs)
    const ids = upstreamIds(load(c));
    expect(new Set(r.urls)).toEqual(new Set(ids));
    expect(r.urls).toHaveLength(new Set(ids).size);
    for (const u of r.urls) expect(u).toMatch(/^https?:\/\//);
  });

  it('the host-templated nuget.org index (2025) parses like the verbatim one (2023)', () => {
    const a = parseServiceIndex(captured('nuget.org/service-index.2023.json'));
    const b = parseServiceIndex(captured('nuget.org/service-index.2025.host-templated.json', 'https://api.nuget.org'));
    expect({ ...b, urls: [] }).toEqual({ ...a, urls: [] });
    // 2025 names the newer template types too, with URLs of their own
    expect(b.urls).toContain('https://www.nuget.org/profiles/{owner}?_src=template');
    expect(a.urls).not.toContain('https://www.nuget.org/profiles/{owner}?_src=template');
  });

  it('accepts the older version strings "3.0.0-beta" (Azure) and "3.0.0-beta.1" (GitHub)', () => {
    expect((captured('azure-artifacts/service-index.dnceng-dotnet-public.json') as { version: string }).version).toBe('3.0.0-beta');
    expect((captured('github-packages/service-index.json') as { version: string }).version).toBe('3.0.0-beta.1');
    expect(() => parseServiceIndex(captured('azure-artifacts/service-index.dnceng-dotnet-public.json'))).not.toThrow();
    expect(() => parseServiceIndex(captured('github-packages/service-index.json'))).not.toThrow();
  });

  it('the host-templated fixtures really are templated (the loader must substitute the host)', () => {
    expect(capturedText('nuget.org/service-index.2025.host-templated.json')).toContain('{{request.baseUrl}}/v3-flatcontainer/');
    expect(() => captured('artifactory/service-index.host-templated.json')).toThrow(/host-templated/);
  });
});

describe('parseServiceIndex: bad and odd input', () => {
  const ok = { '@id': 'https://up.example/flat/', '@type': 'PackageBaseAddress/3.0.0' };

  it.each([
    ['not an object', null],
    ['an array', [ok]],
    ['missing version', { resources: [ok] }],
    ['numeric version', { version: 3, resources: [ok] }],
    ['version 2.0.0', { version: '2.0.0', resources: [ok] }],
    ['version 4.0.0', { version: '4.0.0', resources: [ok] }],
    ['unparsable version', { version: 'three', resources: [ok] }],
    ['resources missing', { version: '3.0.0' }],
    ['resources an object', { version: '3.0.0', resources: { 0: ok } }],
    ['resources a string', { version: '3.0.0', resources: 'https://up.example/flat/' }],
  ])('%s -> ServiceIndexError', (_name, doc) => {
    expect(() => parseServiceIndex(doc)).toThrow(ServiceIndexError);
  });

  it('accepts "3", "3.0.0" and "3.1.0" as version 3', () => {
    for (const version of ['3', '3.0.0', '3.1.0', ' 3.0.0 ']) {
      expect(parseServiceIndex({ version, resources: [ok] }).flat).toBe('https://up.example/flat/');
    }
  });

  it('skips entries without an absolute http(s) @id, without @type, or that are not objects', () => {
    const r = parseServiceIndex({
      version: '3.0.0',
      resources: [
        { '@id': '/v3/flat/', '@type': 'PackageBaseAddress/3.0.0' },
        { '@id': 'flat/', '@type': 'PackageBaseAddress/3.0.0' },
        { '@type': 'PackageBaseAddress/3.0.0' },
        { '@id': 42, '@type': 'PackageBaseAddress/3.0.0' },
        { '@id': 'urn:uuid:45bacae2', '@type': 'RegistrationsBaseUrl/3.6.0' },
        { '@id': 'https://up.example/nothing/' },
        null,
        'https://up.example/x/',
        ['https://up.example/y/'],
        { '@id': 'https://up.example/reg/', '@type': 'RegistrationsBaseUrl/3.6.0' },
      ],
    });
    expect(r.flat).toBeUndefined();
    expect(r.hives).toEqual([{ name: 'semver2', url: 'https://up.example/reg/', types: [{ type: 'RegistrationsBaseUrl/3.6.0' }] }]);
    expect(r.urls).toEqual(['https://up.example/reg/']);
  });

  it('handles @type as an array of strings (non-strings in it ignored)', () => {
    const r = parseServiceIndex({
      version: '3.0.0',
      resources: [
        { '@id': 'https://up.example/reg', '@type': ['RegistrationsBaseUrl/3.6.0', 7, 'RegistrationsBaseUrl/Versioned'], clientVersion: '4.3.0-alpha' },
        { '@id': 'https://up.example/flat', '@type': ['PackageBaseAddress/3.0.0'] },
        { '@id': 'https://up.example/q', '@type': ['SearchQueryService/3.5.0', 'SearchQueryService/3.0.0-beta'] },
      ],
    });
    expect(r.flat).toBe('https://up.example/flat/');
    expect(r.hives).toEqual([
      {
        name: 'semver2',
        url: 'https://up.example/reg/',
        types: [
          { type: 'RegistrationsBaseUrl/3.6.0', clientVersion: '4.3.0-alpha' },
          { type: 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' },
        ],
      },
    ]);
    expect(r.search).toEqual(['https://up.example/q']);
    expect(r.searchPackageType).toBe(true);
  });

  it('matches @type exactly and case-sensitively, like the client', () => {
    const r = parseServiceIndex({
      version: '3.0.0',
      resources: [
        { '@id': 'https://up.example/flat/', '@type': 'packagebaseaddress/3.0.0' },
        { '@id': 'https://up.example/reg/', '@type': 'RegistrationsBaseUrl/3.6.0 ' },
        { '@id': 'https://up.example/q', '@type': 'SearchQueryService/3.0.0-Beta' },
      ],
    });
    expect(r.flat).toBeUndefined();
    expect(r.hives).toEqual([]);
    expect(r.search).toEqual([]);
  });

  it('takes clientVersion from a string or the first string of an array', () => {
    const r = parseServiceIndex({
      version: '3.0.0',
      resources: [{ '@id': 'https://up.example/reg/', '@type': 'RegistrationsBaseUrl/Versioned', clientVersion: [1, '4.3.0-alpha'] }],
    });
    expect(r.hives[0]?.types).toEqual([{ type: 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' }]);
  });

  it('keeps one base per hive (the first listed) and lists each of its types once', () => {
    const r = parseServiceIndex({
      version: '3.0.0',
      resources: [
        { '@id': 'https://up.example/reg2', '@type': 'RegistrationsBaseUrl/3.6.0' },
        { '@id': 'https://up.example/reg2/', '@type': ['RegistrationsBaseUrl/3.6.0', 'RegistrationsBaseUrl/Versioned'] },
        { '@id': 'https://other.example/reg2/', '@type': 'RegistrationsBaseUrl/Versioned' },
      ],
    });
    expect(r.hives).toEqual([
      { name: 'semver2', url: 'https://up.example/reg2/', types: [{ type: 'RegistrationsBaseUrl/3.6.0' }, { type: 'RegistrationsBaseUrl/Versioned' }] },
    ]);
  });

  it('orders search URLs by the type preference list, each URL once', () => {
    const r = parseServiceIndex({
      version: '3.0.0',
      resources: [
        { '@id': 'https://plain.example/q', '@type': 'SearchQueryService' },
        { '@id': 'https://beta.example/q', '@type': 'SearchQueryService/3.0.0-beta' },
        { '@id': 'https://v350.example/q', '@type': 'SearchQueryService/3.5.0' },
        { '@id': 'https://plain.example/q', '@type': 'SearchQueryService/3.0.0-rc' },
        { '@id': 'https://versioned.example/q', '@type': 'SearchQueryService/Versioned' },
      ],
    });
    expect(r.search).toEqual(['https://versioned.example/q', 'https://v350.example/q', 'https://beta.example/q', 'https://plain.example/q']);
  });
});

describe('buildServiceIndex from the captured indexes', () => {
  // Types the proxy must never pass on (§1.2, pitfall 21): not served, or upstream-specific.
  const FORBIDDEN = /^(LegacyGallery|Catalog|RepositorySignatures|PackagePublish|SymbolPackagePublish|ReportAbuseUriTemplate|PackageDetailsUriTemplate|OwnerDetailsUriTemplate|ReadmeUriTemplate|PackageDisplayMetadataUriTemplate|PackageVersionDisplayMetadataUriTemplate|SearchGalleryQueryService|Vss|AzureDevOps)|sleet/i;

  it.each(CASES)('$file', (c) => {
    const up = parseServiceIndex(load(c));
    const idx = buildServiceIndex(capabilitiesOf(up));
    const json = JSON.stringify(idx);
    expect(idx.version).toBe('3.0.0');

    // only proxy URLs, and no upstream host anywhere in the document
    for (const r of idx.resources) expect(r['@id'].startsWith(`${BASE}v3/`)).toBe(true);
    for (const u of upstreamIds(load(c))) expect(json).not.toContain(new URL(u).host);

    const types = idx.resources.map((r) => r['@type']);
    for (const t of types) expect(t).not.toMatch(FORBIDDEN);
    expect(types.filter((t) => t.startsWith('PackageBaseAddress'))).toEqual(['PackageBaseAddress/3.0.0']);
    const byType = (t: string) => idx.resources.filter((r) => r['@type'] === t);
    expect(byType('PackageBaseAddress/3.0.0')[0]?.['@id']).toBe(`${BASE}v3/flat/`);

    // each upstream hive under the proxy's own base, with the upstream's types (clientVersion kept)
    const regs = idx.resources.filter((r) => r['@type'].startsWith('RegistrationsBaseUrl'));
    expect(regs).toEqual(
      c.hives.flatMap((h) => h.types.map((t) => ({ '@id': `${BASE}v3/registration/${h.name}/`, '@type': t.type, ...(t.clientVersion ? { clientVersion: t.clientVersion } : {}) }))),
    );

    if (c.search.length > 0) {
      expect(byType('SearchQueryService/3.0.0-beta')).toEqual([{ '@id': `${BASE}v3/query`, '@type': 'SearchQueryService/3.0.0-beta' }]);
      expect(byType('SearchQueryService/3.5.0')).toHaveLength(c.searchPackageType ? 1 : 0);
    } else {
      expect(types.some((t) => t.startsWith('SearchQueryService'))).toBe(false);
    }
    if (c.autocomplete.length > 0) {
      expect(byType('SearchAutocompleteService/3.0.0-beta')).toEqual([{ '@id': `${BASE}v3/autocomplete`, '@type': 'SearchAutocompleteService/3.0.0-beta' }]);
    } else {
      expect(types.some((t) => t.startsWith('SearchAutocompleteService'))).toBe(false);
    }
    expect(byType('VulnerabilityInfo/6.7.0')).toEqual(c.vulnerability ? [{ '@id': `${BASE}v3/vulnerabilities/index.json`, '@type': 'VulnerabilityInfo/6.7.0' }] : []);

    // no resource twice
    const keys = idx.resources.map((r) => `${r['@type']} ${r['@id']} ${r.clientVersion ?? ''}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('nuget.org: the exact registration and search types the client looks for', () => {
    const idx = buildServiceIndex(capabilitiesOf(parseServiceIndex(captured('nuget.org/service-index.2023.json'))));
    const find = (t: string) => idx.resources.find((r) => r['@type'] === t);
    expect(find('RegistrationsBaseUrl/Versioned')).toEqual({ '@id': `${BASE}v3/registration/semver2/`, '@type': 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' });
    expect(find('RegistrationsBaseUrl/3.6.0')?.['@id']).toBe(`${BASE}v3/registration/semver2/`);
    expect(find('RegistrationsBaseUrl/3.4.0')?.['@id']).toBe(`${BASE}v3/registration/gz-semver1/`);
    expect(find('RegistrationsBaseUrl/3.0.0-beta')?.['@id']).toBe(`${BASE}v3/registration/semver1/`);
    expect(find('SearchQueryService/3.0.0-beta')?.['@id']).toBe(`${BASE}v3/query`);
    expect(find('SearchQueryService/3.5.0')?.['@id']).toBe(`${BASE}v3/query`);
    expect(find('SearchAutocompleteService/3.0.0-beta')?.['@id']).toBe(`${BASE}v3/autocomplete`);
    expect(find('SearchAutocompleteService/3.5.0')?.['@id']).toBe(`${BASE}v3/autocomplete`);
    expect(find('VulnerabilityInfo/6.7.0')?.['@id']).toBe(`${BASE}v3/vulnerabilities/index.json`);
    expect(JSON.stringify(idx)).not.toMatch(/nuget\.org|azuresearch|\{id\}|\{owner\}/);
  });

  it('Sleet: only RegistrationsBaseUrl/3.4.0, under gz-semver1', () => {
    const idx = buildServiceIndex(capabilitiesOf(parseServiceIndex(captured('sleet/service-index.json'))));
    expect(idx.resources.filter((r) => r['@type'].startsWith('RegistrationsBaseUrl'))).toEqual([
      { '@id': `${BASE}v3/registration/gz-semver1/`, '@type': 'RegistrationsBaseUrl/3.4.0' },
    ]);
  });
});

describe('render', () => {
  it('replaces every placeholder occurrence with the public base', () => {
    const stored = JSON.stringify(buildServiceIndex(capabilitiesOf(parseServiceIndex(captured('nuget.org/service-index.2023.json')))));
    const n = stored.split(BASE).length - 1;
    expect(n).toBeGreaterThan(10);
    const out = render(stored, 'https://proxy.example/nuget/');
    expect(out).not.toContain(BASE);
    expect(out.split('https://proxy.example/nuget/').length - 1).toBe(n);
    const doc = JSON.parse(out) as { resources: { '@id': string }[] };
    for (const r of doc.resources) expect(r['@id'].startsWith('https://proxy.example/nuget/v3/')).toBe(true);
  });

  it('inserts the public base literally, even with "$" patterns in it', () => {
    const stored = `{"a":"${BASE}v3/flat/","b":"${BASE}v3/query"}`;
    expect(render(stored, 'https://h.example/$&/')).toBe('{"a":"https://h.example/$&/v3/flat/","b":"https://h.example/$&/v3/query"}');
    expect(render(stored, "https://h.example/$'$`$$/")).toBe(`{"a":"https://h.example/$'$\`$$/v3/flat/","b":"https://h.example/$'$\`$$/v3/query"}`);
  });

  it('leaves a document without the placeholder alone', () => {
    const s = '{"versions":["1.0.0"],"note":"https://nuproxy.invalid"}';
    expect(render(s, 'https://h.example/')).toBe(s);
  });
});
