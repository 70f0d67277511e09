// The summary's top ids with `workers: N`: each worker counts its own requests, so the worker answering
// /admin/summary asks the others over the workers' channel (the one invalidations and eviction use) and adds
// their counts to its own. A worker that does not answer within ASK_TIMEOUT_MS is left out of that answer.
import { topOf, type IdCount, type IdTally } from '../http/id-tally.js';

/** The workers' broadcast channel (app.ts hands in the box link's publish/subscribe). */
export interface TallyChannel {
  publish(payload: unknown): void;
  subscribe(handler: (payload: unknown) => void): void;
}

type TallyMessage = { kind: 'tally-ask'; rid: string } | { kind: 'tally-answer'; rid: string; counts: IdCount[] };

const ASK_TIMEOUT_MS = 500;
/** Most counts one worker sends (its tally's bound). */
const MAX_COUNTS = 4096;

export type TopIds = (n: number) => Promise<ReturnType<IdTally['top']>>;

/** `others`: how many other workers answer (the asker stops waiting once they all have). */
export function clusterTopIds(local: IdTally, channel: TallyChannel, others: number, self: string): TopIds {
  let next = 0;
  const pending = new Map<string, (counts: IdCount[]) => void>();
  channel.subscribe((payload) => {
    const m = payload as TallyMessage | undefined;
    if (m?.kind === 'tally-ask' && typeof m.rid === 'string') {
      channel.publish({ kind: 'tally-answer', rid: m.rid, counts: local.entries().slice(0, MAX_COUNTS) } satisfies TallyMessage);
    } else if (m?.kind === 'tally-answer' && typeof m.rid === 'string' && Array.isArray(m.counts)) {
      // counts from another worker: only well-formed ones are added
      const valid = m.counts.slice(0, MAX_COUNTS).filter((c) => typeof c?.id === 'string' && Number.isSafeInteger(c.requests) && Number.isSafeInteger(c.bytes));
      pending.get(m.rid)?.(valid);
    }
  });
  return (n) =>
    new Promise((resolve) => {
      const rid = `${self}:${next++}`;
      const lists: IdCount[][] = [local.entries()];
      const done = (): void => {
        clearTimeout(timer);
        pending.delete(rid);
        resolve(topOf(lists, n));
      };
      const timer = setTimeout(done, ASK_TIMEOUT_MS);
      timer.unref();
      pending.set(rid, (counts) => {
        lists.push(counts);
        if (lists.length > others) done();
      });
      channel.publish({ kind: 'tally-ask', rid } satisfies TallyMessage);
    });
}
