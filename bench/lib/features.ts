// The features of the other issues, as config keys the warm and metadata scenarios switch on one at a time and
// all together, to state the cost of each on the hot paths (issue #17): a token on every request (issue #15),
// a cooldown policy (issue #16: policy.minimumAge) and a bounded cache (cache.maxSize: the last-used tracking).
import { createHash } from 'node:crypto';
import type { NuproxyOptions } from './nuproxy.js';

const TOKEN = 'bench-read-token-6d1f0e2a';
/** What packageSourceCredentials send (HTTP Basic). */
export const AUTH: Record<string, string> = { authorization: `Basic ${Buffer.from(`bench:${TOKEN}`).toString('base64')}` };
export const ACCESS = { anonymous: false, tokens: [{ name: 'bench', sha256: createHash('sha256').update(TOKEN).digest('hex'), permissions: ['read'] }] };
/**
 * A cooldown of 7 days. The test upstream's versions are published 2024-01-01 (test/support/upstream/registration.ts),
 * so nothing of the bench is blocked: the cost measured is the gate (facts looked up, decision made) on every answer.
 * The gate reads the winning upstream's registration: the upstream must stay up while it is measured.
 */
export const COOLDOWN = { minimumAge: '7d' };
/** Far above the content: nothing is evicted, the cost is the last-used tracking. */
export const MAX_SIZE = '10GB';

export type Feature = 'token' | 'cooldown' | 'maxSize' | 'all';
export const FEATURE_LABELS: Record<Feature, string> = {
  token: 'token (access.anonymous false)',
  cooldown: `cooldown (policy.minimumAge ${COOLDOWN.minimumAge})`,
  maxSize: `cache.maxSize ${MAX_SIZE}`,
  all: 'all three',
};

/** The nuproxy options that switch `f` on, over `base` (its cache keys kept). */
export function withFeature(base: NuproxyOptions, f: Feature): NuproxyOptions {
  const token = f === 'token' || f === 'all';
  const cooldown = f === 'cooldown' || f === 'all';
  const bounded = f === 'maxSize' || f === 'all';
  return {
    ...base,
    cache: { ...base.cache, ...(bounded ? { maxSize: MAX_SIZE } : {}) },
    ...(token ? { access: ACCESS } : {}),
    ...(cooldown ? { policy: COOLDOWN } : {}),
  };
}

/** Headers every request to a nuproxy with `f` on carries. */
export function featureHeaders(f: Feature | undefined): Record<string, string> {
  return f === 'token' || f === 'all' ? AUTH : {};
}
