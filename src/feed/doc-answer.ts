import type { Logger } from '../log.js';
import { combinedOutcome, type Gathered } from './fan-out.js';
import { contentVersion } from './local-feed.js';
import type { CacheOutcome } from './metadata-cache.js';

/** A metadata answer: the stored body (placeholder base, see protocol/urls.ts) and how it was obtained. */
export interface DocAnswer {
  key: string;
  body: string;
  /** Changes whenever the body may have changed (render caches key on it). */
  version: string;
  gzip: boolean;
  outcome: CacheOutcome;
  /** Upstreams whose data the answer holds. */
  upstreams: string[];
  /** Upstreams that failed and are missing from this answer (it is then not cached and marked). */
  partial: string[];
  /**
   * A line for the client to print (X-NuGet-Warning, which the NuGet client logs as a warning): what the policy
   * withholds from a version list, so a pinned reference to a blocked version fails with the rule in the output.
   */
  warning?: string;
}

/** An answer merged from the upstreams' contributions (partial when some failed: each failure is logged). */
export function mergedAnswer(log: Logger, key: string, body: string, version: string, gzip: boolean, g: Gathered<unknown>): DocAnswer {
  for (const f of g.failed) log.warn({ key, upstream: f.upstream, err: (f.error as Error).message }, 'upstream failed; answer is partial');
  return {
    key,
    body,
    version,
    gzip,
    outcome: combinedOutcome(g.ok.map((c) => c.outcome)),
    upstreams: g.ok.map((c) => c.upstream),
    partial: g.failed.map((f) => f.upstream),
  };
}

/** An answer from the disk cache alone (`outcome`: see orLocal). */
export function cacheAnswer(key: string, body: string, gzip: boolean, outcome: CacheOutcome): DocAnswer {
  return { key, body, version: contentVersion(body), gzip, outcome, upstreams: [], partial: [] };
}

/** An answer whose body is only built when somebody reads it (a render-cache hit never does). */
export function lazyBody(answer: Omit<DocAnswer, 'body'>, build: () => string): DocAnswer {
  let body: string | undefined;
  return Object.defineProperty(answer, 'body', { enumerable: true, get: () => (body ??= build()) }) as DocAnswer;
}
