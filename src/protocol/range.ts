// NuGet version ranges (protocol reference §7.5), mirroring NuGet.Versioning's
// VersionRange.TryParse, Satisfies, FindBestMatch and ToNormalizedString.

import { compareVersions, isPrerelease, normalizeVersion, parseVersion, type NuGetVersion } from './version.js';

export interface VersionRange {
  readonly min?: NuGetVersion;
  /** False whenever min is undefined (as NuGet's IsMinInclusive). */
  readonly minInclusive: boolean;
  readonly max?: NuGetVersion;
  /** False whenever max is undefined (as NuGet's IsMaxInclusive). */
  readonly maxInclusive: boolean;
  /** Trimmed input. */
  readonly original: string;
}

function makeRange(
  original: string,
  min: NuGetVersion | undefined,
  minInclusive: boolean,
  max: NuGetVersion | undefined,
  maxInclusive: boolean,
): VersionRange {
  return {
    ...(min ? { min } : {}),
    minInclusive: min !== undefined && minInclusive,
    ...(max ? { max } : {}),
    maxInclusive: max !== undefined && maxInclusive,
    original,
  };
}

/** A blank bound means "unbounded"; undefined result means the bound is invalid. */
function parseBound(text: string): { v: NuGetVersion | undefined } | undefined {
  if (text.trim() === '') return { v: undefined };
  // Floating versions ('1.*', '*') only make sense in a client's restore; not supported here.
  if (text.includes('*')) return undefined;
  const v = parseVersion(text);
  return v ? { v } : undefined;
}

export function parseRange(input: string): VersionRange | undefined {
  if (typeof input !== 'string') return undefined;
  const original = input.trim();
  // NuGet's TryParse rejects '', but a nuspec dependency without a version (and the
  // registration's "" range) means any version.
  if (original === '') return makeRange(original, undefined, false, undefined, false);

  const open = original[0];
  if (open !== '[' && open !== '(') {
    const min = parseBound(original);
    return min?.v ? makeRange(original, min.v, true, undefined, false) : undefined;
  }

  const close = original[original.length - 1];
  if (original.length < 2 || (close !== ']' && close !== ')')) return undefined;
  const minInclusive = open === '[';
  const maxInclusive = close === ']';
  const parts = original.slice(1, -1).split(',');
  if (parts.length > 2) return undefined;
  // Like NuGet, only literally empty parts count here: '(,)' is invalid but '(, )' is "any".
  if (parts.every((p) => p === '')) return undefined;
  // A single version is only meaningful as an exact match: '(1.0)' and '[1.0)' are invalid.
  if (parts.length === 1 && !(minInclusive && maxInclusive)) return undefined;

  const minText = parts[0] as string;
  const min = parseBound(minText);
  const max = parseBound(parts.length === 2 ? (parts[1] as string) : minText);
  if (!min || !max) return undefined;

  if (min.v && max.v) {
    const c = compareVersions(min.v, max.v);
    if (c > 0) return undefined;
    // '(1.0, 1.0]' and '[1.0, 1.0)' are contradictions; '(1.0, 1.0)' is merely empty.
    if (c === 0 && minInclusive !== maxInclusive) return undefined;
  }
  return makeRange(original, min.v, minInclusive, max.v, maxInclusive);
}

export function satisfies(range: VersionRange, v: NuGetVersion): boolean {
  if (range.min) {
    const c = compareVersions(range.min, v);
    if (range.minInclusive ? c > 0 : c >= 0) return false;
  }
  if (range.max) {
    const c = compareVersions(range.max, v);
    if (range.maxInclusive ? c < 0 : c <= 0) return false;
  }
  return true;
}

/**
 * The lowest candidate in range, as NuGet's FindBestMatch for dependencies. Prereleases
 * are only eligible when a bound is a prerelease (restore's NU1103 "unable to find a
 * stable package" otherwise). Among equal versions the first candidate wins.
 */
export function bestMatch(range: VersionRange, candidates: readonly NuGetVersion[]): NuGetVersion | undefined {
  const allowPrerelease =
    (range.min !== undefined && isPrerelease(range.min)) || (range.max !== undefined && isPrerelease(range.max));
  let best: NuGetVersion | undefined;
  for (const v of candidates) {
    if (!allowPrerelease && isPrerelease(v)) continue;
    if (!satisfies(range, v)) continue;
    if (best === undefined || compareVersions(v, best) < 0) best = v;
  }
  return best;
}

/** NuGet's ToNormalizedString, which nuget.org and Sleet emit: always '[min, max]' form. */
export function formatRange(r: VersionRange): string {
  const open = r.min && r.minInclusive ? '[' : '(';
  const close = r.max && r.maxInclusive ? ']' : ')';
  const min = r.min ? normalizeVersion(r.min) : '';
  const max = r.max ? normalizeVersion(r.max) : '';
  return `${open}${min}, ${max}${close}`;
}
