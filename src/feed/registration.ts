import { LRUCache } from 'lru-cache';
import type { HiveName } from '../protocol/service-types.js';
import { REGISTRATION_HIVES } from '../protocol/service-types.js';
import { isSemVer2, lowerNormalizedVersion, parseVersion } from '../protocol/version.js';
import { answerKey, memoKind } from './cache-keys.js';
import { lazyBody, type DocAnswer } from './doc-answer.js';
import { checkFailures, combinedOutcome, fanOut, versionOf, type Gathered } from './fan-out.js';
import { activePolicy, type FeedContext } from './feed-context.js';
import { contentVersion } from './local-feed.js';
import { buildRegistration, leafDocument, synthesizeLeaf, type BuiltRegistration } from './merge-registration.js';
import type { MergedVersions } from './merge-versions.js';
import { orLocal } from './or-local.js';
import { LARGE_LEAVES, yieldTurn } from './sliced-json.js';
import type { LeafSet } from './upstream-docs.js';
import type { Versions } from './versions.js';

/** gzip-encoded hives, as on nuget.org (§3.1); the plain SemVer 1 hive is identity. */
const GZIP_HIVES = new Set<string>(['semver2', 'gz-semver1']);

type AnswerInfo = Omit<DocAnswer, 'key' | 'body'>;
/** A merged registration with what its answers say; `index`: its index answer, built once for a kept one. */
type Merged = { built: BuiltRegistration; answer: AnswerInfo; freshUntil: number; index?: DocAnswer };

/** The merged registration of an id per hive (index, pages, leaves); it lists the same versions as the flat container. */
export class Registrations {
  private readonly built: LRUCache<string, BuiltRegistration>;

  constructor(
    private readonly ctx: FeedContext,
    private readonly versions: Versions,
    /** How many built registrations are kept, keyed by the versions of their inputs. */
    maxBuilt = 500,
  ) {
    this.built = new LRUCache({ max: maxBuilt });
  }

  async index(hive: string, lowerId: string): Promise<DocAnswer | undefined> {
    const r = await this.registration(hive, lowerId);
    if (!r) return undefined;
    // kept with its registration: a hot index costs no answer object per request
    return (r.index ??= lazyBody({ key: answerKey.registrationIndex(hive, lowerId), ...r.answer }, () => JSON.stringify(r.built.index)));
  }

  async page(hive: string, lowerId: string, lower: string, upper: string): Promise<DocAnswer | undefined> {
    const r = await this.registration(hive, lowerId);
    const page = r?.built.pages.get(`${lower}/${upper}`);
    if (!r || !page) return undefined;
    return lazyBody({ key: answerKey.registrationPage(hive, lowerId, lower, upper), ...r.answer }, () => JSON.stringify(page));
  }

  async leaf(hive: string, lowerId: string, lowerVersion: string): Promise<DocAnswer | undefined> {
    const r = await this.registration(hive, lowerId);
    const leaf = r?.built.leaves.get(lowerVersion);
    if (!r || !leaf) return undefined;
    return lazyBody({ key: answerKey.registrationLeaf(hive, lowerId, lowerVersion), ...r.answer }, () => JSON.stringify(leafDocument(hive, lowerId, lowerVersion, leaf)));
  }

  private async registration(hive: string, lowerId: string): Promise<{ built: BuiltRegistration; answer: AnswerInfo; index?: DocAnswer } | undefined> {
    if (!isHive(hive)) return undefined;
    const { answers } = this.ctx;
    const kept = answers.get<Merged>(lowerId, memoKind.registration(hive));
    if (kept) return kept;
    const stamp = answers.stamp();
    const r = await orLocal(this.ctx.log, this.merged(hive, lowerId), this.fromDisk, { hive, lowerId });
    if (!r) return r;
    if (r.from === 'upstreams') {
      const m = r.value;
      if (m.answer.outcome === 'hit' && m.answer.partial.length === 0) answers.set(lowerId, memoKind.registration(hive), m, m.freshUntil, stamp);
      return m;
    }
    const version = contentVersion(JSON.stringify(r.value.index));
    return { built: r.value, answer: { version, gzip: GZIP_HIVES.has(hive), outcome: r.outcome, upstreams: [], partial: [] } };
  }

  private readonly fromDisk = async ({ hive, lowerId }: { hive: HiveName; lowerId: string }): Promise<BuiltRegistration | undefined> => {
    const built = await this.ctx.local.registration(hive, lowerId, this.ctx.allowedLocally);
    const policy = activePolicy(this.ctx);
    if (!built || !policy) return built;
    // the disk's own registration, what the policy blocks unlisted (by the same decisions as its version list)
    const d = await policy.decideAll(lowerId, [...built.leaves.keys()], undefined, `registration ${hive}`);
    if (d.blocked.size === 0) return built;
    return buildRegistration(hive, lowerId, [...built.leaves].map(([v, leaf]) => (d.allows(v) ? leaf : unlisted(leaf))));
  };

  private async merged(hive: HiveName, lowerId: string): Promise<Merged | undefined> {
    const routing = this.ctx.router.route(lowerId);
    // version lists and registration leaves are asked for at once: a cold answer costs the slowest upstream
    const [versions, g] = await Promise.all([
      this.versions.gather(lowerId, false),
      fanOut(routing.allowed, (name) => this.ctx.upstream(name).leaves(hive, lowerId)),
    ]);
    checkFailures(g, routing);
    if (versions.ok.length === 0) return undefined;
    // a large registration (issue #11: tens of thousands of leaves) gives the event loop a turn between the
    // steps of its merge; a normal one is merged in one synchronous step as before
    const large = g.ok.some((c) => c.value.leaves.length > LARGE_LEAVES);
    if (large) await yieldTurn();
    const merged = await this.versions.mergeLists(lowerId, versions);
    // the policy's decisions are part of the key: a built registration never outlives the blocked set it left out
    const policy = activePolicy(this.ctx);
    const decided = policy && (await policy.decideAll(lowerId, merged.versions, merged.winners, `registration ${hive}`));
    const key = `${hive}:${lowerId}:${versionOf(versions)}:${versionOf(g)}${decided ? `~${decided.fingerprint}` : ''}`;
    let built = this.built.get(key);
    if (!built) {
      if (large) await yieldTurn();
      let chosen = this.chooseLeaves(hive, lowerId, merged, g);
      if (decided?.blocked.size) chosen = chosen.map((leaf) => (decided.allows(leafVersionOf(leaf)) ? leaf : unlisted(leaf)));
      if (large) await yieldTurn();
      built = buildRegistration(hive, lowerId, chosen, g.ok[0]?.value.extras ?? {});
      this.built.set(key, built);
    }
    const all = [...versions.ok, ...g.ok];
    return {
      built,
      freshUntil: Math.min(versions.freshUntil, g.freshUntil),
      answer: {
        version: key,
        gzip: GZIP_HIVES.has(hive),
        outcome: combinedOutcome(all.map((c) => c.outcome)),
        upstreams: [...new Set(all.map((c) => c.upstream))],
        partial: [...new Set([...versions.failed, ...g.failed].map((f) => f.upstream))],
      },
    };
  }

  /**
   * For every version of the merged list, the winning upstream's leaf: its listing, dependencies, deprecation and
   * vulnerabilities describe the bytes that upstream serves. Another upstream's leaf would describe other bytes,
   * so a version whose winner has no leaf gets a minimal one instead (SemVer 2 hive; the SemVer 1 hives leave it out).
   */
  private chooseLeaves(hive: HiveName, lowerId: string, merged: MergedVersions, g: Gathered<LeafSet>): Record<string, unknown>[] {
    const byUpstream = new Map(g.ok.map((c) => [c.upstream, new Map(c.value.leaves.map((leaf) => [leafVersionOf(leaf), leaf]))]));
    const idSpelling = firstIdSpelling(g) ?? lowerId;
    const chosen: Record<string, unknown>[] = [];
    let synthesized = 0;
    for (const v of merged.versions) {
      if (hive !== 'semver2' && isSemVer2(parseVersion(v)!)) continue;
      let leaf = byUpstream.get(merged.winners[v]!)?.get(v);
      if (!leaf && hive === 'semver2') {
        leaf = synthesizeLeaf(hive, lowerId, idSpelling, v);
        synthesized++;
      }
      if (leaf) chosen.push(leaf);
    }
    if (synthesized > 0) this.ctx.log.warn({ id: lowerId, hive, synthesized }, "the winning upstream's registration lacks versions its flat container lists; minimal leaves synthesized");
    return chosen;
  }
}

/**
 * A blocked version's leaf in a registration: kept, unlisted. Restores choose from the flat container (where it is
 * absent), and clients that choose from registrations skip unlisted versions; but `dotnet list package
 * --vulnerable` reads the advisories of the versions a project already uses from here, and a removed leaf would
 * hide exactly the advisory the version is blocked for.
 */
function unlisted(leaf: Record<string, unknown>): Record<string, unknown> {
  return { ...leaf, catalogEntry: { ...(leaf.catalogEntry as Record<string, unknown>), listed: false } };
}

function isHive(h: string): h is HiveName {
  return REGISTRATION_HIVES.some((x) => x.name === h);
}

function leafVersionOf(leaf: Record<string, unknown>): string {
  return lowerNormalizedVersion(String((leaf.catalogEntry as Record<string, unknown>).version)) ?? '';
}

function firstIdSpelling(g: Gathered<LeafSet>): string | undefined {
  for (const c of g.ok) {
    const ce = c.value.leaves[0]?.catalogEntry as Record<string, unknown> | undefined;
    if (typeof ce?.id === 'string') return ce.id;
  }
  return undefined;
}
