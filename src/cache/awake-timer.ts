/**
 * A time bound on an answer that counts only the time this process could have read it.
 *
 * A plain `setTimeout` race loses to a stalled event loop: when the process is busy for longer than the bound
 * (hashing, parsing, a burst of sockets), the answer may be sitting in the socket already, but the timers phase
 * runs before the poll phase that would read it, so the timer "wins" and a healthy server is taken for a slow
 * one. Two remedies here:
 * - a timer that fires late (the loop was not listening) is re-armed for the time lost, so the other side gets
 *   its whole bound of listening time; never past `maxMs` after the start, so a server that really hangs is
 *   still given up on in bounded time;
 * - the final give-up waits one `setImmediate`: the poll phase in between reads whatever has arrived, and an
 *   answer already here settles the race first.
 */

/** A timer this much late or more counts as a stall of the process, not as time the other side had. */
const STALL_MS = 20;

/**
 * Calls `fire` once `ms` of listening time have passed (at most `maxMs` of wall time after now: by default
 * 4×ms, and at least ms + 1 s, so a stall of a second still leaves the other side time to be read). Returns a
 * cancel function.
 */
export function awakeTimer(ms: number, fire: () => void, maxMs = Math.max(ms * 4, ms + 1_000)): () => void {
  const start = Date.now();
  let due = start + ms;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let cancelled = false;
  const check = (): void => {
    timer = undefined;
    if (cancelled) return;
    const now = Date.now();
    const late = now - due;
    const last = start + Math.max(ms, maxMs);
    if (late >= STALL_MS && now < last) {
      due = Math.min(now + late, last);
      timer = setTimeout(check, due - now);
      return;
    }
    immediate = setImmediate(() => {
      immediate = undefined;
      if (!cancelled) fire();
    });
  };
  timer = setTimeout(check, ms);
  return () => {
    cancelled = true;
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  };
}
