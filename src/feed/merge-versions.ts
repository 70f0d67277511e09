import { compareVersions, lowerNormalizedVersion, parseVersion, type NuGetVersion } from '../protocol/version.js';

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
 */
export function mergeVersionLists(lists: readonly UpstreamVersions[]): MergedVersions {
  const winners: Record<string, string> = {};
  const parsed: { lower: string; v: NuGetVersion }[] = [];
  for (const { upstream, versions } of lists) {
    for (const raw of versions) {
      const lower = lowerNormalizedVersion(raw);
      if (!lower || lower in winners) continue;
      winners[lower] = upstream;
      parsed.push({ lower, v: parseVersion(lower)! });
    }
  }
  parsed.sort((a, b) => compareVersions(a.v, b.v));
  return { versions: parsed.map((p) => p.lower), winners };
}
