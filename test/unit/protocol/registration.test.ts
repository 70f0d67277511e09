import { describe, expect, it } from 'vitest';
import {
  findPageFor,
  leafKey,
  pageKey,
  rewriteRegistrationIndex,
  rewriteRegistrationLeaf,
  rewriteRegistrationPage,
  type Rewritten,
} from '../../../src/protocol/registration.js';
import { BASE } from '../../../src/protocol/urls.js';
import { parseVersion, type NuGetVersion } from '../../../src/protocol/version.js';
import { captured, visit } from './captured.js';

type Json = Record<string, any>;

const ARTIFACTORY = 'https://artifactory.example';
const SLEET = 'https://github.com/moomiji/host-nuget-on-github/raw/test-commit-no-sign/';

const reg = (hive: string, lid: string): string => `${BASE}v3/registration/${hive}/${lid}/index.json`;
const leafUrl = (hive: string, lid: string, lver: string): string => `${BASE}v3/registration/${hive}/${lid}/${lver}.json`;
const nupkg = (lid: string, lver: string): string => `${BASE}v3/flat/${lid}/${lver}/${lid}.${lver}.nupkg`;

function v(s: string): NuGetVersion {
  const parsed = parseVersion(s);
  if (!parsed) throw new Error(`test setup: '${s}' should parse`);
  return parsed;
}

// Keys whose values a client may dereference, rebuilt by the rewrite (Appendix A).
const URL_KEYS = new Set(['@id', 'parent', 'registration', 'packageContent']);
// Keys whose upstream URLs stay: web pages, icons (optional), and the leaf document's catalogEntry (a catalog URL).
const KEPT_URL_KEYS = new Set(['iconUrl', 'licenseUrl', 'projectUrl', 'readmeUrl', 'advisoryUrl', 'catalogEntry']);

/**
 * The rewrite invariants over a whole document: every URL under @id (outside catalog entries), parent,
 * registration and packageContent is the proxy's; an upstream URL survives only under a key that is meant to
 * keep it, or as a catalog @id inside a catalog entry. Returns how many URLs were checked.
 */
function expectOnProxy(doc: unknown, upstream: string): number {
  let checked = 0;
  visit(doc, ({ path, key, value, inCatalog }) => {
    if (typeof value !== 'string') return;
    if (URL_KEYS.has(key) && !(key === '@id' && inCatalog)) {
      checked++;
      expect(value.startsWith(BASE), `${path} = ${value}`).toBe(true);
      expect(value, path).not.toContain(new URL(upstream).host);
    } else if (value.includes(upstream)) {
      expect(KEPT_URL_KEYS.has(key) || (key === '@id' && inCatalog), `${path} still names upstream: ${value}`).toBe(true);
    }
  });
  return checked;
}

/**
 * The document without the fields the rewrite rebuilds (URL fields outside catalog entries, and counts, which it
 * recomputes). What remains must come through unchanged: unknown fields, catalog @ids, listed/published,
 * deprecation, vulnerabilities, Sleet extras.
 */
function withoutRebuilt(x: unknown, inCatalog = false): unknown {
  if (Array.isArray(x)) return x.map((e) => withoutRebuilt(e, inCatalog));
  if (x === null || typeof x !== 'object') return x;
  const out: Json = {};
  for (const [k, val] of Object.entries(x)) {
    if (k === 'count' || k === 'parent' || k === 'registration' || k === 'packageContent') continue;
    if (k === '@id' && !inCatalog) continue;
    out[k] = withoutRebuilt(val, inCatalog || ((k === 'catalogEntry' || k === 'sleet:catalogEntry') && typeof val === 'object'));
  }
  return out;
}

const leavesOf = (index: Json): Json[] => (index.items as Json[]).flatMap((p) => (p.items as Json[] | undefined) ?? []);

describe('registration index with external pages (nuget.org, slipeserver.scripting)', () => {
  const FILE = 'nuget.org/registration-index.external-pages.slipeserver-ci-builds.json';
  const up = captured<Json>(FILE);
  const { doc, links } = rewriteRegistrationIndex(up, 'slipeserver.scripting', 'semver2');

  it('puts every URL on the proxy and keeps the rest', () => {
    expect(expectOnProxy(doc, 'https://api.nuget.org/')).toBe(5);
    expect(withoutRebuilt(doc)).toEqual(withoutRebuilt(up));
    expect(doc['@id']).toBe(reg('semver2', 'slipeserver.scripting'));
    expect(doc.commitId).toBe('5c5c9ce6-0f54-4364-ac33-a79fb8bcc6d3');
    expect(doc['@context']).toEqual(up['@context']);
  });

  it('page @ids use the lowercased normalized bounds; lower/upper and per-page counts stay as sent', () => {
    const pages = doc.items as Json[];
    expect(doc.count).toBe(4);
    expect(pages).toHaveLength(doc.count as number);
    expect(pages.map((p) => p['@id'])).toEqual([
      `${BASE}v3/registration/semver2/slipeserver.scripting/page/0.1.0-ci-20210204-180233/0.1.0-ci-20210826-172946.json`,
      `${BASE}v3/registration/semver2/slipeserver.scripting/page/0.1.0-ci-20210826-173444/0.1.0-ci-20220325-002917.json`,
      `${BASE}v3/registration/semver2/slipeserver.scripting/page/0.1.0-ci-20220325-215611/0.1.0-ci-20220807-160739.json`,
      `${BASE}v3/registration/semver2/slipeserver.scripting/page/0.1.0-ci-20221013-182634/0.1.0-ci-20221120-180516.json`,
    ]);
    expect(pages.map((p) => [p.lower, p.count])).toEqual([
      ['0.1.0-CI-20210204-180233', 64],
      ['0.1.0-CI-20210826-173444', 64],
      ['0.1.0-CI-20220325-215611', 64],
      ['0.1.0-CI-20221013-182634', 42],
    ]);
    for (const p of pages) {
      expect(p.items).toBeUndefined();
      expect(p.parent).toBeUndefined();
    }
  });

  it('remembers each external page under page:<lo>/<up>, with the exact upstream URL', () => {
    const upPages = up.items as Json[];
    expect(links).toEqual({
      'page:0.1.0-ci-20210204-180233/0.1.0-ci-20210826-172946': upPages[0]!['@id'],
      'page:0.1.0-ci-20210826-173444/0.1.0-ci-20220325-002917': upPages[1]!['@id'],
      'page:0.1.0-ci-20220325-215611/0.1.0-ci-20220807-160739': upPages[2]!['@id'],
      'page:0.1.0-ci-20221013-182634/0.1.0-ci-20221120-180516': upPages[3]!['@id'],
    });
    expect(links[pageKey('0.1.0-ci-20221013-182634', '0.1.0-ci-20221120-180516')]).toBe(
      'https://api.nuget.org/v3/registration5-gz-semver2/slipeserver.scripting/page/0.1.0-ci-20221013-182634/0.1.0-ci-20221120-180516.json',
    );
  });

  it('findPageFor: the page whose bounds (inclusive, case-insensitive) hold the version; undefined outside', () => {
    expect(findPageFor(links, v('0.1.0-CI-20210500-000000'))).toBe('page:0.1.0-ci-20210204-180233/0.1.0-ci-20210826-172946');
    expect(findPageFor(links, v('0.1.0-ci-20210204-180233'))).toBe('page:0.1.0-ci-20210204-180233/0.1.0-ci-20210826-172946');
    expect(findPageFor(links, v('0.1.0-CI-20210826-173444'))).toBe('page:0.1.0-ci-20210826-173444/0.1.0-ci-20220325-002917');
    expect(findPageFor(links, v('0.1.0-CI-20221120-180516'))).toBe('page:0.1.0-ci-20221013-182634/0.1.0-ci-20221120-180516');
    expect(findPageFor(links, v('0.1.0-CI-20221120-180516+build.7'))).toBe('page:0.1.0-ci-20221013-182634/0.1.0-ci-20221120-180516');
    // between page 3 (up to 2022-08-07) and page 4 (from 2022-10-13)
    expect(findPageFor(links, v('0.1.0-CI-20220901-000000'))).toBeUndefined();
    expect(findPageFor(links, v('0.1.0-CI-20210204-180232'))).toBeUndefined();
    expect(findPageFor(links, v('0.1.0'))).toBeUndefined(); // the release sorts above every 0.1.0-CI prerelease
    expect(findPageFor(links, v('0.0.9'))).toBeUndefined();
    expect(findPageFor({ 'leaf:1.0.0': 'https://x/1.0.0.json' }, v('1.0.0'))).toBeUndefined();
  });
});

describe('registration index with external pages (Artifactory, host-templated)', () => {
  const up = captured<Json>('artifactory/registration-index.external-pages.semver2.json', ARTIFACTORY);
  const { doc, links } = rewriteRegistrationIndex(up, 'microsoft.data.sqlclient', 'semver2');

  it('rebuilds page URLs from the bounds ("1.0.19123.2-Preview" -> lowercase) and remembers the upstream ones', () => {
    expect(expectOnProxy(doc, ARTIFACTORY)).toBe(3);
    expect(withoutRebuilt(doc)).toEqual(withoutRebuilt(up));
    expect((doc.items as Json[]).map((p) => p['@id'])).toEqual([
      `${BASE}v3/registration/semver2/microsoft.data.sqlclient/page/1.0.19123.2-preview/5.1.0.json`,
      `${BASE}v3/registration/semver2/microsoft.data.sqlclient/page/5.1.1/6.1.0.json`,
    ]);
    expect(doc.count).toBe(2);
    expect(links).toEqual({
      'page:1.0.19123.2-preview/5.1.0': `${ARTIFACTORY}/artifactory/api/nuget/v3/nuget-repo/registration-semver2/microsoft.data.sqlclient/page/1.0.19123.2-preview/5.1.0.json`,
      'page:5.1.1/6.1.0': `${ARTIFACTORY}/artifactory/api/nuget/v3/nuget-repo/registration-semver2/microsoft.data.sqlclient/page/5.1.1/6.1.0.json`,
    });
    expect(findPageFor(links, v('5.0.0-preview1.22069.1'))).toBe('page:1.0.19123.2-preview/5.1.0');
    expect(findPageFor(links, v('6.0.1'))).toBe('page:5.1.1/6.1.0');
    expect(findPageFor(links, v('6.1.1'))).toBeUndefined();
  });
});

interface InlinedCase {
  file: string;
  lid: string;
  hive: string;
  upstream: string;
  leaves: number;
  bounds: [string, string];
}

const INLINED: InlinedCase[] = [
  { file: 'sleet/registration-index.inlined.mstest.json', lid: 'mstest', hive: 'gz-semver1', upstream: SLEET, leaves: 5, bounds: ['3.6.0', '3.7.0-preview.24501.5'] },
  {
    file: 'nuget.org/registration-index.registration3.microsoft-extensions-dependencymodel.unlisted-1900.json',
    lid: 'microsoft.extensions.dependencymodel',
    hive: 'semver1',
    upstream: 'https://api.nuget.org/',
    leaves: 22,
    bounds: ['0.0.1-alpha', '2.2.0-preview2-26406-04'],
  },
  {
    file: 'nuget.org/registration-index.prerelease-only.opentelemetry-sqlclient.TRIMMED.json',
    lid: 'opentelemetry.instrumentation.sqlclient',
    hive: 'semver2',
    upstream: 'https://api.nuget.org/',
    leaves: 17,
    bounds: ['0.3.0-beta.1', '1.12.0-beta.2'],
  },
];

describe.each(INLINED)('registration index with an inlined page: $file', (c) => {
  const up = captured<Json>(c.file);
  const { doc, links } = rewriteRegistrationIndex(up, c.lid, c.hive);
  const leaves = leavesOf(doc);

  it('puts every URL on the proxy and keeps everything else unchanged', () => {
    // index @id, page @id + parent, and per leaf: @id, registration, packageContent twice, dependency registrations
    expect(expectOnProxy(doc, c.upstream)).toBeGreaterThanOrEqual(3 + 4 * c.leaves);
    expect(withoutRebuilt(doc)).toEqual(withoutRebuilt(up));
  });

  it('page: fragment @id from its bounds, parent = index, count = number of leaves; index count = pages', () => {
    const index = reg(c.hive, c.lid);
    expect(doc['@id']).toBe(index);
    expect(doc.count).toBe(1);
    const page = (doc.items as Json[])[0]!;
    expect(page['@id']).toBe(`${index}#page/${c.bounds[0]}/${c.bounds[1]}`);
    expect(page.parent).toBe(index);
    expect([page.lower, page.upper]).toEqual(c.bounds);
    expect(page.items).toHaveLength(c.leaves);
    expect(page.count).toBe(c.leaves);
  });

  it('leaves: @id, registration and both packageContent copies rebuilt from id and version', () => {
    const upLeaves = leavesOf(up);
    expect(leaves).toHaveLength(upLeaves.length);
    leaves.forEach((leaf, i) => {
      const lver = (leaf.catalogEntry.version as string).toLowerCase();
      expect(leaf['@id']).toBe(leafUrl(c.hive, c.lid, lver));
      expect(leaf.registration).toBe(reg(c.hive, c.lid));
      expect(leaf.packageContent).toBe(nupkg(c.lid, lver));
      expect(leaf.catalogEntry.packageContent).toBe(nupkg(c.lid, lver));
      // the catalog @id stays upstream (Appendix A)
      expect(leaf.catalogEntry['@id']).toBe(upLeaves[i]!.catalogEntry['@id']);
      expect(leaf.catalogEntry['@id'].startsWith(BASE)).toBe(false);
    });
  });

  it('links: every leaf under leaf:<ver> (exact upstream URL); an inlined page has no upstream document to remember', () => {
    const upLeaves = leavesOf(up);
    expect(Object.keys(links).filter((k) => k.startsWith('page:'))).toEqual([]);
    expect(Object.keys(links)).toHaveLength(upLeaves.length);
    for (const l of upLeaves) expect(links[leafKey((l.catalogEntry.version as string).toLowerCase())]).toBe(l['@id']);
    expect(findPageFor(links, v(c.bounds[0]))).toBeUndefined();
  });
});

describe('registration index: captured specifics', () => {
  it('registration3: the unlisted 0.0.1-alpha keeps listed:false and published 1900; dependencies point at the hive', () => {
    const up = captured<Json>('nuget.org/registration-index.registration3.microsoft-extensions-dependencymodel.unlisted-1900.json');
    const { doc } = rewriteRegistrationIndex(up, 'microsoft.extensions.dependencymodel', 'semver1');
    const leaves = leavesOf(doc);
    const alpha = leaves.find((l) => l.catalogEntry.version === '0.0.1-alpha')!;
    expect(alpha.catalogEntry.listed).toBe(false);
    expect(alpha.catalogEntry.published).toBe('1900-01-01T00:00:00+00:00');
    expect(leaves.filter((l) => l.catalogEntry.listed === false)).toHaveLength(1);
    const deps = leaves.flatMap((l) => (l.catalogEntry.dependencyGroups ?? []).flatMap((g: Json) => g.dependencies ?? []));
    expect(deps.length).toBeGreaterThan(50);
    for (const d of deps) expect(d.registration).toBe(reg('semver1', (d.id as string).toLowerCase()));
    expect(deps.find((d) => d.id === 'Newtonsoft.Json')?.registration).toBe(`${BASE}v3/registration/semver1/newtonsoft.json/index.json`);
    // the page count said 31 but only 22 leaves were kept in the fixture: the rewrite counts what it serves
    expect((up.items as Json[])[0]!.count).toBe(31);
    expect((doc.items as Json[])[0]!.count).toBe(22);
  });

  it('opentelemetry (SemVer 2 prereleases only): "1.0.0-rc9.10" sorts and links like the client expects', () => {
    const up = captured<Json>('nuget.org/registration-index.prerelease-only.opentelemetry-sqlclient.TRIMMED.json');
    const { doc, links } = rewriteRegistrationIndex(up, 'opentelemetry.instrumentation.sqlclient', 'semver2');
    expect(links['leaf:1.0.0-rc9.10']).toBe('https://api.nuget.org/v3/registration5-gz-semver2/opentelemetry.instrumentation.sqlclient/1.0.0-rc9.10.json');
    const leaf = leavesOf(doc).find((l) => l.catalogEntry.version === '1.0.0-rc9.10')!;
    expect(leaf['@id']).toBe(leafUrl('semver2', 'opentelemetry.instrumentation.sqlclient', '1.0.0-rc9.10'));
  });

  it('sleet: virtualcatalog @ids and fragment @ids of dependency groups stay; iconUrl (upstream flat container) stays', () => {
    const up = captured<Json>('sleet/registration-index.inlined.mstest.json');
    const { doc } = rewriteRegistrationIndex(up, 'mstest', 'gz-semver1');
    const leaf = leavesOf(doc)[0]!;
    expect(leaf.catalogEntry['@id']).toMatch(new RegExp(`^${SLEET}virtualcatalog/data/`));
    expect(leaf.catalogEntry.dependencyGroups[0]['@id']).toMatch(/#dependencygroup\/net462$/);
    expect(leaf.catalogEntry.dependencyGroups[0].dependencies[0]).toEqual(leavesOf(up)[0]!.catalogEntry.dependencyGroups[0].dependencies[0]);
    expect(leaf.catalogEntry.iconUrl).toBe(`${SLEET}flatcontainer/mstest/3.6.0/icon`);
  });
});

interface PageCase {
  file: string;
  host?: string;
  lid: string;
  hive: string;
  upstream: string;
  bounds: [string, string];
  leaves: number;
}

const PAGES: PageCase[] = [
  {
    file: 'nuget.org/registration-page.slipeserver-ci-builds.last.json',
    lid: 'slipeserver.scripting',
    hive: 'semver2',
    upstream: 'https://api.nuget.org/',
    bounds: ['0.1.0-ci-20221013-182634', '0.1.0-ci-20221120-180516'],
    leaves: 42,
  },
  {
    file: 'artifactory/registration-page.semver2.page1.json',
    host: ARTIFACTORY,
    lid: 'microsoft.data.sqlclient',
    hive: 'semver2',
    upstream: ARTIFACTORY,
    bounds: ['1.0.19123.2-preview', '5.1.0'],
    leaves: 8,
  },
  {
    file: 'nuget.org/registration-page.docs-sample.json',
    lid: 'nuget.protocol.v3.example',
    hive: 'semver2',
    upstream: 'https://api.nuget.org/',
    bounds: ['1.0.531', '1.0.729-unstable'],
    leaves: 2,
  },
];

describe.each(PAGES)('registration page: $file', (c) => {
  const up = captured<Json>(c.file, c.host);
  const { doc, links } = rewriteRegistrationPage(up, c.lid, c.hive, c.bounds[0], c.bounds[1]);

  it('puts every URL on the proxy and keeps everything else unchanged', () => {
    expect(expectOnProxy(doc, c.upstream)).toBeGreaterThanOrEqual(2 + 4 * c.leaves);
    expect(withoutRebuilt(doc)).toEqual(withoutRebuilt(up));
  });

  it('@id is the proxy page URL, parent the proxy index, count the leaves', () => {
    expect(doc['@id']).toBe(`${BASE}v3/registration/${c.hive}/${c.lid}/page/${c.bounds[0]}/${c.bounds[1]}.json`);
    expect(doc.parent).toBe(reg(c.hive, c.lid));
    expect(doc.items).toHaveLength(c.leaves);
    expect(doc.count).toBe(c.leaves);
  });

  it('leaves: rebuilt URLs; links map each lowercased version to the upstream leaf URL', () => {
    const upLeaves = up.items as Json[];
    expect(Object.keys(links)).toHaveLength(c.leaves);
    (doc.items as Json[]).forEach((leaf, i) => {
      const lver = (leaf.catalogEntry.version as string).toLowerCase();
      expect(leaf['@id']).toBe(leafUrl(c.hive, c.lid, lver));
      expect(leaf.packageContent).toBe(nupkg(c.lid, lver));
      expect(leaf.catalogEntry.packageContent).toBe(leaf.packageContent);
      expect(leaf.registration).toBe(reg(c.hive, c.lid));
      expect(links[leafKey(lver)]).toBe(upLeaves[i]!['@id']);
    });
  });
});

describe('registration page: captured specifics', () => {
  it('Artifactory: "Download/<id>/<ver>" and doubled "registration-semver2/registration-semver2/" come out in the proxy shape', () => {
    const up = captured<Json>('artifactory/registration-page.semver2.page1.json', ARTIFACTORY);
    const { doc, links } = rewriteRegistrationPage(up, 'microsoft.data.sqlclient', 'semver2', '1.0.19123.2-preview', '5.1.0');
    const first = (doc.items as Json[])[0]!;
    expect((up.items as Json[])[0]!.packageContent).toBe(`${ARTIFACTORY}/artifactory/api/nuget/v3/nuget-repo/registration-semver2/Download/microsoft.data.sqlclient/1.0.19123.2-preview`);
    expect(first.packageContent).toBe(nupkg('microsoft.data.sqlclient', '1.0.19123.2-preview'));
    expect(first.catalogEntry.version).toBe('1.0.19123.2-Preview');
    expect(first.catalogEntry.dependencyGroups[0].dependencies[0]).toEqual({
      range: '[4.3.0, )',
      registration: `${BASE}v3/registration/semver2/system.data.common/index.json`,
      id: 'System.Data.Common',
    });
    // the leaf is fetched from where Artifactory says it is, doubled segment and all
    expect(links['leaf:1.0.19123.2-preview']).toBe(
      `${ARTIFACTORY}/artifactory/api/nuget/v3/nuget-repo/registration-semver2/registration-semver2/microsoft.data.sqlclient/1.0.19123.2-preview.json`,
    );
    // deprecation (no @id on Artifactory) kept as is
    expect(first.catalogEntry.deprecation).toEqual((up.items as Json[])[0]!.catalogEntry.deprecation);
    expect(first.catalogEntry.deprecation.reasons).toEqual(['CriticalBugs']);
  });

  it('docs sample: unlisted (published 1900) and deprecation with alternatePackage kept; "1.0.729-Unstable" -> lowercase URLs', () => {
    const up = captured<Json>('nuget.org/registration-page.docs-sample.json');
    expect(up['@id']).toBeUndefined();
    const { doc } = rewriteRegistrationPage(up, 'nuget.protocol.v3.example', 'semver2', '1.0.531', '1.0.729-unstable');
    const [a, b] = doc.items as Json[];
    expect(a!.catalogEntry.listed).toBe(false);
    expect(a!.catalogEntry.published).toBe('1900-01-01T00:00:00+00:00');
    expect(b!.catalogEntry.deprecation).toEqual({ reasons: ['CriticalBugs'], message: 'This package is unstable and broken!', alternatePackage: { id: 'Newtonsoft.JSON', range: '12.0.2' } });
    expect(b!['@id']).toBe(leafUrl('semver2', 'nuget.protocol.v3.example', '1.0.729-unstable'));
    expect(b!.packageContent).toBe(nupkg('nuget.protocol.v3.example', '1.0.729-unstable'));
    expect(doc.lower).toBe('1.0.531');
    expect(doc.upper).toBe('1.0.729-unstable');
  });

  it('slipeserver last page: leaf:<ver> keys are lowercase for the "0.1.0-CI-..." versions', () => {
    const up = captured<Json>('nuget.org/registration-page.slipeserver-ci-builds.last.json');
    const { links } = rewriteRegistrationPage(up, 'slipeserver.scripting', 'semver2', '0.1.0-ci-20221013-182634', '0.1.0-ci-20221120-180516');
    expect(links['leaf:0.1.0-ci-20221120-180516']).toBe('https://api.nuget.org/v3/registration5-gz-semver2/slipeserver.scripting/0.1.0-ci-20221120-180516.json');
    expect(Object.keys(links).every((k) => k === k.toLowerCase())).toBe(true);
  });
});

interface LeafCase {
  file: string;
  lid: string;
  lver: string;
  hive: string;
  upstream: string;
}

const LEAVES: LeafCase[] = [
  { file: 'nuget.org/registration-leaf.docs-sample.json', lid: 'nuget.versioning', lver: '4.3.0', hive: 'semver2', upstream: 'https://api.nuget.org/' },
  { file: 'azure-artifacts/registration-leaf.host-rewritten.json', lid: 'nugetprivate', lver: '5.0.2', hive: 'semver1', upstream: 'http://localhost:1080/' },
  { file: 'sleet/registration-leaf.mstest.3.6.0.json', lid: 'mstest', lver: '3.6.0', hive: 'gz-semver1', upstream: SLEET },
];

describe.each(LEAVES)('registration leaf document: $file', (c) => {
  const up = captured<Json>(c.file);
  const r: Rewritten = rewriteRegistrationLeaf(up, c.lid, c.lver, c.hive);
  const doc = r.doc as Json;

  it('@id, registration and packageContent on the proxy; catalogEntry (a catalog URL) and the rest unchanged', () => {
    expect(expectOnProxy(doc, c.upstream)).toBeGreaterThanOrEqual(3);
    expect(withoutRebuilt(doc)).toEqual(withoutRebuilt(up));
    expect(doc['@id']).toBe(leafUrl(c.hive, c.lid, c.lver));
    expect(doc.registration).toBe(reg(c.hive, c.lid));
    expect(doc.packageContent).toBe(nupkg(c.lid, c.lver));
    expect(doc.catalogEntry).toBe(up.catalogEntry);
    expect(doc.listed).toBe(up.listed);
    expect(doc.published).toBe(up.published);
    expect(doc['@context']).toEqual(up['@context']);
    expect(r.links).toEqual({});
  });
});

describe('registration leaf document: Sleet embeds the catalog entry', () => {
  it('sleet:catalogEntry.packageContent is rewritten too; sleet:* fields and its catalog @ids stay', () => {
    const up = captured<Json>('sleet/registration-leaf.mstest.3.6.0.json');
    const { doc } = rewriteRegistrationLeaf(up, 'mstest', '3.6.0', 'gz-semver1');
    const ce = doc['sleet:catalogEntry'] as Json;
    expect(up['sleet:catalogEntry'].packageContent).toBe(`${SLEET}flatcontainer/mstest/3.6.0/mstest.3.6.0.nupkg`);
    expect(ce.packageContent).toBe(nupkg('mstest', '3.6.0'));
    expect(ce['sleet:operation']).toBe('add');
    expect(ce['sleet:toolVersion']).toBe('6.1.0');
    expect(ce['@id']).toBe(up['sleet:catalogEntry']['@id']);
    expect(ce.dependencyGroups).toEqual(up['sleet:catalogEntry'].dependencyGroups);
  });
});

describe('registration rewrite: synthetic edge cases', () => {
  const U = 'https://up.example/reg/';
  const leaf = (id: unknown, version: unknown, extra: Json = {}): Json => ({
    '@id': `${U}x/${String(version)}.json`,
    catalogEntry: { '@id': `https://up.example/catalog/${String(version)}.json`, id, version, packageContent: `https://up.example/x.${String(version)}.nupkg` },
    packageContent: `https://up.example/x.${String(version)}.nupkg`,
    registration: `${U}x/index.json`,
    ...extra,
  });

  it('drops leaves whose version does not parse, whose id is invalid, or that have no catalogEntry object', () => {
    const page = {
      lower: '1.0.0',
      upper: '3.0.0',
      items: [
        leaf('X', '1.0.0'),
        leaf('X', '1.0.0-beta.01'), // numeric identifier with a leading zero: invalid
        leaf('X', 'not-a-version'),
        leaf('X', ''),
        leaf('X', 2),
        leaf('Bad Id', '2.0.0'),
        { '@id': `${U}x/2.5.0.json`, catalogEntry: `https://up.example/catalog/2.5.0.json` },
        { '@id': `${U}x/2.6.0.json` },
        'garbage',
        leaf('X', '3.0.0+sha.1'),
      ],
    };
    const { doc, links } = rewriteRegistrationIndex({ count: 1, items: [page] }, 'x', 'semver2');
    const leaves = leavesOf(doc);
    expect(leaves.map((l) => l.catalogEntry.version)).toEqual(['1.0.0', '3.0.0+sha.1']);
    expect(leaves[1]!['@id']).toBe(leafUrl('semver2', 'x', '3.0.0'));
    expect((doc.items as Json[])[0]!.count).toBe(2);
    expect(Object.keys(links).sort()).toEqual(['leaf:1.0.0', 'leaf:3.0.0']);

    const p = rewriteRegistrationPage({ items: page.items }, 'x', 'semver2', '1.0.0', '3.0.0');
    expect((p.doc.items as Json[]).map((l) => l.catalogEntry.version)).toEqual(['1.0.0', '3.0.0+sha.1']);
    expect(p.doc.count).toBe(2);
  });

  it('drops pages whose bounds do not parse and inlined pages left without leaves; count follows', () => {
    const { doc, links } = rewriteRegistrationIndex(
      {
        count: 5,
        items: [
          { '@id': `${U}x/page/a/b.json`, lower: 'a', upper: 'b', count: 3 },
          { '@id': `${U}x/page/1.0.0.json`, lower: '1.0.0', count: 3 },
          { '@id': `${U}x/index.json#page/2.0.0/2.0.0`, lower: '2.0.0', upper: '2.0.0', count: 1, items: [leaf('X', '2.0.0-01')] },
          { '@id': `${U}x/page/3.0.0/4.0.0.json`, lower: '3.0.0', upper: '4.0.0', count: 64 },
          'garbage',
        ],
      },
      'x',
      'semver2',
    );
    expect(doc.count).toBe(1);
    expect((doc.items as Json[]).map((p) => p['@id'])).toEqual([`${BASE}v3/registration/semver2/x/page/3.0.0/4.0.0.json`]);
    expect(links).toEqual({ 'page:3.0.0/4.0.0': `${U}x/page/3.0.0/4.0.0.json` });
  });

  it('an external page that carries a parent gets the proxy index as parent', () => {
    const { doc } = rewriteRegistrationIndex(
      { count: 1, items: [{ '@id': `${U}x/page/1.0.0/2.0.0.json`, lower: '1.0.0', upper: '2.0.0', count: 2, parent: `${U}x/index.json` }] },
      'x',
      'semver2',
    );
    expect((doc.items as Json[])[0]!.parent).toBe(reg('semver2', 'x'));
  });

  it('normalizes bounds for URLs and keys: "1.0" -> 1.0.0, "1.00.01.0-RC.1" -> 1.0.1-rc.1, metadata dropped', () => {
    const { doc, links } = rewriteRegistrationIndex(
      { count: 1, items: [{ '@id': `${U}x/page/odd.json`, lower: '1.0', upper: '1.00.01.0-RC.1+meta', count: 2 }] },
      'x',
      'semver2',
    );
    expect((doc.items as Json[])[0]!['@id']).toBe(`${BASE}v3/registration/semver2/x/page/1.0.0/1.0.1-rc.1.json`);
    expect(links).toEqual({ 'page:1.0.0/1.0.1-rc.1': `${U}x/page/odd.json` });
    expect(findPageFor(links, v('1.0.1-rc.0'))).toBe('page:1.0.0/1.0.1-rc.1');
    expect(findPageFor(links, v('1.0.1-rc.2'))).toBeUndefined();
  });

  it('a dependency registration is rebuilt from its id; one with an id the proxy cannot serve loses it rather than leak', () => {
    const l = leaf('X', '1.0.0');
    l.catalogEntry.dependencyGroups = [
      {
        '@id': 'https://up.example/catalog/1.0.0.json#dependencygroup',
        dependencies: [
          { '@id': 'https://up.example/catalog/1.0.0.json#dependencygroup/a', id: 'A.B', range: '[1.0.0, )', registration: 'https://up.example/reg/a.b/index.json' },
          { id: 'Not valid!', range: '[1.0.0, )', registration: 'https://up.example/reg/not%20valid!/index.json' },
          { id: 'NoReg', range: '1.0.0' },
        ],
      },
      { targetFramework: 'net8.0' },
    ];
    const { doc } = rewriteRegistrationPage({ items: [l] }, 'x', 'gz-semver1', '1.0.0', '1.0.0');
    const groups = (doc.items as Json[])[0]!.catalogEntry.dependencyGroups as Json[];
    expect(groups[0]!['@id']).toBe('https://up.example/catalog/1.0.0.json#dependencygroup');
    expect(groups[0]!.dependencies).toEqual([
      { '@id': 'https://up.example/catalog/1.0.0.json#dependencygroup/a', id: 'A.B', range: '[1.0.0, )', registration: reg('gz-semver1', 'a.b') },
      { id: 'Not valid!', range: '[1.0.0, )' },
      { id: 'NoReg', range: '1.0.0' },
    ]);
    expect(groups[1]).toEqual({ targetFramework: 'net8.0' });
  });

  it('a leaf without packageContent in its catalogEntry does not gain one; the leaf itself always has it', () => {
    const l = leaf('X', '1.0.0');
    delete l.catalogEntry.packageContent;
    delete l.packageContent;
    const { doc } = rewriteRegistrationPage({ items: [l] }, 'x', 'semver2', '1.0.0', '1.0.0');
    const out = (doc.items as Json[])[0]!;
    expect(out.packageContent).toBe(nupkg('x', '1.0.0'));
    expect('packageContent' in out.catalogEntry).toBe(false);
  });

  it('does not modify its input', () => {
    const up = captured<Json>('sleet/registration-index.inlined.mstest.json');
    const before = JSON.stringify(up);
    rewriteRegistrationIndex(up, 'mstest', 'gz-semver1');
    expect(JSON.stringify(up)).toBe(before);
    const leafDoc = captured<Json>('sleet/registration-leaf.mstest.3.6.0.json');
    const leafBefore = JSON.stringify(leafDoc);
    rewriteRegistrationLeaf(leafDoc, 'mstest', '3.6.0', 'gz-semver1');
    expect(JSON.stringify(leafDoc)).toBe(leafBefore);
  });
});
