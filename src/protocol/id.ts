// Package id rules (protocol reference §7.6, NuGet.Packaging PackageIdValidator).

export const MAX_ID_LENGTH = 100;

// Without the 'u' flag \w is ASCII-only; .NET's \w would also accept Unicode letters,
// which we reject on purpose so lowercasing is unambiguous (toLowerCase vs ToLowerInvariant).
const ID_PATTERN = /^\w+(?:[.-]\w+)*$/;

export function isValidPackageId(id: string): boolean {
  return typeof id === 'string' && id.length >= 1 && id.length <= MAX_ID_LENGTH && ID_PATTERN.test(id);
}

export function lowerId(id: string): string {
  return id.toLowerCase();
}
