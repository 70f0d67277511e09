import { LRUCache } from 'lru-cache';
import { answerKey, memoKind } from './cache-keys.js';
import { lazyBody, cacheAnswer, mergedAnswer, type DocAnswer } from './doc-answer.js';
import { checkFailures, fanOut, versionOf, type Gathered } from './fan-out.js';
import { activePolicy, routeToAsk, type FeedContext } from './feed-context.js';
import { mergeVersionListsSliced, type MergedVersions } from './merge-versions.js';
import { isNeverAsked } from './offline-upstream.js';
import { orLocal, type Sourced } from './or-local.js';
import { allBlockedError, withheldWarning, type Decided, type PolicyGate } from './policy-gate.js';
import type { Upstream } from './upstream.js';

/** The merged version list of an id (flat container), and the upstream that wins each version. */
export class Versions {
  private readonly merged: LRUCache<string, MergedVersions>;

  constructor(
    private readonly ctx: FeedContext,
    /** How many merged lists are kept, keyed by the versions of their inputs. */
    maxMergedLists = 5000,
  ) {
    this.merged = new LRUCache({ max: maxMergedLists });
  }

  /** What every allowed upstream lists for an id (failures checked: an owner's failure throws). */
  async gather(lowerId: string, revalidate: boolean): Promise<Gathered<string[]>> {
    const routing = routeToAsk(this.ctx, lowerId);
    const g = await fanOut(routing.allowed, (name) => this.ctx.upstream(name).versions(lowerId, revalidate));
    checkFailures(g, routing);
    for (const f of g.failed) this.ctx.log.warn({ id: lowerId, upstream: f.upstream, err: (f.error as Error).message }, 'upstream failed; version list is partial');
    return g;
  }

  /** The merged version list of an id, with the upstream that wins each version. */
  async mergedVersions(lowerId: string, opts: { revalidate?: boolean } = {}): Promise<(MergedVersions & { gathered: Gathered<string[]> }) | undefined> {
    const g = await this.gather(lowerId, opts.revalidate === true);
    if (g.ok.length === 0) return undefined;
    return { ...(await this.mergeLists(lowerId, g)), gathered: g };
  }

  /**
   * Merged lists, memoized by the versions of their inputs (a hot id is not merged and sorted again). Long lists
   * (over LARGE_VERSIONS in all) are merged in slices that give other requests a turn; others in one go.
   */
  async mergeLists(lowerId: string, g: Gathered<string[]>): Promise<MergedVersions> {
    const key = `${lowerId}\n${versionOf(g)}`;
    const merged = this.merged.get(key);
    if (merged) return merged;
    // a merge in slices lets other requests in: those for the same lists wait for it instead of merging again
    let merging = this.merging.get(key);
    if (!merging) {
      merging = mergeVersionListsSliced(g.ok.map((c) => ({ upstream: c.upstream, versions: c.value })));
      this.merging.set(key, merging);
      void merging.then((m) => this.merged.set(key, m)).finally(() => this.merging.delete(key)).catch(() => undefined);
    }
    return merging;
  }

  private readonly merging = new Map<string, Promise<MergedVersions>>();

  async answer(lowerId: string): Promise<DocAnswer | undefined> {
    const { answers } = this.ctx;
    const kept = answers.get<DocAnswer>(lowerId, memoKind.versions);
    if (kept) return kept;
    const stamp = answers.stamp();
    const r = await orLocal(this.ctx.log, this.mergedVersions(lowerId), this.fromDisk, lowerId);
    if (r === undefined) return undefined;
    const policy = activePolicy(this.ctx);
    if (policy) return this.filteredAnswer(policy, lowerId, r, stamp);
    if (r.from === 'cache') return cacheAnswer(answerKey.versions(lowerId), JSON.stringify({ versions: r.value }), false, r.outcome);
    const merged = r.value;
    // the body is only built when the render cache does not hold this version of the answer
    const answer = lazyBody(mergedAnswer(this.ctx.log, answerKey.versions(lowerId), '', versionOf(merged.gathered), false, merged.gathered), () => JSON.stringify({ versions: merged.versions }));
    if (answer.outcome === 'hit' && answer.partial.length === 0) answers.set(lowerId, memoKind.versions, answer, merged.gathered.freshUntil, stamp);
    return answer;
  }

  /**
   * The answer with the versions the policy blocks left out, and a warning line naming them (X-NuGet-Warning);
   * nothing left: a 404 naming the rule. Its version names the blocked set, so a render cache never serves it for
   * another set.
   */
  private async filteredAnswer(policy: PolicyGate, lowerId: string, r: Sourced<MergedVersions & { gathered: Gathered<string[]> }, string[]>, stamp: number): Promise<DocAnswer | undefined> {
    const versions = r.from === 'cache' ? r.value : r.value.versions;
    const d = await policy.decideAll(lowerId, versions, r.from === 'cache' ? undefined : r.value.winners, 'versions');
    const shown = d.blocked.size ? versions.filter(d.allows) : versions;
    if (shown.length === 0) throw allBlockedError(lowerId, d, versions);
    const warning = withheldWarning(lowerId, d, versions);
    if (r.from === 'cache') return { ...cacheAnswer(answerKey.versions(lowerId), JSON.stringify({ versions: shown }), false, r.outcome), ...(warning ? { warning } : {}) };
    const g = r.value.gathered;
    const answer = lazyBody({ ...mergedAnswer(this.ctx.log, answerKey.versions(lowerId), '', `${versionOf(g)}~${d.fingerprint}`, false, g), ...(warning ? { warning } : {}) }, () => JSON.stringify({ versions: shown }));
    if (answer.outcome === 'hit' && answer.partial.length === 0) this.ctx.answers.set(lowerId, memoKind.versions, answer, g.freshUntil, stamp);
    return answer;
  }

  /**
   * The merged list without the versions the policy blocks (warm resolves ranges over it), and the decisions
   * (`blocked`: to say what was skipped). Without a policy: mergedVersions.
   */
  async allowedVersions(lowerId: string): Promise<(MergedVersions & { blocked: Decided['blocked'] }) | undefined> {
    const m = await this.mergedVersions(lowerId);
    if (!m) return undefined;
    const policy = activePolicy(this.ctx);
    if (!policy) return { ...m, blocked: new Map() };
    const d = await policy.decideAll(lowerId, m.versions, m.winners, 'versions');
    return { versions: m.versions.filter(d.allows), winners: m.winners, blocked: d.blocked };
  }

  private readonly fromDisk = async (lowerId: string): Promise<string[] | undefined> => {
    const versions = await this.ctx.local.versions(lowerId, this.ctx.allowedLocally);
    return versions.length ? versions : undefined;
  };

  /**
   * The upstream a package file of `lowerVersion` comes from: the one that wins the version in the merged list.
   * An exact version the cached lists lack triggers one revalidation of the id before the answer is "none" (a
   * package published elsewhere shows up without waiting for the lists to expire). A version missing while an
   * allowed upstream failed throws that failure (a 502, not a 404: "down" never looks like "absent"). No
   * upstream asked at all (offline): only what is cached, so none.
   */
  async winner(lowerId: string, lowerVersion: string): Promise<{ upstream: Upstream; partial: string[] } | undefined> {
    let g: Gathered<string[]>;
    try {
      g = await this.gather(lowerId, false);
    } catch (err) {
      if (isNeverAsked(err)) return undefined;
      throw err;
    }
    let winner = winnerOf(g, lowerVersion);
    if (!winner && g.fromCache) {
      g = await this.gather(lowerId, true);
      winner = winnerOf(g, lowerVersion);
    }
    if (!winner) {
      const failed = g.failed[0];
      if (failed) throw failed.error;
      return undefined;
    }
    return { upstream: this.ctx.upstream(winner), partial: g.failed.map((f) => f.upstream) };
  }
}

function winnerOf(g: Gathered<string[]>, lowerVersion: string): string | undefined {
  for (const c of g.ok) if (c.value.includes(lowerVersion)) return c.upstream;
  return undefined;
}
