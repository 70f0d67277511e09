import { sortSortable, sortableVersion, type SortableVersion } from '../protocol/version-key.js';

export interface UpstreamVersions {
  upstream: string;
  versions: readonly string[];
}

export interface MergedVersions {
  /** Lowercase normalized, deduplicated with NuGet equality, ascending NuGet precedence. */
  versions: string[];
  /** lowercase normalized version -> the upstream that serves it (the first in priority order that lists it). */
  winners: Record<string, string>;
}

/**
 * The union of several upstreams' version lists (protocol notes Appendix B). Input order is priority order;
 * for a version listed by several upstreams the first one wins, which is also the dependency-confusion policy.
 * Each version is parsed once (version-key.ts); upstream lists come sorted, so one list is not sorted again and
 * several are runs that the (stable, run-detecting) sort merges.
 */
export function mergeVersionLists(lists: readonly UpstreamVersions[]): MergedVersions {
  const winner = new Map<string, string>();
  const kept: SortableVersion[] = [];
  for (const { upstream, versions } of lists) {
    for (const raw of versions) {
      const v = sortableVersion(raw);
      if (!v || winner.has(v.lower)) continue;
      winner.set(v.lower, upstream);
      kept.push(v);
    }
  }
  const winners: Record<string, string> = {};
  for (const [lower, upstream] of winner) winners[lower] = upstream;
  return { versions: sortSortable(kept).map((v) => v.lower), winners };
}
