// Over 300 lines: the one orchestration of package files (hit, miss, lock layers, eviction's in-flight view);
// its parts live in the modules it imports.
import type { BlobInfo, BlobStore } from '../cache/blob-store.js';
import { RemoteDownload, SharedDownload } from '../cache/shared-download.js';
import type { RedisBlobTier } from '../cache/redis-blob-tier.js';
import type { BoxLink } from '../cache/box-link.js';
import type { Logger } from '../log.js';
import { sortVersionStrings } from '../protocol/sort.js';
import { BoxFetchLock } from './box-fetch-lock.js';
import { fetchOnce, MemoryFetchLock, type FetchLock, type Release } from './fetch-lock.js';
import { MemoryTier } from './memory-tier.js';
import { NuspecKeeper } from './nuspec-keeper.js';
import { copyFromTier, headUpstream, startDownload, type PackageWanted } from './package-download.js';
import { InFlight, presigned, StoredHandle, type PackageHandle, type PackageSink, type RedirectFile, type StoredFile, type StoredPackage } from './package-handle.js';
import { packageKey, type PackageFile, type PackageSource } from './package-source.js';
import { RedisFetchLock } from './redis-fetch-lock.js';
import { Waiting, type Asker } from './waiting.js';
import { WorkerDownloads } from './worker-downloads.js';
import { PACKAGES, packageFolder } from './cache-keys.js';
import { noMetrics, type Metrics } from '../metrics/metrics.js';

export type { Asker, PackageFile, PackageSource };
export type { PackageHandle, PackageSink, RedirectFile, StoredFile, StoredPackage };
export { packageKey };

/** What a miss leads to: a download under way (here or on another worker), or what another fetcher stored. */
type Fetched = SharedDownload | RemoteDownload | { file: BlobInfo };

/** How long one fetcher may hold a fetch lock, and how long the others wait for it. */
const LOCK_MS = 60_000;
/** A quiet moment for keeping nuspecs: no package asked for during this long (and no download under way). */
const NUSPEC_QUIET_MS = 1_000;

/**
 * Package files: immutable, stored once, never expired. This is the orchestration only: a hit is answered from
 * the memory tier or the store; a miss goes through the fetch locks (this machine's outside: one process or its
 * workers; the instances sharing Redis inside) to one download, which streams the upstream body to every client
 * that asks while it is written to the store. The feed decides which upstream a miss comes from (`fetch`).
 */
export class PackageFiles {
  /**
   * This process's downloads under way, until they are stored or fail: a client asking meanwhile reads the same
   * download (`cached`), and a `fetch` racing one just started joins it.
   */
  private readonly underWay = new Map<string, Promise<Fetched | undefined>>();
  /** Per download under way in this process: the clients still waiting to read it. */
  private readonly waiting = new Map<string, Waiting>();
  private readonly memory: MemoryTier;
  private readonly nuspecs: NuspecKeeper;
  /** This machine's lock: the workers' (with their announced downloads) or, alone, this process's own. */
  private readonly machine: { lock: FetchLock; downloads?: WorkerDownloads };
  private readonly shared: { lock: FetchLock; tier: RedisBlobTier } | undefined;
  private lastAsked = 0;
  /** Redirect mode (storage.s3.redirect): how long a presigned URL lives; undefined when off. */
  private readonly redirectTtl: number | undefined;
  private readonly metrics: Metrics;
  /** Files being sent from the store (eviction leaves them alone). */
  private readonly inFlight = new InFlight();
  /** Told of every package file this process stores (the evictor's running total). */
  onStored: ((key: string, info: BlobInfo) => void) | undefined;

  constructor(
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    /** The shared tier (Redis) when several instances work as one cache. */
    tier?: RedisBlobTier,
    /** The other worker processes of this nuproxy (config `workers`), sharing this disk. */
    box?: BoxLink,
    opts: { memoryBytes?: number; redirectTtlSeconds?: number; metrics?: Metrics } = {},
  ) {
    this.redirectTtl = blobs.presign ? opts.redirectTtlSeconds : undefined;
    this.metrics = opts.metrics ?? noMetrics;
    this.memory = new MemoryTier(opts.memoryBytes !== undefined ? { maxBytes: opts.memoryBytes } : {});
    this.machine = box ? { lock: new BoxFetchLock(box), downloads: new WorkerDownloads(box, blobs) } : { lock: new MemoryFetchLock() };
    this.shared = tier ? { lock: new RedisFetchLock(tier), tier } : undefined;
    this.nuspecs = new NuspecKeeper(blobs, log, () => this.underWay.size > 0 || Date.now() - this.lastAsked < NUSPEC_QUIET_MS, (key) => this.memory.delete(key));
  }

  /**
   * A package file from what this process has: the memory tier, the store, or a download of it already under
   * way here. No upstream is asked (a cached package is served offline and with every upstream down).
   */
  async cached(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD', asker?: Asker): Promise<PackageHandle | undefined> {
    const key = packageKey(lowerId, lowerVersion, file);
    this.lastAsked = Date.now();
    const pending = this.underWay.get(key);
    if (pending) {
      this.metrics.singleFlightJoin('package');
      const joined = await this.join(key, pending, 'shared', asker);
      return joined === null ? this.cached(lowerId, lowerVersion, file, method, asker) : joined;
    }
    const info = await this.blobs.stat(key);
    if (!info) return undefined;
    // the memory tier is read in line (no call that returns a promise): the warm hit awaits the stat only
    const kept = this.memory.get(key);
    if (kept) this.blobs.noteRead(key); // served without the store: eviction must still see it in use
    else if (this.redirectTtl !== undefined && file === 'nupkg') {
      // redirect mode: the client fetches it from the store itself (and it is not read into memory: the
      // instance carries no bytes); a store that cannot sign now leaves it served as without redirects
      const away = await presigned(this.blobs, this.log, key, info, this.redirectTtl);
      if (away) return away;
    }
    return new StoredHandle(this.blobs, key, info, kept ?? (method === 'GET' && this.memory.fits(info.size) ? await this.readIn(key) : undefined), this.inFlight);
  }

  /** A small file's bytes, read into the memory tier on its first hit. */
  private async readIn(key: string): Promise<Buffer | undefined> {
    const bytes = await this.blobs.read(key);
    if (bytes) this.memory.set(key, bytes);
    return bytes;
  }

  /**
   * A package file fetched from `source` (the upstream the feed chose): one download for every client of every
   * worker and instance that asks meanwhile; undefined when the upstream does not have it. A download started
   * (or a file stored) since the caller asked `cached` is joined (or served) instead.
   */
  async fetch(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD', source: PackageSource, asker?: Asker): Promise<PackageHandle | undefined> {
    const p: PackageWanted = { key: packageKey(lowerId, lowerVersion, file), lowerId, lowerVersion, file };
    this.lastAsked = Date.now();
    for (;;) {
      let started = this.underWay.get(p.key);
      if (!started) {
        const info = await this.blobs.stat(p.key);
        if (info && this.redirectTtl !== undefined && file === 'nupkg' && !this.memory.get(p.key)) {
          const away = await presigned(this.blobs, this.log, p.key, info, this.redirectTtl);
          if (away) return away;
        }
        if (info) return new StoredHandle(this.blobs, p.key, info, this.memory.get(p.key) ?? (method === 'GET' && this.memory.fits(info.size) ? await this.readIn(p.key) : undefined), this.inFlight);
        started = this.underWay.get(p.key); // the stat let others run
      }
      let outcome: 'miss' | 'shared' = 'shared';
      if (!started) {
        if (method === 'HEAD') {
          const head = await headUpstream(source, p);
          return head && { kind: 'head', length: head.length, outcome: 'bypass', upstream: source.name };
        }
        outcome = 'miss';
        started = this.begin(p, source);
      } else this.metrics.singleFlightJoin('package');
      const handle = await this.join(p.key, started, outcome, asker);
      if (handle !== null) return handle;
    }
  }

  /** Registers this process's miss of `p` (its clients wait for it, later ones join it) and starts it. */
  private begin(p: PackageWanted, source: PackageSource): Promise<Fetched | undefined> {
    const waiting = new Waiting();
    this.waiting.set(p.key, waiting);
    const started = this.miss(p, source);
    this.underWay.set(p.key, started);
    const forget = (): void => {
      if (this.underWay.get(p.key) === started) this.underWay.delete(p.key);
      if (this.waiting.get(p.key) === waiting) this.waiting.delete(p.key);
    };
    started.then((f) => (f instanceof SharedDownload || f instanceof RemoteDownload ? f.done.then(forget, forget) : forget()), forget);
    return started;
  }

  /**
   * Waits, as a client of this process, for the download `started` until it can be read. Null when it was
   * cancelled a moment ago (nobody was reading) and not forgotten yet: then this client starts it again.
   */
  private async join(key: string, started: Promise<Fetched | undefined>, outcome: 'miss' | 'shared', asker?: Asker): Promise<PackageHandle | undefined | null> {
    const stopWaiting = this.waiting.get(key)?.add(asker);
    let fetched: Fetched | undefined;
    try {
      fetched = await started;
    } catch (err) {
      stopWaiting?.();
      throw err;
    }
    if (fetched instanceof SharedDownload && fetched.abandoned) {
      stopWaiting?.();
      if (this.underWay.get(key) === started) this.underWay.delete(key);
      this.waiting.delete(key);
      return null;
    }
    const handle = this.handleFor(key, fetched, outcome);
    stopWaiting?.(); // after the reader exists: the download is held throughout
    return handle;
  }

  /** What a client reads once the download it waited for can be read (or what another fetcher stored). */
  private handleFor(key: string, fetched: Fetched | undefined, outcome: 'miss' | 'shared'): PackageHandle | undefined {
    if (!fetched) return undefined;
    // a reader of a download goes on after its commit: the stored file counts as in use until it is done
    if (fetched instanceof RemoteDownload) {
      const stream = this.machine.downloads!.follow(key, fetched);
      this.inFlight.hold(key, stream);
      return { kind: 'stream', stream, length: fetched.expectedLength, outcome: 'shared', upstream: fetched.upstream };
    }
    if (fetched instanceof SharedDownload) {
      // verified and whole in memory (most packages): one write, no reader following the download
      const bytes = fetched.verifiedBytes();
      if (bytes) return { kind: 'bytes', bytes, outcome, upstream: fetched.upstream };
      const stream = fetched.createReader();
      this.inFlight.hold(key, stream);
      return { kind: 'stream', stream, length: fetched.expectedLength, outcome, upstream: fetched.upstream };
    }
    return new StoredHandle(this.blobs, key, fetched.file, undefined, this.inFlight);
  }

  /**
   * A miss, through the lock layers. This machine first: alone, this process's lock (MemoryFetchLock; its
   * clients already share the download through `underWay`, so it is never contended here, but the path is one
   * and the same); workers of one nuproxy: one of them fetches (announcing its download, so the others' clients
   * follow it), the others follow it or read what it stored on the shared disk.
   * Inside that, with the shared tier: one instance fetches (putting small packages in Redis for the others),
   * the others read the copy in Redis (or a volume shared with it). A holder that gives up or dies releases;
   * then the next one fetches.
   */
  private miss(p: PackageWanted, source: PackageSource): Promise<Fetched | undefined> {
    const { lock, downloads } = this.machine;
    return fetchOnce<Fetched | undefined>(lock, p.key, {
      ttlMs: LOCK_MS,
      fetch: async (release) => {
        const fetched = await this.missHere(p, source);
        if (!(fetched instanceof SharedDownload)) await release();
        else {
          downloads?.announce(p.key, fetched);
          fetched.done.then(release, release);
        }
        return fetched;
      },
      peek: async () => downloads?.followable(p.key) ?? this.stored(p.key),
      joined: () => this.metrics.singleFlightJoin('package'), // another worker's download
      ...(downloads ? { wake: (ms: number) => downloads.remoteStart(p.key, ms) } : {}),
    });
  }

  /** This instance's miss: alone, the download; with the shared tier, coordinated with the other instances. */
  private missHere(p: PackageWanted, source: PackageSource): Promise<Fetched | undefined> {
    const shared = this.shared;
    if (!shared) return this.download(p, source, () => undefined);
    const { tier } = shared;
    return fetchOnce<Fetched | undefined>(shared.lock, p.key, {
      ttlMs: LOCK_MS,
      peekFirst: true, // another instance may have stored it already
      joined: () => this.metrics.singleFlightJoin('package'), // another instance's download
      fetch: (release) =>
        this.download(p, source, release, (dl) => {
          // too large for Redis: on a store the others cannot read, they fetch for themselves; on a shared one
          // (a bucket) the lock is held until it is stored and they read it there
          if (!this.blobs.sharedAcrossInstances && dl.expectedLength !== undefined && dl.expectedLength > tier.maxBytes) void release();
          dl.done.then(
            async (info) => {
              try {
                const bytes = info.size <= tier.maxBytes ? await this.blobs.read(p.key) : undefined;
                if (bytes) await tier.put(p.key, { bytes, sha512: info.sha512!, ...(info.upstream ? { upstream: info.upstream } : {}) });
              } finally {
                await release();
              }
            },
            () => release(),
          ).catch(() => undefined);
        }),
      peek: async () => {
        const copied = await copyFromTier(tier, this.blobs, this.log, p);
        return copied ? { file: copied } : this.stored(p.key);
      },
    });
  }

  /** Starts the download; `release` when there is none (not found upstream), else `started` decides. */
  private async download(p: PackageWanted, source: PackageSource, release: Release, started?: (dl: SharedDownload) => void): Promise<SharedDownload | undefined> {
    const dl = await startDownload(
      this.blobs,
      this.log,
      source,
      p,
      (d) => this.waiting.get(p.key)?.attach(d), // held while a client still waits for it
      (info, nuspec) => {
        this.onStored?.(p.key, info);
        // the nuspec travels with the package: offline answers (registration, dependencies) are built from it.
        // Kept one at a time, off the path of the downloads under way (it is also read on demand).
        if (p.file === 'nupkg') this.nuspecs.schedule(p.lowerId, p.lowerVersion, p.key, source.name, nuspec);
      },
    );
    if (!dl) await release();
    else started?.(dl);
    return dl;
  }

  private async stored(key: string): Promise<{ file: BlobInfo } | undefined> {
    const info = await this.blobs.stat(key);
    return info ? { file: info } : undefined;
  }

  /** Versions of an id whose .nupkg is in the cache (lowercase normalized, ascending). */
  async localVersions(lowerId: string, suppliedBy: (upstream: string | undefined) => boolean = () => true): Promise<string[]> {
    const names = await this.blobs.list(packageFolder(lowerId));
    const present = await Promise.all(
      names.map(async (v) => {
        const info = await this.safeStat(packageKey(lowerId, v, 'nupkg'));
        return info && suppliedBy(info.upstream) ? v : undefined;
      }),
    );
    return sortVersionStrings(present.filter((v): v is string => v !== undefined));
  }

  /** Ids with anything in the cache. */
  localIds(): Promise<string[]> {
    return this.blobs.list(PACKAGES);
  }

  /** The nuspec of a cached package: the stored one, or read from the .nupkg (and kept). */
  async localNuspec(lowerId: string, lowerVersion: string): Promise<string | undefined> {
    const nuspecKey = packageKey(lowerId, lowerVersion, 'nuspec');
    const nuspec = (await this.safeStat(nuspecKey)) && (await this.blobs.read(nuspecKey));
    if (nuspec) return nuspec.toString('utf8').replace(/^\uFEFF/, '');
    const nupkgKey = packageKey(lowerId, lowerVersion, 'nupkg');
    const nupkg = await this.safeStat(nupkgKey);
    if (!nupkg) return undefined;
    return (await this.nuspecs.keep(lowerId, lowerVersion, nupkgKey, nupkg.upstream))?.toString('utf8').replace(/^\uFEFF/, '');
  }

  private async safeStat(key: string): Promise<BlobInfo | undefined> {
    try {
      return await this.blobs.stat(key);
    } catch {
      return undefined; // a name on disk that is not a valid key is simply not a package
    }
  }

  /** A file of the package is being downloaded or sent by this process: eviction must not remove it now. */
  isBusy(lowerId: string, lowerVersion: string): boolean {
    for (const file of ['nupkg', 'nuspec'] as const) {
      const key = packageKey(lowerId, lowerVersion, file);
      if (this.underWay.has(key) || this.inFlight.has(key)) return true;
    }
    return false;
  }

  /** Drops what this process holds in memory of an evicted package (its files in the memory tier). */
  forgetPackage(lowerId: string, lowerVersion: string): void {
    this.memory.delete(packageKey(lowerId, lowerVersion, 'nupkg'));
    this.memory.delete(packageKey(lowerId, lowerVersion, 'nuspec'));
  }

  /** Resolves when every download under way has finished (graceful shutdown). */
  async drain(): Promise<void> {
    this.nuspecs.hurry(); // nuspecs still waiting for a quiet moment are kept now
    const all = [...this.underWay.values()].map((p) => p.then((d) => (d instanceof SharedDownload ? d.done : undefined)).catch(() => undefined));
    await Promise.all(all);
    await this.nuspecs.drain();
  }

  get active(): number {
    return this.underWay.size;
  }
}

