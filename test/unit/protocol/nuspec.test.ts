import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dependenciesFor, nearestGroup, parseFramework, parseNuspecDependencies, scanXml } from '../../../src/protocol/nuspec.js';
import { makeNuspecXml, parseNuspec } from '../../support/nupkg.js';
import { findRealPackagesDir } from '../../support/real-packages.js';
import { needTool } from '../../support/need.js';

const NS = 'http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd';

function nuspec(deps: string, extra = ''): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<package xmlns="${NS}">
  <metadata>
    <id>My.Package</id>
    <version>1.2.3-beta.1</version>
    ${extra}
    ${deps}
  </metadata>
</package>`;
}

describe('parseNuspecDependencies', () => {
  it('reads id, version and target framework groups', () => {
    const xml = makeNuspecXml({
      id: 'A',
      version: '1.0.0',
      dependencyGroups: [
        { targetFramework: 'net8.0', dependencies: [{ id: 'B', range: '[1.0, )' }] },
        { targetFramework: '.NETStandard2.0', dependencies: [{ id: 'C', range: '[2.0]' }, { id: 'D', range: '3.0' }] },
        { targetFramework: 'net462', dependencies: [] },
      ],
    });
    expect(parseNuspecDependencies(xml)).toEqual({
      id: 'A',
      version: '1.0.0',
      groups: [
        { targetFramework: 'net8.0', dependencies: [{ id: 'B', range: '[1.0, )' }] },
        { targetFramework: '.NETStandard2.0', dependencies: [{ id: 'C', range: '[2.0]' }, { id: 'D', range: '3.0' }] },
        { targetFramework: 'net462', dependencies: [] },
      ],
    });
  });

  it('flat <dependencies> without groups form one group for any framework', () => {
    const r = parseNuspecDependencies(
      nuspec(`<dependencies>
        <dependency id="B" version="[1.0]" />
        <dependency id="C" version="2.0" exclude="Build,Analyzers" include="Compile"></dependency>
      </dependencies>`),
    );
    expect(r).toEqual({
      id: 'My.Package',
      version: '1.2.3-beta.1',
      groups: [{ dependencies: [{ id: 'B', range: '[1.0]' }, { id: 'C', range: '2.0', exclude: 'Build,Analyzers', include: 'Compile' }] }],
    });
  });

  it('no <dependencies>, an empty one, or a self-closing one: no groups', () => {
    expect(parseNuspecDependencies(nuspec('')).groups).toEqual([]);
    expect(parseNuspecDependencies(nuspec('<dependencies></dependencies>')).groups).toEqual([]);
    expect(parseNuspecDependencies(nuspec('<dependencies />')).groups).toEqual([]);
  });

  it('when groups exist, flat dependencies beside them are ignored (as NuspecReader)', () => {
    const r = parseNuspecDependencies(
      nuspec(`<dependencies>
        <dependency id="Ignored" version="1.0" />
        <group targetFramework="net8.0"><dependency id="B" version="1.0" /></group>
      </dependencies>`),
    );
    expect(r.groups).toEqual([{ targetFramework: 'net8.0', dependencies: [{ id: 'B', range: '1.0' }] }]);
  });

  it('namespace prefixes on elements and attributes', () => {
    const xml = `<?xml version="1.0"?>
<nu:package xmlns:nu="${NS}">
  <nu:metadata>
    <nu:id>Prefixed</nu:id>
    <nu:version>2.0.0</nu:version>
    <nu:dependencies>
      <nu:group nu:targetFramework="netstandard2.0">
        <nu:dependency nu:id="X" nu:version="[1.0,2.0)"/>
      </nu:group>
    </nu:dependencies>
  </nu:metadata>
</nu:package>`;
    expect(parseNuspecDependencies(xml)).toEqual({
      id: 'Prefixed',
      version: '2.0.0',
      groups: [{ targetFramework: 'netstandard2.0', dependencies: [{ id: 'X', range: '[1.0,2.0)' }] }],
    });
  });

  it('self-closing groups, attribute order, single quotes, missing version, whitespace', () => {
    const r = parseNuspecDependencies(
      nuspec(`<dependencies>
        <group targetFramework='net6.0'/>
        <group
            targetFramework = ".NETFramework4.6.2" >
          <dependency version='[1.0.0]'   id='Single.Quoted'/>
          <dependency id="NoVersion"/>
          <dependency version="1.0" />
        </group>
        <group><dependency id="AnyFw" version="3.0"/></group>
        <group targetFramework=""><dependency id="EmptyFw" version="3.0"/></group>
      </dependencies>`),
    );
    expect(r.groups).toEqual([
      { targetFramework: 'net6.0', dependencies: [] },
      {
        targetFramework: '.NETFramework4.6.2',
        dependencies: [
          { id: 'Single.Quoted', range: '[1.0.0]' },
          { id: 'NoVersion', range: '' },
        ],
      },
      { dependencies: [{ id: 'AnyFw', range: '3.0' }] },
      { dependencies: [{ id: 'EmptyFw', range: '3.0' }] },
    ]);
  });

  it('decodes entities and ignores markup in comments, CDATA and text', () => {
    const r = parseNuspecDependencies(
      '\uFEFF' +
        nuspec(
          `<!-- <dependencies><dependency id="InComment" version="1.0"/></dependencies> -->
          <dependencies>
            <group targetFramework="net8.0&#45;windows">
              <dependency id="A&amp;B" version="&#91;1.0, 2.0&#x29;" exclude="a&gt;b" />
              <dependency id="Gt" version="1.0" exclude="x>y" />
            </group>
          </dependencies>`,
          `<description><![CDATA[ <dependency id="InCdata" version="1.0"/> ]]> &lt;dependency id="InText"/&gt;</description>
           <summary>1 &lt; 2</summary>`,
        ),
    );
    expect(r.groups).toEqual([
      {
        targetFramework: 'net8.0-windows',
        dependencies: [
          { id: 'A&B', range: '[1.0, 2.0)', exclude: 'a>b' },
          { id: 'Gt', range: '1.0', exclude: 'x>y' },
        ],
      },
    ]);
  });

  it('id and version come from metadata only (not from nested elements of the same name)', () => {
    const xml = `<package><metadata minClientVersion="2.12">
      <repository type="git" url="https://x" />
      <id> Spaced.Id </id><version>
        1.0.0
      </version>
      <packageTypes><packageType name="Dependency" version="9.9.9" /></packageTypes>
    </metadata></package>`;
    expect(parseNuspecDependencies(xml)).toEqual({ id: 'Spaced.Id', version: '1.0.0', groups: [] });
  });

  it('throws on something that is not a nuspec', () => {
    expect(() => parseNuspecDependencies('<package><metadata><version>1.0</version></metadata></package>')).toThrow(/<id>/);
    expect(() => parseNuspecDependencies('<package><metadata><id>A</id></metadata></package>')).toThrow(/<version>/);
    expect(() => parseNuspecDependencies('{"not":"xml"}')).toThrow(/<id>/);
    expect(() => parseNuspecDependencies('<package><metadata><id>A</id><!-- never closed')).toThrow(/not well-formed.*line 1/);
    expect(() => parseNuspecDependencies('<package>\n<metadata><id>A</id><version a="1.0')).toThrow(/unterminated start tag at line 2/);
  });

  it('scanXml reports tags in order, with local names', () => {
    const tokens = scanXml('<?xml version="1.0"?><!DOCTYPE x [ <!ENTITY e "v"> ]><a:x b:y="1" z=\'2\'><c/>t</a:x>');
    expect(tokens.map((t) => (t.kind === 'text' ? `text:${t.text}` : t.kind === 'open' ? `open:${t.name}:${JSON.stringify(t.attrs)}:${t.selfClosing}` : `close:${t.name}`))).toEqual([
      'open:x:{"y":"1","z":"2"}:false',
      'open:c:{}:true',
      'text:t',
      'close:x',
    ]);
  });
});

describe('target frameworks and the nearest dependency group', () => {
  it.each([
    ['net8.0', 'netcore', [8], ''],
    ['net8.0-windows10.0.19041', 'netcore', [8], 'windows'],
    ['.NETCoreApp3.1', 'netcore', [3, 1], ''],
    ['netcoreapp2.1', 'netcore', [2, 1], ''],
    ['net462', 'netfx', [4, 6, 2], ''],
    ['.NETFramework4.6.2', 'netfx', [4, 6, 2], ''],
    ['net45', 'netfx', [4, 5], ''],
    ['.NETFramework2.0', 'netfx', [2], ''],
    ['netstandard2.0', 'netstandard', [2], ''],
    ['.NETStandard1.1', 'netstandard', [1, 1], ''],
    ['native0.0', 'native', [0], ''],
    ['.NETPortable0.0-Profile259', 'netportable', [0], 'profile259'],
  ])('parseFramework(%s)', (moniker, family, version, platform) => {
    expect(parseFramework(moniker)).toMatchObject({ family, version, platform });
  });

  const xunitExtensibilityCore = [
    { targetFramework: '.NETFramework4.5.2', dependencies: [{ id: 'xunit.abstractions', range: '2.0.3' }] },
    {
      targetFramework: '.NETStandard1.1',
      dependencies: [
        { id: 'NETStandard.Library', range: '1.6.1' },
        { id: 'xunit.abstractions', range: '2.0.3' },
      ],
    },
    { targetFramework: '.NETStandard2.0', dependencies: [{ id: 'xunit.abstractions', range: '2.0.3' }] },
  ];
  const immutable = ['.NETFramework4.6.2', 'net6.0', 'net7.0', 'net8.0', '.NETStandard2.0'].map((targetFramework) => ({ targetFramework, dependencies: [] }));
  const newtonsoft = ['.NETFramework2.0', '.NETFramework3.5', '.NETFramework4.0', '.NETFramework4.5', '.NETStandard1.0', '.NETStandard1.3', 'net6.0', '.NETStandard2.0'].map(
    (targetFramework) => ({ targetFramework, dependencies: [] }),
  );

  it.each([
    [xunitExtensibilityCore, 'net8.0', '.NETStandard2.0'],
    [xunitExtensibilityCore, 'net472', '.NETFramework4.5.2'],
    [xunitExtensibilityCore, 'netstandard1.6', '.NETStandard1.1'],
    [xunitExtensibilityCore, 'net40', undefined],
    [immutable, 'net8.0', 'net8.0'],
    [immutable, 'net9.0', 'net8.0'],
    [immutable, 'net7.0', 'net7.0'],
    [immutable, 'netcoreapp3.1', '.NETStandard2.0'],
    [immutable, 'net48', '.NETFramework4.6.2'],
    [immutable, 'net8.0-windows', 'net8.0'],
    [newtonsoft, 'net5.0', '.NETStandard2.0'],
    [newtonsoft, 'net6.0', 'net6.0'],
    [newtonsoft, 'netstandard1.6', '.NETStandard1.3'],
    [newtonsoft, 'net45', '.NETFramework4.5'],
    [newtonsoft, 'net451', '.NETFramework4.5'],
    [[{ targetFramework: 'net8.0-windows', dependencies: [] }, { targetFramework: 'net8.0', dependencies: [] }], 'net8.0-windows', 'net8.0-windows'],
    [[{ targetFramework: 'net8.0-windows', dependencies: [] }], 'net8.0', undefined],
    [[{ targetFramework: 'native0.0', dependencies: [] }, { targetFramework: 'net8.0', dependencies: [] }], 'net8.0', 'net8.0'],
    [[{ dependencies: [] }, { targetFramework: 'net9.0', dependencies: [] }], 'net8.0', undefined],
    [[{ targetFramework: 'monoandroid10', dependencies: [] }], 'monoandroid12.0', 'monoandroid10'],
  ])('nearestGroup(%#) for %s', (groups, target, expected) => {
    expect(nearestGroup(groups as { targetFramework?: string }[], target)?.targetFramework).toBe(expected);
  });

  it('a group for any framework applies when nothing nearer does', () => {
    const groups = [{ dependencies: [{ id: 'Any', range: '1.0' }] }, { targetFramework: 'net9.0', dependencies: [] }];
    expect(nearestGroup(groups, 'net8.0')).toBe(groups[0]);
    expect(nearestGroup(groups, 'net9.0')).toBe(groups[1]);
  });

  it('dependenciesFor: every group without targets, the nearest per target otherwise, deduplicated', () => {
    expect(dependenciesFor(xunitExtensibilityCore).map((d) => d.id)).toEqual(['xunit.abstractions', 'NETStandard.Library']);
    expect(dependenciesFor(xunitExtensibilityCore, ['net8.0']).map((d) => d.id)).toEqual(['xunit.abstractions']);
    expect(dependenciesFor(xunitExtensibilityCore, ['net8.0', 'netstandard1.3']).map((d) => d.id)).toEqual(['xunit.abstractions', 'NETStandard.Library']);
    expect(dependenciesFor(xunitExtensibilityCore, ['net20'])).toEqual([]);
  });
});

describe('the nuspecs of the real packages folder', () => {
  const dir = findRealPackagesDir();
  const skip = needTool('real-packages', dir !== undefined, 'the real nuspec tests');
  if (skip || !dir) {
    it.skip(`real nuspecs (${skip})`, () => {});
    return;
  }
  const nuspecs: { path: string; lowerId: string; lowerVersion: string }[] = [];
  for (const idDir of readdirSync(dir)) {
    if (!existsSync(join(dir, idDir)) || idDir.startsWith('.')) continue;
    let versions: string[];
    try {
      versions = readdirSync(join(dir, idDir));
    } catch {
      continue;
    }
    for (const ver of versions) {
      const path = join(dir, idDir, ver, `${idDir}.nuspec`);
      if (existsSync(path)) nuspecs.push({ path, lowerId: idDir, lowerVersion: ver });
    }
  }

  it('the folder has nuspecs', () => {
    expect(nuspecs.length).toBeGreaterThanOrEqual(10);
  });

  it.each(nuspecs.map((n) => [`${n.lowerId}/${n.lowerVersion}`, n] as const))('%s parses like the test-support reader, every dependency counted', (_name, n) => {
    const xml = readFileSync(n.path, 'utf8');
    const r = parseNuspecDependencies(xml);
    expect(r.id.toLowerCase()).toBe(n.lowerId);
    expect(r.version.toLowerCase()).toBe(n.lowerVersion);
    // an independent (regex) reader agrees
    const other = parseNuspec(xml);
    expect(r.groups.map((g) => ({ ...(g.targetFramework ? { targetFramework: g.targetFramework } : {}), dependencies: g.dependencies.map((d) => ({ id: d.id, range: d.range })) }))).toEqual(
      other.dependencyGroups,
    );
    const total = r.groups.reduce((s, g) => s + g.dependencies.length, 0);
    expect(total).toBe((xml.match(/<dependency\s/g) ?? []).length);
    for (const g of r.groups) if (g.targetFramework) expect(parseFramework(g.targetFramework), g.targetFramework).toBeDefined();
  });

  it('xunit 2.9.3: flat dependencies on xunit.core, xunit.assert, xunit.analyzers', () => {
    const path = join(dir, 'xunit', '2.9.3', 'xunit.nuspec');
    const r = parseNuspecDependencies(readFileSync(path, 'utf8'));
    expect(r).toEqual({
      id: 'xunit',
      version: '2.9.3',
      groups: [
        {
          dependencies: [
            { id: 'xunit.core', range: '[2.9.3]' },
            { id: 'xunit.assert', range: '2.9.3' },
            { id: 'xunit.analyzers', range: '1.18.0' },
          ],
        },
      ],
    });
  });
});
