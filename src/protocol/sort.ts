import { sortSortable, sortableVersion, type SortableVersion } from './version-key.js';

/**
 * Parses (dropping what NuGet would not parse), dedupes by NuGet equality keeping the
 * first occurrence, sorts ascending and returns lowercased normalized strings, i.e. the
 * shape of a flat-container `versions` array. Each version is parsed once (version-key.ts).
 */
export function sortVersionStrings(versions: readonly string[]): string[] {
  // The lowercased normalized string is exactly NuGet's equality key (numeric parts
  // without leading zeros or a zero revision, labels case-insensitive, metadata ignored).
  const seen = new Set<string>();
  const kept: SortableVersion[] = [];
  for (const s of versions) {
    const v = sortableVersion(s);
    if (!v || seen.has(v.lower)) continue;
    seen.add(v.lower);
    kept.push(v);
  }
  return sortSortable(kept).map((v) => v.lower);
}
