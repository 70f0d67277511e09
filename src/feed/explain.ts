import { fanOut } from './fan-out.js';
import { activePolicy, type FeedContext } from './feed-context.js';
import { mergeVersionLists, type MergedVersions } from './merge-versions.js';

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
    ...(activePolicy(ctx) ? { policy: { active: true } } : {}),
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
    versions: await versionsWithDecisions(ctx, lowerId, merged),
  };
}

/**
 * Each version with its winner and, under a policy, its decision: allowed or the rule that blocks it and why, the
 * rules an exemption let through, and the facts decided on (published, licence, advisories).
 */
async function versionsWithDecisions(ctx: FeedContext, lowerId: string, merged: MergedVersions): Promise<Record<string, unknown>[]> {
  const policy = activePolicy(ctx);
  const decisions = policy && (await policy.explainAll(lowerId, merged.versions, merged.winners));
  return merged.versions.map((v) => {
    const row: Record<string, unknown> = { version: v, servedBy: merged.winners[v] };
    const e = decisions?.get(v);
    if (!e) return row;
    const { decision: d, facts: f } = e;
    row.policy = {
      allowed: d.allowed,
      ...(d.rule ? { rule: d.rule } : {}),
      ...(d.reason ? { reason: d.reason } : {}),
      ...(d.exempted?.length ? { exempted: d.exempted } : {}),
      ...(d.listed?.length ? { listed: d.listed } : {}),
      facts: {
        ...(f.published !== undefined ? { published: f.published } : {}),
        ...(f.listed !== undefined ? { listed: f.listed } : {}),
        ...(f.licenseExpression !== undefined ? { licenseExpression: f.licenseExpression } : {}),
        ...(f.licenseUrl !== undefined ? { licenseUrl: f.licenseUrl } : {}),
        ...(f.vulnerabilities?.length ? { vulnerabilities: f.vulnerabilities } : {}),
      },
    };
    return row;
  });
}
