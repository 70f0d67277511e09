// Waiting for a condition instead of sleeping: tests synchronise on what happened (a byte count, a request seen
// by the upstream, a state on /health/ready), polled with a bounded deadline, so they neither flake under load
// nor hang when the condition never comes.

/**
 * Polls `probe` (sync or async) every `stepMs` until it returns a truthy value, and returns that value. Throws
 * `timed out waiting for <what>` after `timeoutMs` (a generous ceiling: reaching it means the behaviour is wrong).
 */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, opts: { timeoutMs?: number; stepMs?: number } = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const stepMs = opts.stepMs ?? 10;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** A promise with its resolve function outside: a gate a test opens when something happened. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Retries `probe` until it stops throwing, and returns what it returned; after `timeoutMs` the last error is
 * thrown (e.g. a HEAD of an object that appears once its upload is complete).
 */
export async function eventually<T>(probe: () => Promise<T>, timeoutMs = 10_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, stepMs));
    }
  }
}
