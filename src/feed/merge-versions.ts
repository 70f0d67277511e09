import { VERSION_SLICE } from '../protocol/sort.js';
import { sortSortable, sortableVersion, type SortableVersion } from '../protocol/version-key.js';
import { yieldTurn } from './sliced-json.js';

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
  const steps = mergeSteps(lists);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

/**
 * mergeVersionLists for lists of any size: with more than LARGE_VERSIONS versions in all, the event loop gets a
 * turn after every VERSION_SLICE versions parsed (100,000 versions take ~0.2-0.4 s to parse here: in one piece
 * that held every other request, the health probe included, that long).
 */
export async function mergeVersionListsSliced(lists: readonly UpstreamVersions[]): Promise<MergedVersions> {
  return runSliced(mergeSteps(lists), lists.reduce((n, l) => n + l.versions.length, 0));
}

/** More versions than this (in one list, or all lists of a merge together) are parsed in slices. */
export const LARGE_VERSIONS = 10_000;

/** Runs steps to their end, yielding a turn at each pause when the work is large (else in one go). */
export async function runSliced<T>(steps: Generator<void, T>, size: number): Promise<T> {
  const large = size > LARGE_VERSIONS;
  let step = steps.next();
  while (!step.done) {
    if (large) await yieldTurn();
    step = steps.next();
  }
  return step.value;
}

function* mergeSteps(lists: readonly UpstreamVersions[]): Generator<void, MergedVersions> {
  const winner = new Map<string, string>();
  const kept: SortableVersion[] = [];
  let n = 0;
  for (const { upstream, versions } of lists) {
    for (const raw of versions) {
      if (++n % VERSION_SLICE === 0) yield;
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
