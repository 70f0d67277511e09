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

const DIGITS = /^[0-9]+$/;
const IDENTIFIER = /^[0-9A-Za-z-]+$/;

function parseNumericPart(part: string): number | undefined {
  if (!DIGITS.test(part)) return undefined;
  const n = Number(part);
  return n <= INT32_MAX ? n : undefined;
}

function isValidIdentifier(id: string, allowLeadingZeros: boolean): boolean {
  if (!IDENTIFIER.test(id)) return false;
  // '0' is fine and '0a' is alphanumeric, but '00' / '01' are numeric with a leading zero.
  return allowLeadingZeros || id.length === 1 || id[0] !== '0' || !DIGITS.test(id);
}

export function parseVersion(input: string): NuGetVersion | undefined {
  if (typeof input !== 'string') return undefined;
  const original = input.trim();
  if (original.length === 0 || original.length > MAX_VERSION_LENGTH) return undefined;

  // The first '-' or '+' ends the numeric part; a '-' inside metadata is just a character.
  const sep = original.search(/[-+]/);
  const numericPart = sep < 0 ? original : original.slice(0, sep);
  let releasePart: string | undefined;
  let metadata: string | undefined;
  if (sep >= 0) {
    const rest = original.slice(sep + 1);
    if (original[sep] === '+') {
      metadata = rest;
    } else {
      const plus = rest.indexOf('+');
      releasePart = plus < 0 ? rest : rest.slice(0, plus);
      metadata = plus < 0 ? undefined : rest.slice(plus + 1);
    }
  }

  const parts = numericPart.split('.');
  if (parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const part of parts) {
    const n = parseNumericPart(part);
    if (n === undefined) return undefined;
    nums.push(n);
  }

  const release = releasePart === undefined ? [] : releasePart.split('.');
  if (!release.every((id) => isValidIdentifier(id, false))) return undefined;
  if (metadata !== undefined && !metadata.split('.').every((id) => isValidIdentifier(id, true))) {
    return undefined;
  }

  return {
    major: nums[0] ?? 0,
    minor: nums[1] ?? 0,
    patch: nums[2] ?? 0,
    revision: nums[3] ?? 0,
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
