// The supply-chain policy (issue #16) applied to the feed's answers: the facts about each version are gathered
// from the upstream that wins it (its registration leaves), the policy decides, and every answer that lists
// versions (flat container, registration, search, autocomplete) or hands one out (downloads, warm, export) asks
// here. Decisions are made at answer time, never stored (but for a 5 s memo of allowed downloads, see allowedNow):
// a policy change applies at the next start with the cache untouched. Off (no `policy` keys), nothing here is ever called.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { NuproxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { noMetrics, type Metrics } from '../metrics/metrics.js';
import type { Decision, Policy, Severity, VersionFacts } from '../policy/decision.js';
import { decodeXmlEntities } from '../protocol/nuspec.js';
import { lowerNormalizedVersion } from '../protocol/version.js';
import type { FeedContext } from './feed-context.js';
import { covering, VulnerabilityFacts } from './policy-advisories.js';
import { isNeverAsked } from './offline-upstream.js';

type Json = Record<string, unknown>;
/** How long an allowed download decision is reused (see PolicyGate.allowedNow). */
const ALLOWED_MEMO_MS = 5_000;
/** What a registration leaf says about its version (the rest of VersionFacts is the id, version and winner). */
type LeafFacts = Pick<VersionFacts, 'published' | 'listed' | 'licenseExpression' | 'licenseUrl' | 'vulnerabilities'>;

/** The decisions on the versions of one id (only the blocked ones are kept; every other version is allowed). */
export interface Decided {
  readonly blocked: ReadonlyMap<string, Decision>;
  /** Changes whenever the blocked set (or a rule) does: part of every filtered answer's version. */
  readonly fingerprint: string;
  allows(lowerVersion: string): boolean;
}

/** The merged version list of an id (versions.ts): its versions, and the upstream that wins each. */
export type WinnerOf = (lowerId: string) => Promise<{ versions: readonly string[]; winners: Record<string, string> } | undefined>;

export class PolicyGate {
  /** Leaf facts per upstream, id and stored registration version (a hot id's leaves are read once per change). */
  private readonly facts = new LRUCache<string, Map<string, LeafFacts>>({ max: 2000 });
  private readonly needsFacts: boolean;
  private readonly vulnInfo = new VulnerabilityFacts();
  private readonly nuspecLicences = new LRUCache<string, Pick<LeafFacts, 'licenseExpression' | 'licenseUrl'>>({ max: 20_000 });
  /**
   * Downloads allowed a moment ago (id/version → the policy's revision then): a hot package's next downloads
   * skip the winner lookup, the leaves and the decision for ALLOWED_MEMO_MS. Only allowed decisions are kept
   * (time only makes a version older, so a cooldown never turns an allowed version into a blocked one); an
   * advisories import changes the revision and so ends them at once; a changed registration is seen after
   * at most ALLOWED_MEMO_MS more.
   */
  private readonly allowedNow = new LRUCache<string, { revision: string; until: number }>({ max: 20_000 });

  constructor(
    private readonly ctx: FeedContext,
    readonly policy: Policy,
    private readonly log: Logger,
    private readonly metrics: Metrics = noMetrics,
    private readonly now: () => number = Date.now,
  ) {
    const n = policy.needs;
    this.needsFacts = n.published || n.license || n.vulnerabilities;
  }

  get active(): boolean {
    return this.policy.active;
  }

  /**
   * The decisions on `versions` of an id (lowercase normalized), each by the policy of the upstream that wins it
   * (`winners`; a version without one, e.g. from the disk alone, by the first upstream allowed for the id).
   * `what` names the answer in the debug line that lists what it withholds.
   */
  async decideAll(lowerId: string, versions: readonly string[], winners: Readonly<Record<string, string>> | undefined, what: string): Promise<Decided> {
    const blocked = new Map<string, Decision>();
    for (const [v, { decision }] of await this.explainAll(lowerId, versions, winners)) {
      if (decision.allowed) continue;
      blocked.set(v, decision);
      this.metrics.policyBlock(decision.rule ?? 'unknown');
    }
    if (blocked.size > 0) this.log.debug({ id: lowerId, answer: what, blocked: [...blocked].map(([v, d]) => `${v}:${d.rule}`) }, 'versions withheld by policy');
    return decided(blocked);
  }

  /** Every version's decision with the facts behind it (/explain): nothing logged or counted. */
  async explainAll(lowerId: string, versions: readonly string[], winners: Readonly<Record<string, string>> | undefined): Promise<Map<string, { decision: Decision; facts: VersionFacts }>> {
    const fallback = this.fallbackUpstream(lowerId);
    const upstreams = new Set<string>();
    for (const v of versions) upstreams.add(winners?.[v] ?? fallback);
    const facts = await this.factsOf(lowerId, [...upstreams]);
    const out = new Map<string, { decision: Decision; facts: VersionFacts }>();
    const now = this.now();
    for (const v of versions) {
      const upstream = winners?.[v] ?? fallback;
      let known = facts.get(upstream)?.(v);
      // no leaf says (offline, a flat-only upstream): a cached package's nuspec still names its licence
      if (this.policy.needs.license && known === undefined) known = await this.nuspecLicence(lowerId, v);
      const f: VersionFacts = { lowerId, lowerVersion: v, upstream, ...known };
      out.set(v, { decision: this.policy.decide(f, now), facts: f });
    }
    return out;
  }

  /** The decision on one version (`winner`: the upstream that wins it, if known), with the facts behind it. */
  async decideOne(lowerId: string, lowerVersion: string, winner: string | undefined): Promise<{ decision: Decision; facts: VersionFacts }> {
    const upstream = winner ?? this.fallbackUpstream(lowerId);
    const d = await this.explainAll(lowerId, [lowerVersion], { [lowerVersion]: upstream });
    return d.get(lowerVersion)!;
  }

  /** Whether a download of the version was allowed a moment ago, under the policy's current revision. */
  allowedRecently(lowerId: string, lowerVersion: string): boolean {
    const kept = this.allowedNow.get(`${lowerId}/${lowerVersion}`);
    return kept !== undefined && kept.revision === this.policy.revision && this.now() < kept.until;
  }

  /** Throws BLOCKED_BY_POLICY (a 404 naming the rule) for a version the policy blocks; logged at info and counted. */
  async check(lowerId: string, lowerVersion: string, winner: string | undefined): Promise<void> {
    const revision = this.policy.revision; // before the facts: an import meanwhile must not be memoized as seen
    const { decision } = await this.decideOne(lowerId, lowerVersion, winner);
    if (decision.allowed) {
      this.allowedNow.set(`${lowerId}/${lowerVersion}`, { revision, until: this.now() + ALLOWED_MEMO_MS });
      return;
    }
    const rule = decision.rule ?? 'unknown';
    this.metrics.policyBlock(rule);
    this.log.info({ id: lowerId, version: lowerVersion, rule, reason: decision.reason }, 'download refused by policy');
    throw blockedError(lowerId, lowerVersion, decision);
  }

  /** Without a winner (a version only the disk holds): the first upstream the id rules allow, else the first. */
  private fallbackUpstream(lowerId: string): string {
    return this.ctx.router.route(lowerId).allowed[0] ?? this.ctx.names[0]!;
  }

  /**
   * What the winning upstreams say about each version, when a rule in force needs it: their registration leaves
   * (published, listed, licence, advisories) and, for the vulnerable rule, their VulnerabilityInfo pages too. A
   * document that cannot be read leaves those facts unknown (the policy decides on what is known; the failure is
   * logged): the version list itself was answered, so the upstream is reachable most times.
   */
  private async factsOf(lowerId: string, upstreams: readonly string[]): Promise<Map<string, (lowerVersion: string) => LeafFacts | undefined>> {
    const out = new Map<string, (lowerVersion: string) => LeafFacts | undefined>();
    if (!this.needsFacts) return out;
    await Promise.all(
      upstreams.map(async (name) => {
        const [leaves, ranged] = await Promise.all([
          this.leafFactsOf(name, lowerId),
          this.policy.needs.vulnerabilities ? this.vulnInfo.of(this.ctx.upstream(name), lowerId, (err) => this.unread(lowerId, name, 'vulnerability data', err)) : [],
        ]);
        out.set(name, (v) => {
          const leaf = leaves?.get(v);
          const more = covering(ranged, v);
          if (more.length === 0) return leaf;
          const known = leaf?.vulnerabilities ?? [];
          const extra = more.filter((a) => !known.some((k) => k.advisoryUrl !== undefined && k.advisoryUrl === a.advisoryUrl));
          return { ...leaf, vulnerabilities: [...known, ...extra] };
        });
      }),
    );
    return out;
  }

  /** The registration leaves' facts of one upstream (kept per stored registration version); undefined when unread. */
  private async leafFactsOf(name: string, lowerId: string): Promise<Map<string, LeafFacts> | undefined> {
    try {
      const c = await this.ctx.upstream(name).leaves('semver2', lowerId);
      if (c.kind !== 'ok') return undefined;
      const key = `${name}\n${lowerId}\n${c.version}`;
      let m = this.facts.get(key);
      if (!m) {
        m = new Map();
        for (const leaf of c.value.leaves) {
          const f = leafFacts(leaf);
          if (f) m.set(f.version, f.facts);
        }
        this.facts.set(key, m);
      }
      return m;
    } catch (err) {
      this.unread(lowerId, name, 'registration', err);
      return undefined;
    }
  }

  /** The licence a cached package's nuspec names (kept: a package's nuspec never changes); none when not cached. */
  private async nuspecLicence(lowerId: string, lowerVersion: string): Promise<Pick<LeafFacts, 'licenseExpression' | 'licenseUrl'>> {
    const key = `${lowerId}@${lowerVersion}`;
    const kept = this.nuspecLicences.get(key);
    if (kept) return kept;
    const xml = await this.ctx.local.nuspec(lowerId, lowerVersion).catch(() => undefined);
    if (xml === undefined) return {};
    const l = licenceOfNuspec(xml);
    this.nuspecLicences.set(key, l);
    return l;
  }

  private unread(lowerId: string, upstream: string, what: string, err: unknown): void {
    if (isNeverAsked(err)) return; // offline: nothing is asked, the disk's answers are decided on what is known
    this.log.warn({ id: lowerId, upstream, err: (err as Error).message }, `policy: the winning upstream's ${what} could not be read; what it would say is unknown`);
  }
}

/** The error of a refused download: 404 with the rule (http/errors.ts adds X-Nuproxy-Policy and the reason phrase). */
export function blockedError(lowerId: string, lowerVersion: string, d: Decision): NuproxyError {
  const rule = d.rule ?? 'unknown';
  const why = d.reason ? `: ${d.reason}` : '';
  return new NuproxyError('BLOCKED_BY_POLICY', `${lowerId} ${lowerVersion} is blocked by nuproxy policy ${rule}${why}`, { rule, reason: d.reason });
}

/**
 * The X-NuGet-Warning line of a version list that withholds versions: how many, the newest few with their rule,
 * and why the newest is withheld (printable ASCII only, bounded: it is a header).
 */
export function withheldWarning(lowerId: string, d: Decided, versions: readonly string[]): string | undefined {
  if (d.blocked.size === 0) return undefined;
  const blocked = versions.filter((v) => d.blocked.has(v)).reverse();
  const newest = blocked[0] ?? [...d.blocked.keys()][0]!;
  const shown = blocked.slice(0, 5).map((v) => `${v} (${d.blocked.get(v)!.rule})`);
  const more = blocked.length > shown.length ? ` and ${blocked.length - shown.length} more` : '';
  const why = d.blocked.get(newest)?.reason;
  const line = `nuproxy policy withholds ${d.blocked.size} version${d.blocked.size === 1 ? '' : 's'} of ${lowerId}: ${shown.join(', ')}${more}${why ? `; ${newest}: ${why}` : ''}`;
  return line.replace(/[^\x20-\x7e]/g, '?').slice(0, 600);
}

/** The error of a version list with every version blocked: a 404 (as an absent id) that names the rule. */
export function allBlockedError(lowerId: string, d: Decided, versions: readonly string[]): NuproxyError {
  const newest = [...versions].reverse().find((v) => d.blocked.has(v)) ?? [...d.blocked.keys()][0]!;
  const decision = d.blocked.get(newest)!;
  const rule = decision.rule ?? 'unknown';
  return new NuproxyError('BLOCKED_BY_POLICY', `every version of ${lowerId} is blocked by nuproxy policy (${withheldWarning(lowerId, d, versions)})`, { rule, reason: decision.reason });
}

function decided(blocked: Map<string, Decision>): Decided {
  let fingerprint = 'policy';
  if (blocked.size > 0) {
    const h = createHash('sha256');
    for (const [v, d] of [...blocked].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(`${v}=${d.rule}\n`);
    fingerprint = `policy:${h.digest('base64url').slice(0, 16)}`;
  }
  return { blocked, fingerprint, allows: (v) => !blocked.has(v) };
}

/** `<license type="expression">`, else a licence file or `<licenseUrl>` (as the registration would say them). */
export function licenceOfNuspec(xml: string): Pick<LeafFacts, 'licenseExpression' | 'licenseUrl'> {
  const m = /<license\b([^>]*)>([^<]*)<\/license>/.exec(xml);
  if (m && /\btype\s*=\s*["']expression["']/.test(m[1]!) && m[2]!.trim()) return { licenseExpression: decodeXmlEntities(m[2]!.trim()) };
  if (m && /\btype\s*=\s*["']file["']/.test(m[1]!)) return { licenseUrl: `file ${decodeXmlEntities(m[2]!.trim())}` };
  const url = /<licenseUrl>([^<]*)<\/licenseUrl>/.exec(xml)?.[1]?.trim();
  return url ? { licenseUrl: decodeXmlEntities(url) } : {};
}

function leafFacts(leaf: Json): { version: string; facts: LeafFacts } | undefined {
  const ce = leaf.catalogEntry;
  if (ce === null || typeof ce !== 'object') return undefined;
  const e = ce as Json;
  const version = typeof e.version === 'string' ? lowerNormalizedVersion(e.version) : undefined;
  if (!version) return undefined;
  const vulns = Array.isArray(e.vulnerabilities) ? e.vulnerabilities.map(vulnerabilityOf).filter((v) => v !== undefined) : undefined;
  return {
    version,
    facts: {
      published: typeof e.published === 'string' ? e.published : undefined,
      listed: typeof e.listed === 'boolean' ? e.listed : undefined,
      licenseExpression: typeof e.licenseExpression === 'string' && e.licenseExpression !== '' ? e.licenseExpression : undefined,
      licenseUrl: typeof e.licenseUrl === 'string' && e.licenseUrl !== '' ? e.licenseUrl : undefined,
      vulnerabilities: vulns,
    },
  };
}

/** One registration advisory: severity "0".."3" (a number is taken too); anything else is not an advisory. */
function vulnerabilityOf(v: unknown): { severity: Severity; advisoryUrl?: string } | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Json;
  const n = typeof o.severity === 'number' ? o.severity : typeof o.severity === 'string' ? Number(o.severity) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 3) return undefined;
  return { severity: n as Severity, ...(typeof o.advisoryUrl === 'string' ? { advisoryUrl: o.advisoryUrl } : {}) };
}
