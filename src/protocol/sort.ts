import { compareVersions, normalizeVersion, parseVersion, type NuGetVersion } from './version.js';

/**
 * Parses (dropping what NuGet would not parse), dedupes by NuGet equality keeping the
 * first occurrence, sorts ascending and returns lowercased normalized strings, i.e. the
 * shape of a flat-container `versions` array.
 */
export function sortVersionStrings(versions: readonly string[]): string[] {
  // The lowercased normalized string is exactly NuGet's equality key (numeric parts
  // without leading zeros or a zero revision, labels case-insensitive, metadata ignored).
  const byKey = new Map<string, NuGetVersion>();
  for (const s of versions) {
    const v = parseVersion(s);
    if (!v) continue;
    const key = normalizeVersion(v).toLowerCase();
    if (!byKey.has(key)) byKey.set(key, v);
  }
  return [...byKey.entries()]
    .sort(([, a], [, b]) => compareVersions(a, b))
    .map(([key]) => key);
}
