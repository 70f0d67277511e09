// What eviction removes (issue #14), decided without touching anything: the evictor and `nuproxy prune` run the
// same plan, so a dry run shows exactly what a real run does. Pure: no clock, no store, no I/O.
import { compareVersions, parseVersion } from '../protocol/version.js';

/** One stored package (all its files under packages/{id}/{version}/). */
export interface StoredEntry {
  lowerId: string;
  lowerVersion: string;
  /** Bytes of every file of the package. */
  bytes: number;
  /** When it was last served (ms), undefined when no use was ever recorded. */
  lastUsedMs: number | undefined;
  /** When it was stored (ms): the last use of a package with none recorded. */
  committedMs: number;
  /** A pin (config pattern or `warm --pin`) covers it: no rule ever removes it. */
  pinned: boolean;
  /** Being read or written now: left for a later run. */
  busy?: boolean;
}

export interface EvictRules {
  /** 0: no size cap. */
  maxSize: number;
  /** The low-water mark, as a fraction of maxSize. */
  evictTo: number;
  /** Remove packages unused this long (undefined: off). */
  unusedForMs?: number;
  /** Keep only the newest K versions of an id (undefined: off). */
  keepVersions?: number;
}

/** Which rule removes a package. */
export type EvictReason = 'unused' | 'versions' | 'size';

export interface PlannedRemoval {
  entry: StoredEntry;
  reason: EvictReason;
  /** The last use the plan went by (recorded, else the commit time). */
  lastUsedMs: number;
}

export interface EvictPlan {
  remove: PlannedRemoval[];
  /** Bytes the removals free. */
  freed: number;
  /** Bytes stored before and after. */
  total: number;
  after: number;
  packages: number;
  /** What the size rule aims at (0 without a cap). */
  target: number;
  /** Packages a rule named but that were kept: pinned, or busy now. */
  keptPinned: number;
  keptBusy: number;
  /** Rules left out and why (e.g. the usage state could not be read, so nothing is "unused"). */
  notes: string[];
}

export interface PlanOptions {
  now: number;
  /**
   * The recorded usage was read. False (a missing or corrupt state file that should have been there, an error
   * computing usage): the unused rule does not run at all, and the size rule goes by commit times. Never
   * "everything is unused".
   */
  usageKnown: boolean;
}

/**
 * The removals the rules name, in order: retention first (unused for N days, then versions beyond the newest K
 * per id), then the least recently used until the store is under evictTo × maxSize. Nothing else: a package
 * no rule names is never planned, pinned ones never, busy ones are skipped (a later run takes them).
 */
export function planEviction(entries: readonly StoredEntry[], rules: EvictRules, opts: PlanOptions): EvictPlan {
  const total = entries.reduce((n, e) => n + e.bytes, 0);
  const notes: string[] = [];
  const chosen = new Map<StoredEntry, PlannedRemoval>();
  let keptPinned = 0;
  let keptBusy = 0;
  // a last use in the future (a clock stepped back, a hand-edited state file) counts as now: it never makes
  // anything look older than it is
  const lastUse = (e: StoredEntry): number => Math.min(opts.now, Math.max(e.lastUsedMs ?? 0, e.committedMs));
  const take = (e: StoredEntry, reason: EvictReason): boolean => {
    if (chosen.has(e)) return false;
    if (e.pinned) {
      keptPinned++;
      return false;
    }
    if (e.busy) {
      keptBusy++;
      return false;
    }
    chosen.set(e, { entry: e, reason, lastUsedMs: lastUse(e) });
    return true;
  };

  if (rules.unusedForMs !== undefined) {
    if (!opts.usageKnown) notes.push('retention.unusedFor skipped: the usage state could not be read');
    else if (!(rules.unusedForMs > 0)) notes.push('retention.unusedFor skipped: not a positive duration');
    else {
      const before = opts.now - rules.unusedForMs;
      for (const e of entries) if (lastUse(e) < before) take(e, 'unused');
    }
  }

  if (rules.keepVersions !== undefined) {
    if (!(rules.keepVersions >= 1)) notes.push('retention.keepVersions skipped: must be at least 1');
    else {
      for (const versions of byId(entries).values()) {
        const parsed = versions.map((e) => ({ e, v: parseVersion(e.lowerVersion) }));
        // a version that does not parse is kept: no order, no rule
        const ordered = parsed.filter((p) => p.v !== undefined).sort((a, b) => compareVersions(b.v!, a.v!));
        for (const { e } of ordered.slice(rules.keepVersions)) take(e, 'versions');
      }
    }
  }

  let after = total - sum(chosen.values());
  const target = rules.maxSize > 0 ? Math.floor(rules.maxSize * Math.min(1, Math.max(0, rules.evictTo))) : 0;
  if (rules.maxSize > 0 && after > rules.maxSize) {
    const lru = entries.filter((e) => !chosen.has(e)).sort((a, b) => lastUse(a) - lastUse(b) || b.bytes - a.bytes || keyOf(a).localeCompare(keyOf(b)));
    for (const e of lru) {
      if (after <= target) break;
      if (take(e, 'size')) after -= e.bytes;
    }
  }

  const remove = [...chosen.values()];
  const freed = sum(remove);
  return { remove, freed, total, after: total - freed, packages: entries.length, target, keptPinned, keptBusy, notes };
}

function sum(removals: Iterable<PlannedRemoval>): number {
  let n = 0;
  for (const r of removals) n += r.entry.bytes;
  return n;
}

function byId(entries: readonly StoredEntry[]): Map<string, StoredEntry[]> {
  const ids = new Map<string, StoredEntry[]>();
  for (const e of entries) {
    const list = ids.get(e.lowerId);
    if (list) list.push(e);
    else ids.set(e.lowerId, [e]);
  }
  return ids;
}

function keyOf(e: StoredEntry): string {
  return `${e.lowerId}/${e.lowerVersion}`;
}
