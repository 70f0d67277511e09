// NuGet version rules (protocol reference §7.1-7.4), mirroring NuGet.Versioning's
// NuGetVersion.TryParse, VersionComparer.Default and VersionFormatter.

export interface NuGetVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly revision: number;
  /** Dot-separated release label identifiers, case preserved; [] if none. */
  readonly release: readonly string[];
  /** Build metadata without '+', undefined if none. */
  readonly metadata: string | undefined;
  /** Trimmed input. */
  readonly original: string;
}

// Not a NuGet rule: a guard so hostile input cannot make us do unbounded work.
const MAX_VERSION_LENGTH = 256;
const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;

// Parsing is a hand-written scan over character codes, not regular expressions and splits: a version list of
// 100,000 entries is parsed in tens of milliseconds (the regex form took seconds for 800,000, blocking the event loop).
const DOT = 0x2e;
const DASH = 0x2d;
const PLUS = 0x2b;
const ZERO = 0x30;
const NINE = 0x39;

/** Fills `out` with the numeric part [from, to): false unless it is 1-4 dot-separated digit runs, each within Int32. */
function parseNumericParts(s: string, from: number, to: number, out: number[]): boolean {
  let part = 0;
  let n = 0;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part === 4) return false;
      out[part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= ZERO && c <= NINE) {
      // past Int32 it can only stay past it (a leading zero run keeps n at 0, as Number('000123') does)
      n = n * 10 + (c - ZERO);
      if (n > INT32_MAX) return false;
      digits++;
    } else return false;
  }
  for (; part < 4; part++) out[part] = 0;
  return true;
}

function isIdentifierCode(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === DASH;
}

/**
 * The dot-separated identifiers of [from, to), each non-empty [0-9A-Za-z-]; with `allowLeadingZeros` false a
 * digits-only identifier longer than one character may not start with '0'. Undefined if one is not valid.
 */
function parseIdentifiers(s: string, from: number, to: number, allowLeadingZeros: boolean): string[] | undefined {
  const ids: string[] = [];
  let start = from;
  let allDigits = true;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (i === start) return undefined;
      if (!allowLeadingZeros && allDigits && i - start > 1 && s.charCodeAt(start) === ZERO) return undefined;
      ids.push(s.slice(start, i));
      start = i + 1;
      allDigits = true;
    } else if (isIdentifierCode(c)) {
      if (c < ZERO || c > NINE) allDigits = false;
    } else return undefined;
  }
  return ids;
}

export function parseVersion(input: string): NuGetVersion | undefined {
  if (typeof input !== 'string') return undefined;
  const original = input.trim();
  const len = original.length;
  if (len === 0 || len > MAX_VERSION_LENGTH) return undefined;

  // The first '-' or '+' ends the numeric part; a '-' inside metadata is just a character.
  let sep = 0;
  while (sep < len) {
    const c = original.charCodeAt(sep);
    if (c === DASH || c === PLUS) break;
    sep++;
  }
  const nums = [0, 0, 0, 0];
  if (!parseNumericParts(original, 0, sep, nums)) return undefined;

  let release: string[] = [];
  let metadata: string | undefined;
  if (sep < len) {
    let plus = len;
    if (original.charCodeAt(sep) === PLUS) plus = sep;
    else {
      plus = original.indexOf('+', sep + 1);
      if (plus < 0) plus = len;
      const ids = parseIdentifiers(original, sep + 1, plus, false);
      if (!ids) return undefined;
      release = ids;
    }
    if (plus < len) {
      if (!parseIdentifiers(original, plus + 1, len, true)) return undefined;
      metadata = original.slice(plus + 1);
    }
  }

  return {
    major: nums[0]!,
    minor: nums[1]!,
    patch: nums[2]!,
    revision: nums[3]!,
    release: Object.freeze(release),
    metadata,
    original,
  };
}

export function normalizeVersion(v: NuGetVersion): string {
  let s = `${v.major}.${v.minor}.${v.patch}`;
  if (v.revision > 0) s += `.${v.revision}`;
  if (v.release.length > 0) s += `-${v.release.join('.')}`;
  return s;
}

export function fullVersionString(v: NuGetVersion): string {
  const normalized = normalizeVersion(v);
  return v.metadata === undefined ? normalized : `${normalized}+${v.metadata}`;
}

export function lowerNormalizedVersion(input: string): string | undefined {
  const v = parseVersion(input);
  return v === undefined ? undefined : normalizeVersion(v).toLowerCase();
}

// NuGet decides "numeric" with int.TryParse, so '-1' (valid: '-' is an identifier
// character) counts as the number -1, and digit strings beyond Int32 count as text.
function numericIdentifier(id: string): number | undefined {
  if (!/^-?[0-9]+$/.test(id)) return undefined;
  const n = Number(id);
  return n >= INT32_MIN && n <= INT32_MAX ? n : undefined;
}

function compareText(a: string, b: string): number {
  // .NET OrdinalIgnoreCase compares upper-cased code units.
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareIdentifiers(a: string, b: string): number {
  const na = numericIdentifier(a);
  const nb = numericIdentifier(b);
  if (na !== undefined && nb !== undefined) return Math.sign(na - nb);
  if (na !== undefined) return -1;
  if (nb !== undefined) return 1;
  return compareText(a, b);
}

export function compareVersions(a: NuGetVersion, b: NuGetVersion): number {
  const numeric =
    a.major - b.major || a.minor - b.minor || a.patch - b.patch || a.revision - b.revision;
  if (numeric !== 0) return Math.sign(numeric);

  const ra = a.release;
  const rb = b.release;
  if (ra.length === 0 || rb.length === 0) return Math.sign(rb.length - ra.length);
  const shared = Math.min(ra.length, rb.length);
  for (let i = 0; i < shared; i++) {
    const c = compareIdentifiers(ra[i] as string, rb[i] as string);
    if (c !== 0) return c;
  }
  return Math.sign(ra.length - rb.length);
}

// NuGet's Equals compares labels as case-insensitive text, not via Compare: '-1' and
// '-01' compare as 0 yet are different versions (and have different normalized strings).
export function versionsEqual(a: NuGetVersion, b: NuGetVersion): boolean {
  return (
    a.major === b.major &&
    a.minor === b.minor &&
    a.patch === b.patch &&
    a.revision === b.revision &&
    a.release.length === b.release.length &&
    a.release.every((id, i) => compareText(id, b.release[i] as string) === 0)
  );
}

export function isPrerelease(v: NuGetVersion): boolean {
  return v.release.length > 0;
}

export function isSemVer2(v: NuGetVersion): boolean {
  return v.release.length > 1 || v.metadata !== undefined;
}
