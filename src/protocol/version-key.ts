// Sorting large version lists fast: each version is parsed once and given a precomputed key, so that a sort of
// 100,000 versions compares numbers and flat strings instead of parsing labels and upper-casing them on every one
// of its ~2 million comparisons (the comparator form took seconds for 800,000 versions, blocking the event loop).
import { normalizeVersion, parseVersion, type NuGetVersion } from './version.js';

/** A parsed version ready to be sorted: its NuGet equality key and its precedence in a comparable form. */
export interface SortableVersion {
  /** Lowercased normalized string: NuGet's equality key, and the shape of a flat-container entry. */
  readonly lower: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly revision: number;
  /** The release label encoded so that comparing two with < and > is compareVersions' order of labels. */
  readonly label: string;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
// Label encoding: each identifier is a type mark and a body, followed by END_ID. A numeric identifier (as NuGet
// decides it: int.TryParse, so '-1' is -1) is NUMERIC and its value offset into 0..2^32-1 as 8 hex digits (fixed
// width: string order is numeric order); text is TEXT and its upper-cased characters (.NET OrdinalIgnoreCase),
// all above END_ID, so a shorter identifier that is a prefix sorts first. Numbers sort before text, and a label
// that is a prefix of another sorts first (it is a prefix of the string too). No label sorts after every label.
const END_ID = '\u0000';
const NUMERIC = '\u0001';
const TEXT = '\u0002';
const NO_LABEL = '\u0003';
const NUMERIC_ID = /^-?[0-9]+$/;

function labelKey(release: readonly string[]): string {
  if (release.length === 0) return NO_LABEL;
  let key = '';
  for (const id of release) {
    const n = NUMERIC_ID.test(id) ? Number(id) : NaN;
    if (n >= INT32_MIN && n <= INT32_MAX) key += NUMERIC + (n - INT32_MIN).toString(16).padStart(8, '0') + END_ID;
    else key += TEXT + id.toUpperCase() + END_ID;
  }
  return key;
}

/** The sortable form of a parsed version. */
export function sortableOf(v: NuGetVersion): SortableVersion {
  return { lower: normalizeVersion(v).toLowerCase(), major: v.major, minor: v.minor, patch: v.patch, revision: v.revision, label: labelKey(v.release) };
}

/** Parses a version string into its sortable form, or undefined if NuGet would not parse it. */
export function sortableVersion(raw: string): SortableVersion | undefined {
  const v = parseVersion(raw);
  return v === undefined ? undefined : sortableOf(v);
}

/** compareVersions over sortable forms (same result for every pair), without parsing or allocating. */
export function compareSortable(a: SortableVersion, b: SortableVersion): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  if (a.revision !== b.revision) return a.revision < b.revision ? -1 : 1;
  return a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
}

/** Sorts in place by NuGet precedence unless already in order (the common case: upstream lists come sorted). */
export function sortSortable(list: SortableVersion[]): SortableVersion[] {
  for (let i = 1; i < list.length; i++) {
    if (compareSortable(list[i - 1]!, list[i]!) > 0) return list.sort(compareSortable);
  }
  return list;
}
