import { NuproxyError } from '../errors.js';
import type { BlobResult } from '../upstream/nuget-upstream.js';
import type { Contribution } from './fan-out.js';
import type { Upstream, UpstreamHealth } from './upstream.js';
import type { LeafSet, VulnIndex } from './upstream-docs.js';
import type { UpstreamResources } from '../protocol/service-index.js';
import type { CacheOutcome } from './metadata-cache.js';

/** The failure of an upstream that is never asked: an upstream failure, so the cache answers (see isNeverAsked). */
export class NeverAskedError extends NuproxyError {
  constructor(upstream: string) {
    super('UPSTREAM_UNREACHABLE', `offline mode: upstream ${upstream} is never asked`, { upstream });
  }
}

/**
 * The failure says no upstream was asked at all (offline), rather than that one is down: the cache's answer is
 * then the whole answer (a hit; nothing cached is a 404, not a 502).
 */
export function isNeverAsked(err: unknown): boolean {
  return err instanceof NeverAskedError;
}

type Json = Record<string, unknown>;

/**
 * When every upstream is an OfflineUpstream: the failure a fan-out over none of them stands for. An id the rules
 * allow no upstream for is asked of nobody, so nothing fails; offline its answer is still the disk's (an imported
 * copy), as for every other id.
 */
export function neverAskedOf(upstreams: readonly Upstream[]): NeverAskedError | undefined {
  const first = upstreams[0];
  return first && upstreams.every((u) => u instanceof OfflineUpstream) ? new NeverAskedError(first.name) : undefined;
}

/**
 * Offline mode as an upstream (a null object): every call fails at once as an upstream failure, before any
 * store or socket is touched, so every answer comes from the disk cache alone. Its circuit never opens.
 * `writable` is its configured role, as /health shows it; nothing is pushed to it (the feed publishes to no
 * upstream when none is ever asked: neverAskedOf).
 */
export class OfflineUpstream implements Upstream {
  /** One failure, made once: an offline answer costs no error (and stack) per request. */
  private readonly failure: Promise<never>;

  constructor(
    readonly name: string,
    readonly writable = false,
  ) {
    this.failure = Promise.reject(new NeverAskedError(name));
    this.failure.catch(() => undefined); // rejected before anyone awaits it: not an unhandled rejection
  }

  resources(): Promise<{ resources: UpstreamResources; outcome: CacheOutcome }> {
    return this.failure;
  }

  versions(): Promise<Contribution<string[]>> {
    return this.failure;
  }

  leaves(): Promise<Contribution<LeafSet>> {
    return this.failure;
  }

  search(): Promise<Contribution<Json>> {
    return this.failure;
  }

  autocomplete(): Promise<Contribution<Json>> {
    return this.failure;
  }

  vulnerabilityIndex(): Promise<Contribution<VulnIndex>> {
    return this.failure;
  }

  vulnerabilityPage(): Promise<Contribution<Json>> {
    return this.failure;
  }

  openPackage(): Promise<BlobResult | undefined> {
    return this.failure;
  }

  send(): Promise<never> {
    return this.failure;
  }

  health(): UpstreamHealth {
    return { state: 'closed', consecutiveFailures: 0 };
  }
}
