// The precomputed sort keys (version-key.ts) must order exactly as compareVersions, NuGet's comparer: checked on a
// large random set rich in the hard cases (numeric vs text labels, '-1' vs '-01', digits beyond Int32, case, prefixes).
import { describe, expect, it } from 'vitest';
import { compareSortable, sortableOf, sortSortable } from '../../../src/protocol/version-key.js';
import { sortVersionStrings } from '../../../src/protocol/sort.js';
import { compareVersions, normalizeVersion, parseVersion, type NuGetVersion } from '../../../src/protocol/version.js';

let seed = 7;
const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
const IDS = ['0', '1', '2', '10', '-1', '-01', '-', 'a', 'A', 'alpha', 'Alpha', 'beta', 'rc', 'rc1', 'RC1', 'a-b', '2147483647', '2147483648', '99999999999', '-2147483648', '-2147483649', 'x9', '9x'];

function randomVersion(): string {
  const nums = Array.from({ length: 1 + rand(4) }, () => String(pick([0, 1, 2, 10, 2147483647, rand(20)])));
  const label = rand(3) === 0 ? '' : `-${Array.from({ length: 1 + rand(4) }, () => pick(IDS)).join('.')}`;
  const meta = rand(5) === 0 ? `+build.${rand(9)}` : '';
  return `${nums.join('.')}${label}${meta}`;
}

describe('sortable versions order exactly as compareVersions', () => {
  const raw = Array.from({ length: 20_000 }, randomVersion);
  const parsed = raw.map(parseVersion).filter((v): v is NuGetVersion => v !== undefined);

  it('every parsed input is valid (the generator makes no garbage) and there are many ties and duplicates', () => {
    expect(parsed.length).toBe(raw.length);
    expect(new Set(parsed.map((v) => normalizeVersion(v).toLowerCase())).size).toBeLessThan(raw.length);
  });

  it('compareSortable has the sign of compareVersions for 100,000 random pairs', () => {
    const keys = parsed.map(sortableOf);
    let zeros = 0;
    const wrong: string[] = [];
    for (let k = 0; k < 100_000; k++) {
      const i = rand(parsed.length);
      const j = rand(parsed.length);
      const expected = compareVersions(parsed[i]!, parsed[j]!);
      if (expected === 0) zeros++;
      if (Math.sign(compareSortable(keys[i]!, keys[j]!)) !== expected) wrong.push(`${parsed[i]!.original} vs ${parsed[j]!.original}`);
    }
    expect(wrong).toEqual([]);
    expect(zeros).toBeGreaterThan(0);
  });

  it('sorting by keys gives the same list as a stable sort by compareVersions, ties in input order', () => {
    const expected = [...parsed].sort(compareVersions).map((v) => v.original);
    const byKey = parsed.map((v) => ({ v, k: sortableOf(v) }));
    const got = sortSortable(byKey.map((x) => x.k));
    // keys carry no original: map each key back through its position
    const index = new Map(byKey.map((x, i) => [x.k, i]));
    expect(got.map((k) => parsed[index.get(k)!]!.original)).toEqual(expected);
  });

  it('sortVersionStrings gives what the comparator form gave (dedupe keeping the first, normalized, lowercased)', () => {
    const byKey = new Map<string, NuGetVersion>();
    for (const v of parsed) {
      const key = normalizeVersion(v).toLowerCase();
      if (!byKey.has(key)) byKey.set(key, v);
    }
    const old = [...byKey.entries()].sort(([, a], [, b]) => compareVersions(a, b)).map(([key]) => key);
    expect(sortVersionStrings([...raw, 'garbage', '1.0.0.0.0'])).toEqual(old);
  });
});
