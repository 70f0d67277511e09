import { sortSortable, sortableVersion, type SortableVersion } from './version-key.js';

/** Versions parsed between two pauses of a sliced parse (sortVersionSteps). */
export const VERSION_SLICE = 4096;

/**
 * Parses (dropping what NuGet would not parse), dedupes by NuGet equality keeping the
 * first occurrence, sorts ascending and returns lowercased normalized strings, i.e. the
 * shape of a flat-container `versions` array. Each version is parsed once (version-key.ts).
 */
export function sortVersionStrings(versions: readonly string[]): string[] {
  const steps = sortVersionSteps(versions);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

/**
 * sortVersionStrings as steps: the generator pauses after every VERSION_SLICE versions parsed (parsing is most of
 * the cost: ~2-3 µs a version, the sort of the parsed keys a tenth of that), so a caller with a large list can
 * give the event loop a turn at each pause (feed/ does, for lists of tens of thousands). Pure: no I/O, no timers.
 */
export function* sortVersionSteps(versions: readonly string[]): Generator<void, string[]> {
  // The lowercased normalized string is exactly NuGet's equality key (numeric parts
  // without leading zeros or a zero revision, labels case-insensitive, metadata ignored).
  const seen = new Set<string>();
  const kept: SortableVersion[] = [];
  let n = 0;
  for (const s of versions) {
    if (++n % VERSION_SLICE === 0) yield;
    const v = sortableVersion(s);
    if (!v || seen.has(v.lower)) continue;
    seen.add(v.lower);
    kept.push(v);
  }
  return sortSortable(kept).map((v) => v.lower);
}
