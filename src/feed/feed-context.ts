import type { Logger } from '../log.js';
import type { IdRouter, IdRouting } from '../protocol/id-rules.js';
import { capabilitiesOf, type ProxyCapabilities } from '../protocol/service-index.js';
import type { AnswerMemo } from './answer-memo.js';
import type { LocalFeed } from './local-feed.js';
import type { PolicyGate } from './policy-gate.js';
import { neverAskedOf } from './offline-upstream.js';
import type { Upstream } from './upstream.js';

/** Which cached packages the disk may answer with (by the id and the upstream that supplied the copy). */
export type AllowedLocally = (lowerId: string, upstream: string | undefined) => boolean;

/** What every resource of the feed shares: the upstreams, the id rules, the disk cache, the answer memo. */
export interface FeedContext {
  /** In priority order. */
  readonly upstreams: readonly Upstream[];
  /** Their names, in the same order. */
  readonly names: readonly string[];
  upstream(name: string): Upstream;
  readonly router: IdRouter;
  readonly local: LocalFeed;
  readonly answers: AnswerMemo;
  /**
   * Which cached packages the disk may answer with: those stored from an upstream the id rules allow for the id
   * today (an owned id never shows a copy another upstream supplied), and imported ones.
   */
  readonly allowedLocally: AllowedLocally;
  readonly log: Logger;
  /** Set when no upstream is ever asked (offline): see routeToAsk. */
  readonly neverAsked: Error | undefined;
  /**
   * The supply-chain policy (issue #16), when the config has one: read through activePolicy, since a policy
   * whose only rule is `malicious` turns on once advisories are imported.
   */
  readonly policy?: PolicyGate | undefined;
}

/**
 * The policy when one is in force: every answer that lists or hands out versions asks it. Undefined when off:
 * every path is today's, untouched (one property read added).
 */
export function activePolicy(ctx: FeedContext): PolicyGate | undefined {
  const p = ctx.policy;
  return p?.active ? p : undefined;
}

export function createFeedContext(upstreams: readonly Upstream[], router: IdRouter, local: LocalFeed, answers: AnswerMemo, log: Logger): FeedContext {
  const byName = new Map(upstreams.map((u) => [u.name, u]));
  return {
    upstreams,
    names: upstreams.map((u) => u.name),
    upstream: (name) => byName.get(name)!,
    router,
    local,
    answers,
    allowedLocally: (lowerId, upstream) => upstream === undefined || upstream === 'import' || router.route(lowerId).allowed.includes(upstream),
    log,
    neverAsked: neverAskedOf(upstreams),
  };
}

/**
 * The routing of an id whose allowed upstreams a fan-out asks. Asking none when none is ever asked (offline) is
 * the never-asked failure, so the disk answers for such an id too (orLocal), not "absent" as online.
 */
export function routeToAsk(ctx: FeedContext, lowerId: string): IdRouting {
  const routing = ctx.router.route(lowerId);
  if (routing.allowed.length === 0 && ctx.neverAsked) throw ctx.neverAsked;
  return routing;
}

/** The upstreams whose service index offers what `pick` looks for, in priority order (an unknown one counts: it is asked). */
export async function withCapability(ctx: FeedContext, pick: (c: ProxyCapabilities) => boolean): Promise<string[]> {
  const out: string[] = [];
  await Promise.all(
    ctx.upstreams.map(async (u) => {
      try {
        if (pick(capabilitiesOf((await u.resources()).resources))) out.push(u.name);
      } catch {
        out.push(u.name); // unknown: ask it, and let the failure show as partial
      }
    }),
  );
  return out.sort((a, b) => ctx.names.indexOf(a) - ctx.names.indexOf(b));
}
