/** Pure freshness decisions with an injected clock (architecture: "pure functions with an injected clock"). */
export type Freshness = 'fresh' | 'stale' | 'expired';

export function freshness(fetchedAt: number, now: number, maxAgeMs: number, maxStaleMs: number): Freshness {
  const age = now - fetchedAt;
  if (age < maxAgeMs) return 'fresh';
  if (age < maxAgeMs + maxStaleMs) return 'stale';
  return 'expired';
}

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
