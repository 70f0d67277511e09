import { NuproxyError } from '../errors.js';
import type { IdRouting } from '../protocol/id-rules.js';
import type { CacheOutcome } from './metadata-cache.js';

/** What one upstream contributed to a merged answer. */
export type Contribution<T> =
  | { upstream: string; kind: 'ok'; value: T; outcome: CacheOutcome; version: string; freshUntil?: number }
  | { upstream: string; kind: 'absent'; outcome?: CacheOutcome; freshUntil?: number }
  | { upstream: string; kind: 'failed'; error: unknown };

export interface Gathered<T> {
  ok: Extract<Contribution<T>, { kind: 'ok' }>[]; // priority order
  absent: string[];
  /** Some answer (a document or a 404) came from the cache rather than from the upstream just now. */
  fromCache: boolean;
  failed: { upstream: string; error: unknown }[];
  /** Until when every contribution stays fresh (clock ms): 0 when one of them says nothing about it or failed. */
  freshUntil: number;
}

/** Asks every upstream at once (a cold merged answer costs the slowest upstream, not the sum). */
export async function fanOut<T>(upstreams: readonly string[], ask: (upstream: string) => Promise<Contribution<T>>): Promise<Gathered<T>> {
  const all = await Promise.all(
    upstreams.map((u) => ask(u).catch((error: unknown): Contribution<T> => ({ upstream: u, kind: 'failed', error }))),
  );
  let freshUntil = Infinity;
  for (const c of all) freshUntil = Math.min(freshUntil, c.kind === 'failed' ? 0 : (c.freshUntil ?? 0));
  return {
    freshUntil: all.length ? freshUntil : 0,
    ok: all.filter((c): c is Extract<Contribution<T>, { kind: 'ok' }> => c.kind === 'ok'),
    absent: all.filter((c) => c.kind === 'absent').map((c) => c.upstream),
    fromCache: all.some((c) => (c.kind === 'ok' || c.kind === 'absent') && (c.outcome === 'hit' || c.outcome === 'stale')),
    failed: all.filter((c): c is Extract<Contribution<T>, { kind: 'failed' }> => c.kind === 'failed').map((c) => ({ upstream: c.upstream, error: c.error })),
  };
}

/**
 * The failure policy for merged answers. An id's owner failing fails the answer (502): the public versions are
 * never served instead. Nothing answered but failures fails it too, so "down" never looks like "absent" (404).
 * Otherwise the answer is built from what did answer and marked partial by the caller.
 */
export function checkFailures<T>(g: Gathered<T>, routing?: Pick<IdRouting, 'owner'>): void {
  const ownerFailure = routing?.owner ? g.failed.find((f) => f.upstream === routing.owner) : undefined;
  if (ownerFailure) throw asError(ownerFailure.error, ownerFailure.upstream);
  const first = g.failed[0];
  if (g.ok.length === 0 && first) throw asError(first.error, first.upstream);
}

function asError(error: unknown, upstream: string): NuproxyError {
  return error instanceof NuproxyError ? error : new NuproxyError('INTERNAL', `upstream ${upstream}: ${String(error)}`, { upstream }, error);
}

/** One outcome for an answer built from several: any miss is a miss, then stale, then revalidated, else hit. */
export function combinedOutcome(outcomes: readonly CacheOutcome[]): CacheOutcome {
  for (const o of ['miss', 'stale', 'revalidated'] as const) if (outcomes.includes(o)) return o;
  return 'hit';
}

/** A token for the inputs of a merged answer: it changes whenever one of the contributions (or the failed set) does. */
export function versionOf(g: Gathered<unknown>): string {
  return g.ok.map((c) => `${c.upstream}@${c.version}`).join(',') + (g.failed.length ? `!${g.failed.map((f) => f.upstream).join(',')}` : '');
}
