// What the admin API and the dashboard do to the store and the caches (issue #14): purge an id, invalidate an
// upstream's metadata, run the eviction plan, and list what the store holds. Built on the feed's own
// invalidation (the path a push takes: memory copies, Redis, other workers and instances) and the evictor's
// plan (the one `nuproxy prune` runs); nothing here runs on a package or metadata request.
import type { BlobStore } from '../cache/blob-store.js';
import type { Logger } from '../log.js';
import type { BoxLink } from '../cache/box-link.js';
import { PACKAGES, packageFolder, packageKey } from './cache-keys.js';
import type { EvictPlan } from './evict-plan.js';
import { pinMatcher, removePackage, walkStore, type Evictor, type StoreSummary } from './evictor.js';
import type { Feed } from './feed.js';
import { packageRef, readPins } from './usage-state.js';

type PurgedMessage = { kind: 'admin-purged'; id: string; versions: string[] };

export interface StoredVersion {
  version: string;
  bytes: number;
  /** The upstream that supplied the .nupkg (`import` for a bundle), when the store knows it. */
  upstream: string | undefined;
  storedMs: number;
  lastUsedMs: number | undefined;
  pinned: boolean;
}

export interface StoredId {
  id: string;
  versions: StoredVersion[];
}

export interface PlanAnswer extends Omit<EvictPlan, 'remove'> {
  dryRun: boolean;
  bounded: boolean;
  remove: { id: string; version: string; rule: string; bytes: number; lastUsed: string }[];
}

export class AdminOps {
  constructor(
    private readonly feed: Feed,
    private readonly blobs: BlobStore,
    private readonly evictor: Evictor | undefined,
    private readonly pinPatterns: readonly string[],
    readonly maxSize: number,
    private readonly log: Logger,
    private readonly box?: BoxLink,
  ) {
    // another worker purged packages: drop what this one holds of them (its memory tier, its stat cache, and, in
    // the evicting worker, the running total)
    box?.subscribe((payload) => {
      const m = payload as PurgedMessage | undefined;
      if (m?.kind !== 'admin-purged' || typeof m.id !== 'string' || !Array.isArray(m.versions)) return;
      for (const v of m.versions.slice(0, 10_000)) if (typeof v === 'string') void this.dropped(m.id, v, false);
    });
  }

  /** What this process holds of a removed package; `files`: also delete them (the purging process). */
  private async dropped(lowerId: string, lowerVersion: string, files: boolean): Promise<void> {
    if (files) await removePackage(this.blobs, lowerId, lowerVersion);
    else for (const f of ['nupkg', 'nuspec'] as const) await this.blobs.delete(packageKey(lowerId, lowerVersion, f)).catch(() => false);
    this.feed.packages.forgetPackage(lowerId, lowerVersion);
    this.evictor?.removed(lowerId, lowerVersion);
  }

  /** Drops every metadata document of the id (all upstreams, every instance), and with `packages` its files. */
  async purge(lowerId: string, packages: boolean): Promise<{ id: string; documents: string[]; packages: string[] }> {
    const documents = await this.feed.purge(lowerId);
    const removed: string[] = [];
    if (packages) {
      for (const v of await this.blobs.list(packageFolder(lowerId))) {
        if (this.feed.packages.isBusy(lowerId, v)) continue; // being sent or fetched: the next purge takes it
        await this.dropped(lowerId, v, true);
        removed.push(v);
      }
      if (removed.length > 0) this.box?.publish({ kind: 'admin-purged', id: lowerId, versions: removed } satisfies PurgedMessage);
    }
    return { id: lowerId, documents, packages: removed };
  }

  /** The metadata one upstream supplied: its service index, vulnerability index, every known id's documents. */
  async invalidateUpstream(name: string, moreIds: Iterable<string>): Promise<{ upstream: string; documents: number; ids: number }> {
    const ids = new Set(await this.storedIds());
    for (const id of moreIds) ids.add(id);
    const documents = await this.feed.invalidateUpstream(name, [...ids]);
    return { upstream: name, documents, ids: ids.size };
  }

  /** The evictor's plan now; unless `dryRun`, then removed (the evictor's own run, as on its timer). */
  async prune(dryRun: boolean): Promise<PlanAnswer> {
    if (!this.evictor) return { dryRun, bounded: false, remove: [], freed: 0, total: 0, after: 0, packages: 0, target: 0, keptPinned: 0, keptBusy: 0, notes: ['no eviction rule is configured (cache.maxSize, cache.retention)'] };
    const plan = dryRun ? await this.evictor.plan() : await this.evictor.run();
    return planAnswer(plan, dryRun, this.maxSize > 0 || plan !== undefined);
  }

  /** The store's size and package count (the evictor's running total; walked when there is no evictor). */
  async store(): Promise<StoreSummary & { maxSize: number }> {
    if (this.evictor) return { ...this.evictor.summary(), maxSize: this.maxSize };
    let bytes = 0;
    const index = await walkStore(this.blobs, this.log);
    for (const e of index.values()) bytes += e.bytes;
    return { bytes, packages: index.size, maxSize: this.maxSize };
  }

  async storedIds(): Promise<string[]> {
    return (await this.blobs.list(PACKAGES)).sort();
  }

  /** The stored ids containing `query` (lower case), a page of them with their versions. */
  async packages(query: string, page: number, perPage: number): Promise<{ total: number; ids: StoredId[] }> {
    const q = query.toLowerCase();
    const all = (await this.storedIds()).filter((id) => id.includes(q));
    const slice = all.slice(page * perPage, (page + 1) * perPage);
    const { pins } = await readPins(this.blobs, this.log);
    const pinned = pinMatcher(this.pinPatterns, pins);
    const ids = await Promise.all(slice.map((id) => this.describe(id, pinned)));
    return { total: all.length, ids: ids.filter((x) => x.versions.length > 0) };
  }

  /** One stored id: its versions, sizes, upstreams, last use, pins (empty when nothing is stored). */
  async storedId(lowerId: string): Promise<StoredId> {
    const { pins } = await readPins(this.blobs, this.log);
    return this.describe(lowerId, pinMatcher(this.pinPatterns, pins));
  }

  private async describe(lowerId: string, pinned: (id: string, ref: string) => boolean): Promise<StoredId> {
    const versions: StoredVersion[] = [];
    for (const v of await this.blobs.list(packageFolder(lowerId))) {
      const folder = packageFolder(lowerId, v);
      let bytes = 0;
      let storedMs = 0;
      let upstream: string | undefined;
      for (const f of await this.blobs.list(folder)) {
        const info = await this.blobs.stat(`${folder}/${f}`).catch(() => undefined);
        if (!info) continue;
        bytes += info.size;
        storedMs = Math.max(storedMs, info.mtimeMs);
        if (f.endsWith('.nupkg')) upstream = info.upstream;
      }
      if (bytes === 0) continue;
      const ref = packageRef(lowerId, v);
      versions.push({ version: v, bytes, upstream, storedMs, lastUsedMs: this.evictor?.usage.lastUsed(ref), pinned: pinned(lowerId, ref) });
    }
    return { id: lowerId, versions };
  }
}

function planAnswer(plan: EvictPlan | undefined, dryRun: boolean, bounded: boolean): PlanAnswer {
  if (!plan) return { dryRun, bounded, remove: [], freed: 0, total: 0, after: 0, packages: 0, target: 0, keptPinned: 0, keptBusy: 0, notes: ['the evictor is stopping'] };
  return {
    dryRun,
    bounded,
    remove: plan.remove.map((r) => ({ id: r.entry.lowerId, version: r.entry.lowerVersion, rule: r.reason, bytes: r.entry.bytes, lastUsed: new Date(r.lastUsedMs).toISOString() })),
    freed: plan.freed,
    total: plan.total,
    after: plan.after,
    packages: plan.packages,
    target: plan.target,
    keptPinned: plan.keptPinned,
    keptBusy: plan.keptBusy,
    notes: plan.notes,
  };
}
