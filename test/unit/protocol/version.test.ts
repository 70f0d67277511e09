import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import {
  compareVersions,
  fullVersionString,
  isPrerelease,
  isSemVer2,
  lowerNormalizedVersion,
  normalizeVersion,
  parseVersion,
  versionsEqual,
  type NuGetVersion,
} from '../../../src/protocol/version.js';
import { sortVersionStrings } from '../../../src/protocol/sort.js';

function v(s: string): NuGetVersion {
  const parsed = parseVersion(s);
  if (!parsed) throw new Error(`test setup: '${s}' should parse`);
  return parsed;
}

function readVersionsFixture(relative: string): string[] {
  const url = new URL(`../../fixtures/captured/${relative}`, import.meta.url);
  const body = JSON.parse(readFileSync(url, 'utf8')) as { versions: string[] };
  return body.versions;
}

describe('parseVersion: accepted syntax (§7.1)', () => {
  it.each([
    // input, major, minor, patch, revision, release, metadata
    ['1', 1, 0, 0, 0, [], undefined],
    ['1.0', 1, 0, 0, 0, [], undefined],
    ['1.2.3', 1, 2, 3, 0, [], undefined],
    ['1.2.3.4', 1, 2, 3, 4, [], undefined],
    ['01.2', 1, 2, 0, 0, [], undefined],
    ['1.0.01.0', 1, 0, 1, 0, [], undefined],
    ['0.0.0', 0, 0, 0, 0, [], undefined],
    ['2147483647.2147483647.2147483647.2147483647', 2147483647, 2147483647, 2147483647, 2147483647, [], undefined],
    ['1.0.0-beta01', 1, 0, 0, 0, ['beta01'], undefined],
    ['1.0.0-Beta.1.x-y', 1, 0, 0, 0, ['Beta', '1', 'x-y'], undefined],
    ['1.0.0-0', 1, 0, 0, 0, ['0'], undefined],
    ['1.0.0-0a.00a', 1, 0, 0, 0, ['0a', '00a'], undefined],
    ['1.0.0--', 1, 0, 0, 0, ['-'], undefined],
    ['1.0.0-rc-1', 1, 0, 0, 0, ['rc-1'], undefined],
    ['1.0.7+r3456', 1, 0, 7, 0, [], 'r3456'],
    ['1.0.7+01.002', 1, 0, 7, 0, [], '01.002'],
    ['1.0.7+a-b', 1, 0, 7, 0, [], 'a-b'],
    ['1.0.0-alpha+Git.Sha-1', 1, 0, 0, 0, ['alpha'], 'Git.Sha-1'],
    ['1.0.0.1-rc.2+m', 1, 0, 0, 1, ['rc', '2'], 'm'],
  ] as const)('%s', (input, major, minor, patch, revision, release, metadata) => {
    expect(parseVersion(input)).toEqual({
      major,
      minor,
      patch,
      revision,
      release: [...release],
      metadata,
      original: input,
    });
  });

  it.each([' 1.0 ', '\t1.0.0-beta\n', '  1.0+m  '])('trims surrounding whitespace: %j', (input) => {
    const parsed = parseVersion(input);
    expect(parsed?.original).toBe(input.trim());
  });

  it('accepts exactly 256 characters', () => {
    const input = `1.0.0-${'a'.repeat(250)}`;
    expect(input).toHaveLength(256);
    expect(parseVersion(input)?.release).toEqual(['a'.repeat(250)]);
  });
});

describe('parseVersion: rejected syntax (§7.1)', () => {
  it.each([
    ['empty', ''],
    ['whitespace only', '   '],
    ['prefix', 'v1.0'],
    ['five parts', '1.0.0.0.0'],
    ['empty numeric part', '1..0'],
    ['trailing dot', '1.0.'],
    ['leading dot', '.1'],
    ['negative', '-1'],
    ['leading plus', '+1'],
    ['dangling dash', '1.0-'],
    ['dangling plus', '1.0+'],
    ['empty label before metadata', '1.0-+m'],
    ['empty release id', '1.0.0-beta..1'],
    ['trailing dot in release', '1.0.0-beta.'],
    ['empty metadata id', '1.0.0+a..b'],
    ['numeric release id with leading zero', '1.0.0-beta.01'],
    ['numeric release label with leading zero', '1.0.0-01'],
    ['double zero release id', '1.0.0-00'],
    ['Int32 overflow', '2147483648'],
    ['Int32 overflow in a later part', '1.2147483648'],
    ['huge number', '1.99999999999999999999'],
    ['non-ASCII digits (Arabic-Indic)', '\u0661.0'],
    ['non-ASCII digits (fullwidth)', '\uFF11.0'],
    ['non-ASCII letter in label', '1.0.0-b\u00E9ta'],
    ['underscore in label', '1.0.0-beta_1'],
    ['second plus', '1.0.0+a+b'],
    ['plus inside release then plus', '1.0.0-a+'],
    ['internal whitespace', '1. 0'],
    ['internal whitespace in label', '1.0-be ta'],
    ['letters in numeric part', '1.0a'],
    ['hex', '0x1'],
    ['floating', '1.*'],
    ['over-long', `1.0.0-${'a'.repeat(251)}`],
  ])('%s: %j', (_name, input) => {
    expect(parseVersion(input)).toBeUndefined();
  });

  it('rejects non-string input defensively', () => {
    expect(parseVersion(undefined as unknown as string)).toBeUndefined();
    expect(parseVersion(1 as unknown as string)).toBeUndefined();
  });
});

describe('normalizeVersion / fullVersionString / lowerNormalizedVersion (§7.3)', () => {
  it.each([
    ['1', '1.0.0'],
    ['1.0', '1.0.0'],
    ['1.0.0', '1.0.0'],
    ['1.0.0.0', '1.0.0'],
    ['1.00', '1.0.0'],
    ['1.01.1', '1.1.1'],
    ['01.2', '1.2.0'],
    ['1.0.01.0', '1.0.1'],
    ['1.0.0.1', '1.0.0.1'],
    ['1.0.7+r3456', '1.0.7'],
    ['1.0.0-Beta.1', '1.0.0-Beta.1'],
    ['1.0.0.0-RC+Meta', '1.0.0-RC'],
    [' 2.1.0-preview1-26216-03 ', '2.1.0-preview1-26216-03'],
  ])('%j -> %s', (input, normalized) => {
    expect(normalizeVersion(v(input))).toBe(normalized);
    expect(lowerNormalizedVersion(input)).toBe(normalized.toLowerCase());
  });

  it.each([
    ['1.0.7+r3456', '1.0.7+r3456'],
    ['01.0.0.0-Beta+Sha.ABC', '1.0.0-Beta+Sha.ABC'],
    ['1.0', '1.0.0'],
  ])('full string %j -> %s', (input, full) => {
    expect(fullVersionString(v(input))).toBe(full);
  });

  it('lowercases the release label for URLs only', () => {
    expect(normalizeVersion(v('1.0.0-ALPHA'))).toBe('1.0.0-ALPHA');
    expect(lowerNormalizedVersion('1.0.0-ALPHA')).toBe('1.0.0-alpha');
  });

  it.each(['', 'v1', '1.0.0-01', 'not a version'])('lowerNormalizedVersion(%j) is undefined', (input) => {
    expect(lowerNormalizedVersion(input)).toBeUndefined();
  });
});

describe('compareVersions / versionsEqual (§7.4)', () => {
  it.each([
    ['1', '1.0'],
    ['1.0', '1.0.0'],
    ['1.0.0', '1.0.0.0'],
    ['1', '1.0.0.0'],
    ['1.0.0', '1.0.0+x'],
    ['1.0.0+a', '1.0.0+b'],
    ['01.2', '1.2.0'],
    ['1.0.0-Alpha', '1.0.0-alpha'],
    ['1.0.0-RC.1+X', '1.0.0-rc.1+y'],
  ])('%s == %s', (a, b) => {
    expect(compareVersions(v(a), v(b))).toBe(0);
    expect(compareVersions(v(b), v(a))).toBe(0);
    expect(versionsEqual(v(a), v(b))).toBe(true);
  });

  it.each([
    ['1.0.0', '2.0.0', 'major'],
    ['1.0.0', '1.1.0', 'minor'],
    ['1.0.0', '1.0.1', 'patch'],
    ['1.0.0', '1.0.0.1', 'revision'],
    ['1.0.0.1', '1.0.1', 'patch beats revision'],
    ['1.9.0', '1.10.0', 'numeric, not textual'],
    ['1.0.0-alpha', '1.0.0', 'prerelease below release'],
    ['1.0.0-zzz', '1.0.0', 'any prerelease below release'],
    ['1.0.0', '1.0.1-alpha', 'numeric parts first'],
    ['1.0.0-alpha', '1.0.0-alpha.1', 'fewer identifiers lower'],
    ['1.0.0-alpha.1', '1.0.0-alpha.1.0', 'fewer identifiers lower (longer prefix)'],
    ['1.0.0-alpha.1', '1.0.0-alpha.beta', 'numeric id below alphanumeric id'],
    ['1.0.0-1', '1.0.0-a', 'numeric label below alphanumeric label'],
    ['1.0.0-999', '1.0.0-0a', 'numeric below digit-led alphanumeric'],
    ['1.0.1-rc.2', '1.0.1-rc.10', 'numeric ids compare numerically'],
    ['1.0.1-alpha10', '1.0.1-alpha2', 'alphanumeric ids compare as text'],
    ['1.0.0-alpha', '1.0.0-beta', 'text order'],
    ['1.0.0-Alpha', '1.0.0-beta', 'text order ignores case (upper first)'],
    ['1.0.0-alpha', '1.0.0-Beta', 'text order ignores case (lower first)'],
    ['1.0.0-a', '1.0.0-aa', 'text prefix lower'],
    ['1.0.0-a-b', '1.0.0-a0', "'-' below digits"],
    ['1.0.0-rc2-002702', '1.0.0-rc2-final', 'dependencymodel pair'],
    ['1.0.0-beta.2147483647', '1.0.0-beta.2147483648', 'Int32 max is numeric, beyond is text (numeric lower)'],
    ['1.0.0-a.-1', '1.0.0-a.0', "NuGet parses '-1' as the number -1"],
  ])('%s < %s (%s)', (a, b) => {
    expect(compareVersions(v(a), v(b))).toBeLessThan(0);
    expect(compareVersions(v(b), v(a))).toBeGreaterThan(0);
    expect(versionsEqual(v(a), v(b))).toBe(false);
  });

  it('orders digit strings beyond Int32 as text, like NuGet', () => {
    // Both are non-numeric to int.TryParse, so '1...' sorts before '9...'.
    expect(compareVersions(v('1.0.0-10000000000'), v('1.0.0-9999999999'))).toBeLessThan(0);
  });

  it('returns only -1, 0 or 1 for numeric differences', () => {
    expect(compareVersions(v('1.0.0'), v('5.0.0'))).toBe(-1);
    expect(compareVersions(v('1.0.0-rc.10'), v('1.0.0-rc.2'))).toBe(1);
  });

  it("keeps NuGet's split between Compare and Equals for '-1' vs '-01'", () => {
    expect(compareVersions(v('1.0.0--1'), v('1.0.0--01'))).toBe(0);
    expect(versionsEqual(v('1.0.0--1'), v('1.0.0--01'))).toBe(false);
  });
});

describe('isPrerelease / isSemVer2 (§7.2)', () => {
  it.each([
    ['1.0.0', false, false],
    ['1.0.0.1', false, false],
    ['1.0.0-alpha', true, false],
    ['1.0.0-alpha-1', true, false],
    ['1.0.0-alpha.1', true, true],
    ['1.0.0+githash', false, true],
    ['1.0.0-beta+githash', true, true],
    ['1.0.0-rc.1.2+m', true, true],
  ])('%s: prerelease=%s semver2=%s', (input, pre, semver2) => {
    expect(isPrerelease(v(input))).toBe(pre);
    expect(isSemVer2(v(input))).toBe(semver2);
  });
});

describe('sortVersionStrings', () => {
  it('sorts a shuffled list ascending, normalized and lowercased', () => {
    const shuffled = [
      '1.0.1-rc.10',
      '2.0.0',
      '1.0.0-Alpha',
      '1.0.1-alpha2',
      '1.0.0',
      '1.0.1-rc.2',
      '1.0.0.1',
      '1.0.0-alpha.1',
      '1.0.1-alpha10',
      '0.9',
      '1.0.0-beta',
      '10.0.0',
    ];
    expect(sortVersionStrings(shuffled)).toEqual([
      '0.9.0',
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-beta',
      '1.0.0',
      '1.0.0.1',
      '1.0.1-alpha10',
      '1.0.1-alpha2',
      '1.0.1-rc.2',
      '1.0.1-rc.10',
      '2.0.0',
      '10.0.0',
    ]);
  });

  it('drops unparsable strings and dedupes by NuGet equality', () => {
    expect(
      sortVersionStrings(['1.0', 'garbage', '1.0.0.0', '1.0.0+meta', '1.0.0-RC', '1.0.0-rc', '', '1.0.0-01', '0.1']),
    ).toEqual(['0.1.0', '1.0.0-rc', '1.0.0']);
  });

  it('returns [] for no versions and does not mutate its input', () => {
    expect(sortVersionStrings([])).toEqual([]);
    const input = Object.freeze(['2.0', '1.0']);
    expect(sortVersionStrings(input)).toEqual(['1.0.0', '2.0.0']);
    expect(input).toEqual(['2.0', '1.0']);
  });

  it('keeps the nuget.org flat-container order of microsoft.extensions.dependencymodel (2018)', () => {
    const versions = readVersionsFixture('nuget.org/flatcontainer-versions.microsoft-extensions-dependencymodel.2018.json');
    expect(versions).toHaveLength(22);
    for (const s of versions) expect(lowerNormalizedVersion(s), s).toBe(s);
    expect(sortVersionStrings(versions)).toEqual(versions);
    // Any permutation sorts back to nuget.org's order.
    const reversed = [...versions].reverse();
    const interleaved = versions.filter((_, i) => i % 2 === 1).concat(versions.filter((_, i) => i % 2 === 0));
    expect(sortVersionStrings(reversed)).toEqual(versions);
    expect(sortVersionStrings(interleaved)).toEqual(versions);
  });

  it('sorts the descending Azure Artifacts flat-container list ascending', () => {
    const versions = readVersionsFixture('azure-artifacts/flatcontainer-versions.descending.json');
    expect(versions).toEqual(['5.0.2', '5.0.1']);
    expect(sortVersionStrings(versions)).toEqual(['5.0.1', '5.0.2']);
  });
});
