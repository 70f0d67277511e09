// Slowing down a burst of wrong tokens from one address (issue #15): the first few failures are answered at
// once, then each further one waits longer (doubling, capped), and an address past the hard limit is answered
// 429 without checking anything. Bounded memory: at most `addresses` addresses are remembered, the oldest
// forgotten first. Never a crash and never a queue: a delay is a timer on a response that is already decided.

export interface ThrottleOptions {
  /** Failures within `windowMs` answered at once. */
  free: number;
  /** The first delay after the free ones; it doubles with each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  windowMs: number;
  /** Failures within the window after which the address is refused (429) until the window ends. */
  blockAfter: number;
  /** Addresses remembered at most. */
  addresses: number;
}

const DEFAULTS: ThrottleOptions = { free: 5, baseDelayMs: 250, maxDelayMs: 5_000, windowMs: 60_000, blockAfter: 100, addresses: 10_000 };

interface Entry {
  fails: number;
  since: number;
}

export class FailureThrottle {
  private readonly o: ThrottleOptions;
  private readonly seen = new Map<string, Entry>();

  constructor(opts: Partial<ThrottleOptions> = {}, private readonly now: () => number = Date.now) {
    this.o = { ...DEFAULTS, ...opts };
  }

  private entry(address: string): Entry | undefined {
    const e = this.seen.get(address);
    if (e && this.now() - e.since > this.o.windowMs) {
      this.seen.delete(address);
      return undefined;
    }
    return e;
  }

  /** Seconds until `address` may try again, when it is past the hard limit; undefined otherwise. */
  blocked(address: string): number | undefined {
    const e = this.entry(address);
    if (!e || e.fails < this.o.blockAfter) return undefined;
    return Math.max(1, Math.ceil((e.since + this.o.windowMs - this.now()) / 1000));
  }

  /** Counts a failure; returns how long its answer should wait (0 for the first `free` ones). */
  fail(address: string): number {
    let e = this.entry(address);
    if (!e) {
      if (this.seen.size >= this.o.addresses) this.seen.delete(this.seen.keys().next().value!);
      e = { fails: 0, since: this.now() };
      this.seen.set(address, e);
    }
    e.fails++;
    const over = e.fails - this.o.free;
    if (over <= 0) return 0;
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over - 1, 20));
  }
}
