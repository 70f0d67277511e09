import { describe, it, expect } from 'vitest';
import { bestMatch, formatRange, parseRange, satisfies, type VersionRange } from '../../../src/protocol/range.js';
import { normalizeVersion, parseVersion, type NuGetVersion } from '../../../src/protocol/version.js';

function v(s: string): NuGetVersion {
  const parsed = parseVersion(s);
  if (!parsed) throw new Error(`test setup: '${s}' should parse`);
  return parsed;
}

function r(s: string): VersionRange {
  const parsed = parseRange(s);
  if (!parsed) throw new Error(`test setup: range '${s}' should parse`);
  return parsed;
}

function shape(range: VersionRange) {
  return {
    min: range.min && normalizeVersion(range.min),
    minInclusive: range.minInclusive,
    max: range.max && normalizeVersion(range.max),
    maxInclusive: range.maxInclusive,
  };
}

describe('parseRange / formatRange (§7.5)', () => {
  it.each([
    // input, min, minInclusive, max, maxInclusive, formatted
    ['1.0', '1.0.0', true, undefined, false, '[1.0.0, )'],
    ['12.0.2', '12.0.2', true, undefined, false, '[12.0.2, )'],
    ['[1.0,)', '1.0.0', true, undefined, false, '[1.0.0, )'],
    ['(1.0,)', '1.0.0', false, undefined, false, '(1.0.0, )'],
    ['[1.0]', '1.0.0', true, '1.0.0', true, '[1.0.0, 1.0.0]'],
    ['(,1.0]', undefined, false, '1.0.0', true, '(, 1.0.0]'],
    ['(,1.0)', undefined, false, '1.0.0', false, '(, 1.0.0)'],
    ['[,1.0]', undefined, false, '1.0.0', true, '(, 1.0.0]'],
    ['[1.0,2.0)', '1.0.0', true, '2.0.0', false, '[1.0.0, 2.0.0)'],
    ['(1.0,2.0]', '1.0.0', false, '2.0.0', true, '(1.0.0, 2.0.0]'],
    ['[2.14.0, )', '2.14.0', true, undefined, false, '[2.14.0, )'],
    ['[1.12.0, 2.0.0)', '1.12.0', true, '2.0.0', false, '[1.12.0, 2.0.0)'],
    ['[3.6.0, 3.6.0]', '3.6.0', true, '3.6.0', true, '[3.6.0, 3.6.0]'],
    ['  [ 1.0 , 2.0 ]  ', '1.0.0', true, '2.0.0', true, '[1.0.0, 2.0.0]'],
    ['[1.0, 1.0.0.0]', '1.0.0', true, '1.0.0', true, '[1.0.0, 1.0.0]'],
    ['(1.0,1.0)', '1.0.0', false, '1.0.0', false, '(1.0.0, 1.0.0)'],
    ['01.0.0.0', '1.0.0', true, undefined, false, '[1.0.0, )'],
    ['[1.0.0-Beta.1+sha, 2.0.0-RC]', '1.0.0-Beta.1', true, '2.0.0-RC', true, '[1.0.0-Beta.1, 2.0.0-RC]'],
    ['[3.7.0-preview.24501.5, 3.7.0-preview.24501.5]', '3.7.0-preview.24501.5', true, '3.7.0-preview.24501.5', true,
      '[3.7.0-preview.24501.5, 3.7.0-preview.24501.5]'],
    // "Any version": a missing/empty dependency range, and NuGet's own normalized form of it.
    ['', undefined, false, undefined, false, '(, )'],
    ['   ', undefined, false, undefined, false, '(, )'],
    ['(, )', undefined, false, undefined, false, '(, )'],
    ['[ , ]', undefined, false, undefined, false, '(, )'],
    ['[ ]', undefined, false, undefined, false, '(, )'],
  ] as const)('%j', (input, min, minInclusive, max, maxInclusive, formatted) => {
    const range = r(input);
    expect(shape(range)).toEqual({ min, minInclusive, max, maxInclusive });
    expect(range.original).toBe(input.trim());
    expect(formatRange(range)).toBe(formatted);
    // The formatted form is itself a valid range with the same meaning.
    expect(shape(r(formatted))).toEqual(shape(range));
  });

  it('keeps the parsed versions (release case, metadata) on the bounds', () => {
    const range = r('[1.0.0-Beta+sha, )');
    expect(range.min?.release).toEqual(['Beta']);
    expect(range.min?.metadata).toBe('sha');
  });

  it.each([
    ['exclusive single version', '(1.0)'],
    ['half-open single version', '[1.0)'],
    ['half-open single version (other side)', '(1.0]'],
    ['no bounds at all', '(,)'],
    ['no bounds at all, inclusive', '[,]'],
    ['empty parens', '()'],
    ['empty brackets', '[]'],
    ['lone bracket', '['],
    ['lone paren', '('],
    ['three parts', '[1.0,2.0,3.0]'],
    ['min above max', '[2.0,1.0]'],
    ['min equals max, exclusive min', '(1.0,1.0]'],
    ['min equals max, exclusive max', '[1.0,1.0)'],
    ['missing close', '[1.0,2.0'],
    ['missing open', '1.0,2.0]'],
    ['bare pair', '1.0, 2.0'],
    ['bad close char', '[1.0,2.0}'],
    ['invalid min', '[abc,)'],
    ['invalid max', '[1.0,abc]'],
    ['invalid bare version', 'abc'],
    ['invalid version rule inside', '[1.0.0-01, )'],
    ['operator syntax', '>= 1.0'],
    ['space-separated pair', '[1.0 2.0]'],
    ['floating', '1.*'],
    ['floating prerelease', '1.0.0-*'],
    ['floating star', '*'],
    ['floating min in brackets', '[1.*, 2.0)'],
    ['star in max', '[1.0, 2.*]'],
  ])('rejects %s: %j', (_name, input) => {
    expect(parseRange(input)).toBeUndefined();
  });

  it('rejects non-string input defensively', () => {
    expect(parseRange(undefined as unknown as string)).toBeUndefined();
  });
});

describe('satisfies', () => {
  it.each([
    ['1.0', '1.0.0', true],
    ['1.0', '1.0.0.0', true],
    ['1.0', '0.9.9', false],
    ['1.0', '99.0.0', true],
    ['1.0', '1.0.0-beta', false],
    ['1.0', '1.0.1-beta', true],
    ['1.0', '1.0.0+meta', true],
    ['(1.0,)', '1.0.0', false],
    ['(1.0,)', '1.0.0.1', true],
    ['[1.0]', '1.0.0', true],
    ['[1.0]', '1.0.0+other', true],
    ['[1.0]', '1.0.1', false],
    ['[1.0]', '1.0.0-rc', false],
    ['(,1.0]', '1.0.0', true],
    ['(,1.0]', '0.0.1', true],
    ['(,1.0]', '1.0.1', false],
    ['(,1.0)', '1.0.0', false],
    ['(,1.0)', '1.0.0-rc', true],
    ['[1.0,2.0)', '1.5.0', true],
    ['[1.0,2.0)', '2.0.0', false],
    ['[1.0,2.0)', '2.0.0-preview', true],
    ['[1.0,2.0]', '2.0.0', true],
    ['[1.0.0-beta,)', '1.0.0-alpha', false],
    ['[1.0.0-beta,)', '1.0.0-Beta', true],
    ['[1.0.0-beta,)', '1.0.0-beta.1', true],
    ['(1.0,1.0)', '1.0.0', false],
    ['', '0.0.0', true],
    ['', '2147483647.0.0-z', true],
    ['(, )', '1.0.0', true],
  ])('%j contains %s: %s', (range, version, expected) => {
    expect(satisfies(r(range), v(version))).toBe(expected);
  });
});

describe('bestMatch (lowest applicable, NuGet FindBestMatch)', () => {
  const vs = (...list: string[]) => list.map(v);
  const best = (range: string, candidates: NuGetVersion[]) => {
    const found = bestMatch(r(range), candidates);
    return found && normalizeVersion(found);
  };

  it('picks the lowest version in range regardless of candidate order', () => {
    expect(best('[1.0, )', vs('2.0', '1.0.5', '1.1', '0.9'))).toBe('1.0.5');
    expect(best('[1.0, )', vs('0.9', '1.1', '1.0.5', '2.0'))).toBe('1.0.5');
    expect(best('1.0', vs('1.0', '3.0'))).toBe('1.0.0');
  });

  it('respects exclusive and upper bounds', () => {
    expect(best('(1.0, 2.0)', vs('1.0', '2.0', '1.9.9'))).toBe('1.9.9');
    expect(best('(, 1.5]', vs('1.6', '1.5', '0.1'))).toBe('0.1.0');
    expect(best('[1.0]', vs('1.0.1', '0.9'))).toBeUndefined();
  });

  it('skips prereleases when both bounds are stable', () => {
    expect(best('[1.0, )', vs('1.0.1-beta', '1.2'))).toBe('1.2.0');
    expect(best('[1.0, )', vs('1.0.1-beta', '2.0.0-rc.1'))).toBeUndefined();
    expect(best('', vs('3.0', '1.0-beta', '2.0'))).toBe('2.0.0');
  });

  it('allows any prerelease when a bound is a prerelease', () => {
    expect(best('[1.0.0-beta, )', vs('1.0.0-alpha', '1.0.0', '1.0.0-beta.2'))).toBe('1.0.0-beta.2');
    expect(best('[1.0.0-beta, )', vs('2.0.0', '1.5.0-rc'))).toBe('1.5.0-rc');
    expect(best('(, 2.0.0-rc]', vs('2.0.0-beta', '2.0.0'))).toBe('2.0.0-beta');
  });

  it('returns the first of equal candidates and undefined for none', () => {
    const candidates = vs('1.0.0.0', '1.0', '1.0.0+meta');
    expect(bestMatch(r('1.0'), candidates)).toBe(candidates[0]);
    expect(bestMatch(r('1.0'), [])).toBeUndefined();
  });
});
