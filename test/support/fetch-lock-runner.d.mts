import type { FetchLock, fetchOnce } from '../../src/feed/fetch-lock.js';

/** What a contender's fetch does when it holds the lock. */
export interface Behaviour {
  /** What it fetches (and what every waiter must then get). */
  value: string;
  /** Lock TTL and the waiter's own deadline. */
  ttlMs: number;
  /** Waits for openGate before it finishes. */
  gate?: boolean;
  /** Throws instead of storing (after the gate). */
  fail?: boolean;
  /** Never finishes and never releases (a holder that hangs or dies). */
  hang?: boolean;
}

export interface Outcome {
  value?: string;
  error?: string;
  /** This contender ran the fetch. */
  fetched: boolean;
  ms: number;
}

export function runContender(o: { fetchOnce: typeof fetchOnce; lock: FetchLock; dir: string; key: string; how: Behaviour }): Promise<Outcome>;
export function fetchesOf(dir: string, key: string): Promise<string[]>;
export function openGate(dir: string, key: string): Promise<void>;
