// The imported advisories (osv.ts parses them), indexed for the rules: id → the advisories that name it, each
// with the versions or ranges it covers (NuGet version order, protocol/). Malicious-package ones (MAL-) feed the
// malicious rule (`match`), those with a severity the vulnerable rule (`vulnerabilities`). An
// AdvisorySet is immutable; an import merges (or replaces) and makes a new one, stored as one JSON document
// (advisory-store.ts), so a running server swaps sets without a restart.
import { compareVersions, lowerNormalizedVersion, parseVersion, type NuGetVersion } from '../protocol/version.js';
import type { Severity } from './decision.js';
import type { Advisory, OsvEvent } from './osv.js';

/** The advisory that names a version, as the rule reports it. */
export interface AdvisoryHit {
  id: string;
  summary?: string | undefined;
}

interface Bound {
  v: NuGetVersion | undefined; // undefined: "0", below every version
  kind: 'introduced' | 'fixed' | 'last_affected';
}

interface Matcher {
  hit: AdvisoryHit;
  /** Set for a vulnerability advisory; absent: malicious. */
  severity: Severity | undefined;
  url: string | undefined;
  all: boolean;
  versions: Set<string>;
  ranges: Bound[][];
}

function bounds(events: readonly OsvEvent[]): Bound[] {
  const out: Bound[] = [];
  for (const e of events) {
    const kind = e.introduced !== undefined ? 'introduced' : e.fixed !== undefined ? 'fixed' : 'last_affected';
    const text = (e.introduced ?? e.fixed ?? e.last_affected)!;
    if (kind === 'introduced' && text === '0') {
      out.push({ v: undefined, kind });
      continue;
    }
    const v = parseVersion(text);
    if (v) out.push({ v, kind }); // a version NuGet cannot read bounds nothing it could serve
  }
  // OSV: events are evaluated in version order, "0" first
  return out.sort((a, b) => (a.v === undefined ? (b.v === undefined ? 0 : -1) : b.v === undefined ? 1 : compareVersions(a.v, b.v)));
}

/** OSV's evaluation of one range: introduced ≤ v turns it on, fixed ≤ v turns it off, last_affected < v too. */
function inRange(range: readonly Bound[], v: NuGetVersion): boolean {
  let affected = false;
  for (const b of range) {
    const c = b.v === undefined ? -1 : compareVersions(b.v, v);
    if (b.kind === 'introduced' && c <= 0) affected = true;
    else if (b.kind === 'fixed' && c <= 0) affected = false;
    else if (b.kind === 'last_affected' && c < 0) affected = false;
  }
  return affected;
}

/** Compares two OSV "modified" times (RFC 3339, any offset or precision): > 0 when `a` is the later. */
function newer(a: string, b: string): number {
  const x = Date.parse(a);
  const y = Date.parse(b);
  if (Number.isFinite(x) && Number.isFinite(y)) return Math.sign(x - y);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A version parsed only when a range needs it (most matches are exact versions). */
class LazyVersion {
  private parsed: NuGetVersion | undefined | null = null;
  constructor(readonly lower: string) {}
  get(): NuGetVersion | undefined {
    if (this.parsed === null) this.parsed = parseVersion(this.lower);
    return this.parsed;
  }
}

function covers(m: Matcher, v: LazyVersion): boolean {
  if (m.all || m.versions.has(v.lower)) return true;
  if (m.ranges.length === 0) return false;
  const parsed = v.get();
  return parsed !== undefined && m.ranges.some((r) => inRange(r, parsed));
}

export class AdvisorySet {
  private readonly byId = new Map<string, Matcher[]>();
  private withSeverity = 0;
  /** The advisories, by advisory id (one entry per id: the newest `modified` wins). */
  readonly advisories: ReadonlyMap<string, Advisory>;

  constructor(advisories: Iterable<Advisory> = []) {
    const byAdvisory = new Map<string, Advisory>();
    for (const a of advisories) {
      const was = byAdvisory.get(a.id);
      if (!was || newer(a.modified, was.modified) >= 0) byAdvisory.set(a.id, a);
    }
    this.advisories = byAdvisory;
    for (const a of byAdvisory.values()) if (a.severity !== undefined) this.withSeverity++;
    for (const a of byAdvisory.values()) {
      const hit: AdvisoryHit = { id: a.id, ...(a.summary !== undefined ? { summary: a.summary } : {}) };
      for (const p of a.affected) {
        const versions = new Set<string>();
        for (const text of p.versions) {
          const lower = lowerNormalizedVersion(text);
          if (lower !== undefined) versions.add(lower);
        }
        const lowerId = p.name.toLowerCase();
        const list = this.byId.get(lowerId) ?? [];
        list.push({ hit, severity: a.severity, url: a.url, all: p.all, versions, ranges: p.ranges.map(bounds) });
        this.byId.set(lowerId, list);
      }
    }
  }

  /** How many advisories. */
  get size(): number {
    return this.advisories.size;
  }

  /** How many package ids they name. */
  get packageIds(): number {
    return this.byId.size;
  }

  /** Whether any advisory names the id (in some version). */
  names(lowerId: string): boolean {
    return this.byId.has(lowerId);
  }

  /** How many of them have a severity (vulnerability advisories, not malicious-package ones). */
  get vulnerabilityAdvisories(): number {
    return this.withSeverity;
  }

  /** How many are malicious-package advisories (what the malicious rule reads). */
  get maliciousAdvisories(): number {
    return this.size - this.withSeverity;
  }

  /** The first malicious-package advisory that names this version (lowercase id and normalized version), or undefined. */
  match(lowerId: string, lowerVersion: string): AdvisoryHit | undefined {
    const list = this.byId.get(lowerId);
    if (!list) return undefined;
    const v = new LazyVersion(lowerVersion);
    for (const m of list) if (m.severity === undefined && covers(m, v)) return m.hit;
    return undefined;
  }

  /** The vulnerability advisories (with a severity) that name this version, as VersionFacts holds them. */
  vulnerabilities(lowerId: string, lowerVersion: string): { severity: Severity; advisoryUrl?: string }[] {
    const list = this.byId.get(lowerId);
    if (!list) return [];
    const v = new LazyVersion(lowerVersion);
    const out: { severity: Severity; advisoryUrl?: string }[] = [];
    for (const m of list) if (m.severity !== undefined && covers(m, v)) out.push({ severity: m.severity, ...(m.url !== undefined ? { advisoryUrl: m.url } : {}) });
    return out;
  }

  /**
   * This set with `incoming` merged in by advisory id (the newer `modified` wins; an equal one: the incoming) and
   * the `withdrawn` ids removed. What changed is counted for the import's summary.
   */
  merge(incoming: readonly Advisory[], withdrawn: readonly string[] = []): { set: AdvisorySet; added: number; updated: number; removed: number } {
    const next = new Map(this.advisories);
    let added = 0;
    let updated = 0;
    let removed = 0;
    for (const a of incoming) {
      const was = next.get(a.id);
      if (!was) added++;
      else if (newer(a.modified, was.modified) >= 0) {
        if (JSON.stringify(was) !== JSON.stringify(a)) updated++;
      } else continue;
      next.set(a.id, a);
    }
    for (const id of withdrawn) if (next.delete(id)) removed++;
    return { set: new AdvisorySet(next.values()), added, updated, removed };
  }

  private rev: string | undefined;

  /** A short fingerprint of the contents (ids and modified times): equal sets give equal strings. */
  get revision(): string {
    if (this.rev !== undefined) return this.rev;
    let h = 0x811c9dc5;
    for (const id of [...this.advisories.keys()].sort()) {
      const s = `${id}\u0000${this.advisories.get(id)!.modified}\u0001`;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
    }
    this.rev = `${this.size}-${h.toString(16)}`;
    return this.rev;
  }
}

/** Where a policy finds the advisories: a fixed set, or the current one of a watcher (advisory-store.ts). */
export type AdvisorySource = AdvisorySet | (() => AdvisorySet);

export const EMPTY_ADVISORIES = new AdvisorySet();
