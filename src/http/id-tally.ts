// Requests and bytes served per package id, for the admin summary's "top ids" (issue #14). Recorded once per
// finished flat-container request (the route already knows the id): one Map lookup, and an insert for a new id.
// Bounded: past `maxIds` the ids seen only once are dropped in one sweep (amortised over many requests), so a
// scan of random ids cannot grow it and the hot ids, which are what "top" shows, keep their counts.

export interface IdCount {
  id: string;
  requests: number;
  bytes: number;
}

export class IdTally {
  private readonly counts = new Map<string, { requests: number; bytes: number }>();

  constructor(private readonly maxIds = 4096) {}

  note(lowerId: string, bytes: number): void {
    const c = this.counts.get(lowerId);
    if (c) {
      c.requests++;
      c.bytes += bytes;
      return;
    }
    if (this.counts.size >= this.maxIds) this.sweep();
    this.counts.set(lowerId, { requests: 1, bytes });
  }

  /** Adds counts (no sweep: only for a merge). */
  add(c: IdCount): void {
    const had = this.counts.get(c.id);
    if (had) {
      had.requests += c.requests;
      had.bytes += c.bytes;
    } else this.counts.set(c.id, { requests: c.requests, bytes: c.bytes });
  }

  /** The `n` ids with the most requests, and the `n` with the most bytes served. */
  top(n: number): { byRequests: IdCount[]; byBytes: IdCount[] } {
    const all = [...this.counts].map(([id, c]) => ({ id, requests: c.requests, bytes: c.bytes }));
    return {
      byRequests: [...all].sort((a, b) => b.requests - a.requests || b.bytes - a.bytes || (a.id < b.id ? -1 : 1)).slice(0, n),
      byBytes: [...all].sort((a, b) => b.bytes - a.bytes || b.requests - a.requests || (a.id < b.id ? -1 : 1)).slice(0, n),
    };
  }

  /** Every count (another worker's tally is merged into the asking worker's answer with `merge`). */
  entries(): IdCount[] {
    return [...this.counts].map(([id, c]) => ({ id, requests: c.requests, bytes: c.bytes }));
  }

  get size(): number {
    return this.counts.size;
  }

  private sweep(): void {
    // the long tail goes; if everything is hot, halve every count and drop what falls to zero
    for (const [id, c] of this.counts) if (c.requests <= 1) this.counts.delete(id);
    if (this.counts.size < this.maxIds) return;
    for (const [id, c] of this.counts) {
      c.requests >>= 1;
      c.bytes = Math.floor(c.bytes / 2);
      if (c.requests === 0) this.counts.delete(id);
    }
  }
}

/** The top ids of several tallies' counts added up (the workers' summary). */
export function topOf(lists: readonly IdCount[][], n: number): { byRequests: IdCount[]; byBytes: IdCount[] } {
  const sum = new IdTally(Number.MAX_SAFE_INTEGER);
  for (const list of lists) for (const c of list) sum.add(c);
  return sum.top(n);
}
