import { isUpstreamFailure } from '../errors.js';
import type { Logger } from '../log.js';
import { isNeverAsked } from './offline-upstream.js';

/** Who answered: the upstreams, or the disk cache alone (`hit` when no upstream is ever asked, else `stale`). */
export type Sourced<T, L> = { from: 'upstreams'; value: T } | { from: 'cache'; value: L; outcome: 'hit' | 'stale' };

/**
 * The upstreams' answer first; the disk's own when they could not answer. When no upstream was asked at all
 * (offline: OfflineUpstream) the disk's answer is the whole answer, and its absence a 404. Otherwise the failure
 * is rethrown when the disk has nothing either: down never looks like absent. `fromDisk(whole)` is told which.
 * `online` is the upstreams' answer already under way (no closure per call on the hot path).
 */
export async function orLocal<T, L, A>(
  log: Logger,
  online: Promise<T | undefined>,
  fromDisk: (arg: A, whole: boolean) => Promise<L | undefined>,
  arg: A,
): Promise<Sourced<T, L> | undefined> {
  let value: T | undefined;
  try {
    value = await online;
  } catch (err) {
    if (!isUpstreamFailure(err)) throw err;
    const whole = isNeverAsked(err);
    const local = await fromDisk(arg, whole);
    if (local === undefined) {
      if (whole) return undefined;
      throw err;
    }
    if (!whole) log.warn({ err: (err as Error).message }, 'no upstream could answer: serving what the cache holds');
    return { from: 'cache', value: local, outcome: whole ? 'hit' : 'stale' };
  }
  return value === undefined ? undefined : { from: 'upstreams', value };
}
