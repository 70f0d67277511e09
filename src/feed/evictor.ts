// The bounded cache at work (issue #14): walks what the blob store holds, runs the plan (evict-plan.ts) every
// `evictEvery` and whenever a stored package takes the store past maxSize, and removes what the plan names. The
// same walk and plan serve `nuproxy prune`.
import type { BlobStore } from '../cache/blob-store.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { matchesPattern } from '../protocol/id-rules.js';
import { PACKAGES, packageFolder } from './cache-keys.js';
import { planEviction, type EvictPlan, type EvictReason, type EvictRules, type PlannedRemoval, type StoredEntry } from './evict-plan.js';
import type { PackageFiles } from './packages.js';
import { packageRef, readPins, refOfKey, UsageBook } from './usage-state.js';

/** Store calls at once while walking it. */
const WALK_CONCURRENCY = 8;
/** How often the reads the store noted are taken into the usage book (in memory). */
export const READS_EVERY_MS = 5_000;
/** How often the usage book is written. */
const FLUSH_EVERY_MS = 60_000;
/** A fresh walk now and then picks up what other processes (warm, import, other instances) stored. */
const REWALK_EVERY_MS = 15 * 60_000;

export interface EvictorConfig {
  rules: EvictRules;
  everyMs: number;
  /** `cache.pins`. */
  pinPatterns: readonly string[];
  /** False offline (unless cache.evictOffline): usage is tracked and the store summed, nothing is removed. */
  remove: boolean;
}

/** Whether the config bounds the cache (a size cap or a retention rule). */
export function isBounded(cache: Config['cache']): boolean {
  return cache.maxSize > 0 || cache.retention.unusedFor !== undefined || cache.retention.keepVersions !== undefined;
}

/** The eviction rules of the config (the evictor's and `nuproxy prune`'s). */
export function evictRules(cache: Config['cache']): EvictRules {
  return {
    maxSize: cache.maxSize,
    evictTo: cache.evictTo,
    ...(cache.retention.unusedFor !== undefined ? { unusedForMs: cache.retention.unusedFor } : {}),
    ...(cache.retention.keepVersions !== undefined ? { keepVersions: cache.retention.keepVersions } : {}),
  };
}

/** What the store holds (for metrics and the dashboard). */
export interface StoreSummary {
  bytes: number;
  packages: number;
}

interface Indexed {
  lowerId: string;
  lowerVersion: string;
  bytes: number;
  committedMs: number;
}

/** Every package in the store, with its size and commit time. */
export async function walkStore(blobs: BlobStore, log: Logger): Promise<Map<string, Indexed>> {
  const found = new Map<string, Indexed>();
  const ids = await blobs.list(PACKAGES);
  await eachLimited(ids, async (lowerId) => {
    for (const lowerVersion of await blobs.list(packageFolder(lowerId))) {
      const folder = packageFolder(lowerId, lowerVersion);
      let bytes = 0;
      let committedMs = 0;
      for (const file of await blobs.list(folder)) {
        try {
          const info = await blobs.stat(`${folder}/${file}`);
          if (!info) continue;
          bytes += info.size;
          committedMs = Math.max(committedMs, info.mtimeMs);
        } catch (err) {
          log.debug({ key: `${folder}/${file}`, err: (err as Error).message }, 'not a blob: skipped by the eviction walk');
        }
      }
      if (bytes > 0 || committedMs > 0) found.set(packageRef(lowerId, lowerVersion), { lowerId, lowerVersion, bytes, committedMs });
    }
  });
  return found;
}

async function eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(WALK_CONCURRENCY, items.length) }, worker));
}

/** Removes every file of a package; the nupkg first, so a version list built from the store stops listing it. */
export async function removePackage(blobs: BlobStore, lowerId: string, lowerVersion: string): Promise<void> {
  const folder = packageFolder(lowerId, lowerVersion);
  const files = await blobs.list(folder);
  files.sort((a, b) => Number(b.endsWith('.nupkg')) - Number(a.endsWith('.nupkg')));
  for (const f of files) await blobs.delete(`${folder}/${f}`);
}

/** The entries the planner sees: index + usage + pins. */
export function entriesOf(index: Map<string, Indexed>, usage: UsageBook, pinned: (lowerId: string, ref: string) => boolean, busy: (e: Indexed) => boolean = () => false): StoredEntry[] {
  const out: StoredEntry[] = [];
  for (const [ref, e] of index) {
    const used = usage.lastUsed(ref);
    // nothing counts as unused for longer than tracking has run (a first run never sees "unused for a year")
    out.push({ ...e, lastUsedMs: Math.max(used ?? 0, usage.since), pinned: pinned(e.lowerId, ref), busy: busy(e) });
  }
  return out;
}

export function pinMatcher(patterns: readonly string[], pins: ReadonlySet<string>): (lowerId: string, ref: string) => boolean {
  return (lowerId, ref) => pins.has(ref) || patterns.some((p) => matchesPattern(p, lowerId));
}

export class Evictor {
  private index = new Map<string, Indexed>();
  private walkedAt = 0;
  private total = 0;
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<EvictPlan | undefined> | undefined;
  private again = false;
  private stopped = false;
  /** Refs read in the latest batch: left alone this pass (a hit between its stat and its send). */
  private recent = new Set<string>();
  /** Counter hook (metrics): one call per evicted package. */
  onEvicted: ((reason: EvictReason, bytes: number) => void) | undefined;

  constructor(
    private readonly blobs: BlobStore,
    private readonly packages: PackageFiles,
    readonly usage: UsageBook,
    private readonly log: Logger,
    private readonly config: EvictorConfig,
  ) {}

  /** Tells the other workers to drop what they hold of an evicted package (set by evict-box.ts). */
  announce: (refs: string[]) => void = () => undefined;

  /** Loads the usage state, walks the store, and starts the timers. */
  async start(): Promise<void> {
    await this.usage.load();
    await this.rewalk();
    const t = (ms: number, fn: () => void): void => {
      const timer = setInterval(fn, ms);
      timer.unref();
      this.timers.push(timer);
    };
    t(READS_EVERY_MS, () => this.takeReads());
    t(FLUSH_EVERY_MS, () => void this.usage.flush());
    t(this.config.everyMs, () => void this.run());
    this.packages.onStored = (key, info) => this.noteStored(key, info.size, info.mtimeMs);
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.packages.onStored = undefined;
    await this.running;
    this.takeReads();
    await this.usage.flush();
  }

  /** Reads from this process's store (and, with workers, what the others sent: `noteReads`). */
  takeReads(): void {
    this.recent = new Set(); // only the latest batch is "being read now"
    this.noteReads(this.blobs.takeReads());
  }

  noteReads(keys: readonly string[]): void {
    if (keys.length === 0) return;
    this.usage.note(keys, Date.now());
    for (const k of keys) {
      const ref = refOfKey(k);
      if (ref !== undefined) this.recent.add(ref);
    }
  }

  /** A commit of this process: the running total moves, and past maxSize a run starts. */
  noteStored(key: string, size: number, mtimeMs: number): void {
    const ref = refOfKey(key);
    if (ref === undefined) return;
    const was = this.index.get(ref);
    if (was) {
      was.bytes += size;
      was.committedMs = Math.max(was.committedMs, mtimeMs);
    } else {
      const [lowerId, lowerVersion] = ref.split('/') as [string, string];
      this.index.set(ref, { lowerId, lowerVersion, bytes: size, committedMs: mtimeMs });
    }
    this.total += size;
    const max = this.config.rules.maxSize;
    if (max > 0 && this.total > max) void this.run();
  }

  /** A package someone else removed (the admin API's purge): out of the running total and the usage book. */
  removed(lowerId: string, lowerVersion: string): void {
    const ref = packageRef(lowerId, lowerVersion);
    const e = this.index.get(ref);
    this.usage.forget(ref);
    if (!e) return;
    this.index.delete(ref);
    this.total -= e.bytes;
  }

  summary(): StoreSummary {
    return { bytes: this.total, packages: this.index.size };
  }

  private async rewalk(): Promise<void> {
    this.index = await walkStore(this.blobs, this.log);
    this.walkedAt = Date.now();
    let total = 0;
    for (const e of this.index.values()) total += e.bytes;
    this.total = total;
  }

  /** Plans with what is known now (no removal). */
  async plan(): Promise<EvictPlan> {
    const { pins } = await readPins(this.blobs, this.log);
    const pinned = pinMatcher(this.config.pinPatterns, pins);
    const entries = entriesOf(this.index, this.usage, pinned, (e) => this.recent.has(packageRef(e.lowerId, e.lowerVersion)) || this.packages.isBusy(e.lowerId, e.lowerVersion));
    return planEviction(entries, this.config.rules, { now: Date.now(), usageKnown: this.usage.known });
  }

  /** One pass: plan, then remove. A call while one runs asks for one more pass after it. */
  run(): Promise<EvictPlan | undefined> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let plan: EvictPlan | undefined;
      try {
        do {
          this.again = false;
          if (this.stopped) break;
          this.takeReads();
          if (Date.now() - this.walkedAt > REWALK_EVERY_MS) await this.rewalk();
          plan = await this.plan();
          if (!this.config.remove) break;
          for (const n of plan.notes) this.log.warn(n);
          for (const r of plan.remove) {
            if (this.stopped) break;
            await this.remove(r);
          }
        } while (this.again);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'eviction run failed (nothing more is removed until the next run)');
      } finally {
        this.running = undefined;
      }
      return plan;
    })();
    return this.running;
  }

  private async remove(r: PlannedRemoval): Promise<void> {
    const { lowerId, lowerVersion, bytes } = r.entry;
    // checked again right before: a request may have started since the plan was made
    if (this.packages.isBusy(lowerId, lowerVersion)) return;
    const ref = packageRef(lowerId, lowerVersion);
    await removePackage(this.blobs, lowerId, lowerVersion);
    this.packages.forgetPackage(lowerId, lowerVersion);
    this.announce([ref]);
    this.index.delete(ref);
    this.usage.forget(ref);
    this.total -= bytes;
    this.log.info({ id: lowerId, version: lowerVersion, rule: r.reason, bytes }, 'evicted');
    this.onEvicted?.(r.reason, bytes);
  }
}
