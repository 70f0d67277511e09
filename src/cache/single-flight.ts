/** Concurrent calls with the same key share one promise; the key is free again once it settles. */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** `onJoin`: told of each call that joined one under way (the metrics' single-flight joins). */
  constructor(private readonly onJoin?: () => void) {}

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.inflight.get(key);
    if (existing) {
      this.onJoin?.();
      return existing;
    }
    // fn starts synchronously; a synchronous throw becomes a rejection. The key is freed in a `.finally`, which
    // always runs after the set below (freeing it inside the call, as before, ran before the set when fn threw
    // synchronously and left the rejected promise in the map for good).
    const p: Promise<T> = (async () => fn())().finally(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    return p;
  }

  get size(): number {
    return this.inflight.size;
  }
}
