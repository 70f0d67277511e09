import { fanOut } from './fan-out.js';
import type { FeedContext } from './feed-context.js';
import { mergeVersionLists } from './merge-versions.js';

/** Why an id is answered as it is: rules, what each upstream lists, and which upstream wins each version. */
export async function explain(ctx: FeedContext, lowerId: string): Promise<Record<string, unknown>> {
  const routing = ctx.router.route(lowerId);
  const g = await fanOut(routing.allowed, (name) => ctx.upstream(name).versions(lowerId, false));
  const merged = mergeVersionLists(g.ok.map((c) => ({ upstream: c.upstream, versions: c.value })));
  return {
    id: lowerId,
    owner: routing.owner ?? null,
    ownerPattern: routing.ownerPattern ?? null,
    rules: routing.decisions,
    upstreams: routing.decisions.map((d) => {
      const ok = g.ok.find((c) => c.upstream === d.upstream);
      const failed = g.failed.find((f) => f.upstream === d.upstream);
      return {
        name: d.upstream,
        allowed: d.allowed,
        status: !d.allowed ? 'not asked' : ok ? 'listed' : failed ? 'failed' : 'not found',
        ...(ok ? { versions: ok.value, cache: ok.outcome } : {}),
        ...(failed ? { error: (failed.error as Error).message } : {}),
      };
    }),
    versions: merged.versions.map((v) => ({ version: v, servedBy: merged.winners[v] })),
  };
}
