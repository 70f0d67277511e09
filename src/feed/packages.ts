import type { Readable, Writable } from 'node:stream';
import type { BlobInfo, BlobStore } from '../cache/blob-store.js';
import { RemoteDownload, SharedDownload } from '../cache/shared-download.js';
import type { Logger } from '../log.js';
import { createHash } from 'node:crypto';
import type { RedisBlobTier } from '../cache/redis-blob-tier.js';
import type { BoxLink } from '../cache/box-link.js';
import { LRUCache } from 'lru-cache';
import { sortVersionStrings } from '../protocol/sort.js';
import { NuspecKeeper } from './nuspec-keeper.js';
import { verifyNuspecOf, verifyPackage, type ContentCheck } from './verify.js';
import type { UpstreamSource } from './upstream-source.js';
import { NuproxyError } from '../errors.js';
import { Waiting, type Asker } from './waiting.js';
import { WorkerDownloads } from './worker-downloads.js';

export type { Asker };

export type PackageFile = 'nupkg' | 'nuspec';

/** What the HTTP edge knows of a stored package file (its ETag and Last-Modified come from it). */
export interface StoredPackage {
  size: number;
  /** Base64. */
  sha512?: string;
  upstream?: string;
  mtimeMs: number;
}

/** Where a stored package is sent (a Node ServerResponse is one). */
export type PackageSink = Pick<Writable, 'write' | 'end' | 'destroy' | 'once' | 'writableFinished'>;

/** A stored package file: its bytes in memory (`bytes`, small files) or sent from the store (`send`). */
export interface StoredFile {
  kind: 'file';
  info: StoredPackage;
  outcome: 'hit';
  upstream?: string;
  bytes?: Buffer;
  /**
   * Sends bytes start..endInclusive to a sink whose head is written, and ends it (a failed read destroys it);
   * `progress.bytesSent` counts what the sink took.
   */
  send(sink: PackageSink, start: number, endInclusive: number, progress?: { bytesSent: number }): void;
}

/** One object per hit, with `send` on its prototype (bound to the store by its fields, not by a closure). */
class StoredHandle implements StoredFile {
  readonly kind = 'file';
  readonly outcome = 'hit';
  readonly upstream: string | undefined;

  constructor(
    private readonly blobs: BlobStore,
    private readonly key: string,
    readonly info: BlobInfo,
    readonly bytes?: Buffer,
  ) {
    this.upstream = info.upstream;
  }

  send(sink: PackageSink, start: number, endInclusive: number, progress?: { bytesSent: number }): void {
    this.blobs.send(this.key, this.info, sink, start, endInclusive, progress);
  }
}

export type PackageHandle =
  | StoredFile
  | { kind: 'stream'; stream: Readable; length: number | undefined; outcome: 'miss' | 'shared'; upstream: string }
  | { kind: 'head'; length: number | undefined; outcome: 'bypass'; upstream: string };

export function packageKey(lowerId: string, lowerVersion: string, file: PackageFile): string {
  const name = file === 'nupkg' ? `${lowerId}.${lowerVersion}.nupkg` : `${lowerId}.nuspec`;
  return `packages/${lowerId}/${lowerVersion}/${name}`;
}

/**
 * Package files: immutable, stored once, never expired. A miss streams the upstream body to every client that
 * asks while it is written to the store, so concurrent misses for one file make exactly one upstream request.
 */
type Fetched = SharedDownload | RemoteDownload | { file: BlobInfo };

/** How long one instance may hold the shared fetch lock, and how long others wait for it. */
const LOCK_MS = 60_000;
const POLL_MS = 50;
/** A quiet moment for keeping nuspecs: no package asked for during this long (and no download under way). */
const NUSPEC_QUIET_MS = 1_000;
/**
 * Files up to this size (most packages) are also kept in memory once read (LRU, 128 MB): a warm hit then costs
 * no file system call and one socket write.
 */
const SMALL_FILE = 2 * 1024 * 1024;
/**
 * A miss for a package up to this size (most packages; by its Content-Length, or as long as no more has
 * arrived) is answered only once the whole file has passed its checks: a package that fails them (wrong
 * identity, cut short, wrong hash) is a 502 with a JSON body, not a cut connection. Larger ones stream to their
 * clients as they arrive, and a failed check cuts the connection (the last byte is never sent).
 */
const ANSWER_WHEN_VERIFIED = 2 * 1024 * 1024;

export class PackageFiles {
  private readonly downloads = new Map<string, Promise<Fetched | undefined>>();
  /** Per download under way in this process: the clients still waiting to read it. */
  private readonly waiting = new Map<string, Waiting>();
  private readonly small = new LRUCache<string, Buffer>({ maxSize: 128 * 1024 * 1024, sizeCalculation: (b) => b.length || 1 });

  constructor(
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    /** The shared tier (Redis) when several instances work as one cache. */
    private readonly tier?: RedisBlobTier,
    /** The other worker processes of this nuproxy (config `workers`), sharing this disk. */
    box?: BoxLink,
  ) {
    this.workers = box ? new WorkerDownloads(box, blobs) : undefined;
    this.nuspecs = new NuspecKeeper(blobs, log, () => this.downloads.size > 0 || Date.now() - this.lastAsked < NUSPEC_QUIET_MS, (key) => this.small.delete(key));
  }

  /** Keeps the nuspec of each stored package beside it (offline answers are built from them). */
  private readonly nuspecs: NuspecKeeper;

  private readonly workers: WorkerDownloads | undefined;

  /**
   * `resolve` names the upstream to fetch from; it is only called on a miss, so a cached package is served
   * without asking anything (and with every upstream down).
   */
  async open(
    lowerId: string,
    lowerVersion: string,
    file: PackageFile,
    method: 'GET' | 'HEAD',
    resolve: () => Promise<{ source: UpstreamSource; partial: string[] } | undefined>,
    asker?: Asker,
  ): Promise<PackageHandle | undefined> {
    const key = packageKey(lowerId, lowerVersion, file);
    this.lastAsked = Date.now();
    const pending = this.downloads.get(key);
    if (!pending) {
      const info = await this.blobs.stat(key);
      if (info) {
        let bytes = this.small.get(key);
        if (!bytes && info.size <= SMALL_FILE && method === 'GET') {
          bytes = await this.blobs.read(key);
          if (bytes) this.small.set(key, bytes);
        }
        return new StoredHandle(this.blobs, key, info, bytes);
      }
    }
    let outcome: 'miss' | 'shared' = 'shared';
    let started = this.downloads.get(key);
    if (!started && method === 'HEAD') {
      const chosen = await resolve();
      return chosen ? this.head(chosen.source, lowerId, lowerVersion, file) : undefined;
    }
    if (!started) {
      outcome = 'miss';
      const waiting = new Waiting();
      this.waiting.set(key, waiting);
      started = this.fetch(key, lowerId, lowerVersion, file, resolve);
      this.downloads.set(key, started);
      const forget = (): void => {
        if (this.downloads.get(key) === started) this.downloads.delete(key);
        if (this.waiting.get(key) === waiting) this.waiting.delete(key);
      };
      started.then((f) => (f instanceof SharedDownload || f instanceof RemoteDownload ? f.done.then(forget, forget) : forget()), forget);
    }
    const stopWaiting = this.waiting.get(key)?.add(asker);
    let fetched: Fetched | undefined;
    try {
      fetched = await started;
    } catch (err) {
      stopWaiting?.();
      throw err;
    }
    if (fetched instanceof SharedDownload && fetched.abandoned) {
      // cancelled a moment ago (nobody was reading), not forgotten yet: this client starts it again
      stopWaiting?.();
      if (this.downloads.get(key) === started) this.downloads.delete(key);
      this.waiting.delete(key);
      return this.open(lowerId, lowerVersion, file, method, resolve, asker);
    }
    const handle = this.handleFor(key, fetched, outcome);
    stopWaiting?.(); // after the reader exists: the download is held throughout
    return handle;
  }

  /** What a client reads once the download it waited for can be read (or what the other worker stored). */
  private handleFor(key: string, fetched: Fetched | undefined, outcome: 'miss' | 'shared'): PackageHandle | undefined {
    if (!fetched) return undefined;
    if (fetched instanceof RemoteDownload) {
      return { kind: 'stream', stream: this.workers!.follow(key, fetched), length: fetched.expectedLength, outcome: 'shared', upstream: fetched.upstream };
    }
    if (!(fetched instanceof SharedDownload)) {
      return new StoredHandle(this.blobs, key, fetched.file);
    }
    return { kind: 'stream', stream: fetched.createReader(), length: fetched.expectedLength, outcome, upstream: fetched.upstream };
  }

  /** A miss: coordinated with the other workers of this nuproxy when there are any, else fetchHere. */
  private async fetch(key: string, lowerId: string, lowerVersion: string, file: PackageFile, resolve: () => Promise<{ source: UpstreamSource; partial: string[] } | undefined>): Promise<Fetched | undefined> {
    const box = this.workers;
    if (!box) return this.fetchHere(key, lowerId, lowerVersion, file, resolve);
    // Workers of one nuproxy: one of them fetches (and stores on the shared disk), the others wait for it and
    // serve the stored file. A worker that gives up or dies releases the lock; then the next one fetches.
    const deadline = Date.now() + LOCK_MS;
    for (;;) {
      const release = await box.lock(key, LOCK_MS);
      if (release) {
        let fetched: Fetched | undefined;
        try {
          fetched = await this.fetchHere(key, lowerId, lowerVersion, file, resolve);
        } finally {
          if (!(fetched instanceof SharedDownload)) release();
        }
        if (fetched instanceof SharedDownload) {
          box.announce(key, fetched);
          fetched.done.then(release, release);
        }
        return fetched;
      }
      // another worker holds the lock: follow its download as soon as it announces it, or read what it stored
      const following = box.followable(key);
      if (following) return following;
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([box.waitUnlocked(key, left), box.remoteStart(key, left)]);
      const announced = box.followable(key);
      if (announced) return announced;
      const onDisk = await this.blobs.stat(key);
      if (onDisk) return { file: onDisk };
      if (Date.now() >= deadline) return this.fetchHere(key, lowerId, lowerVersion, file, resolve);
      // the holder failed (or found nothing): take the lock and try, or learn it is absent
    }
  }

  /**
   * One instance's miss. Alone: ask the winning upstream. With the shared tier: take the package from Redis if
   * another instance stored it; else take the shared lock and fetch (storing small packages in Redis for the
   * others), or wait for the instance holding the lock and read from Redis (fetching ourselves if it gives up,
   * dies, or the package is too large for Redis).
   */
  private async fetchHere(key: string, lowerId: string, lowerVersion: string, file: PackageFile, resolve: () => Promise<{ source: UpstreamSource; partial: string[] } | undefined>): Promise<Fetched | undefined> {
    const chosen = await resolve();
    if (!chosen) return undefined;
    if (!this.tier) return this.start(chosen.source, key, lowerId, lowerVersion, file);
    const deadline = Date.now() + LOCK_MS;
    for (;;) {
      const shared = await this.fromTier(key, lowerId, lowerVersion, file);
      if (shared) return { file: shared };
      const release = await this.tier.lock(key, LOCK_MS);
      if (release) {
        let dl: SharedDownload | undefined;
        try {
          dl = await this.start(chosen.source, key, lowerId, lowerVersion, file);
        } finally {
          if (!dl) await release();
        }
        if (!dl) return undefined;
        const tier = this.tier;
        if (dl.expectedLength !== undefined && dl.expectedLength > tier.maxBytes) await release(); // the others fetch for themselves
        dl.done.then(
          async (info) => {
            const bytes = info.size <= tier.maxBytes ? await this.blobs.read(key) : undefined;
            if (bytes) await tier.put(key, { bytes, sha512: info.sha512!, ...(info.upstream ? { upstream: info.upstream } : {}) });
            await release();
          },
          () => release(),
        );
        return dl;
      }
      // another instance is fetching: wait for it (bounded), then read from Redis, from a volume shared with it,
      // or try ourselves
      while (Date.now() < deadline && (await this.tier.locked(key))) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        const shared2 = await this.fromTier(key, lowerId, lowerVersion, file);
        if (shared2) return { file: shared2 };
      }
      const onDisk = await this.blobs.stat(key);
      if (onDisk) return { file: onDisk };
      if (Date.now() >= deadline) return this.start(chosen.source, key, lowerId, lowerVersion, file);
    }
  }

  /**
   * A package from the shared tier, written to this instance's disk first: hash, zip and identity checked like
   * a download (another instance, or an older version of nuproxy, may have put anything there).
   */
  private async fromTier(key: string, lowerId: string, lowerVersion: string, file: PackageFile): Promise<BlobInfo | undefined> {
    const blob = await this.tier?.get(key);
    if (!blob) return undefined;
    try {
      const writer = await this.blobs.createWriter(key);
      writer.write(blob.bytes);
      const hash = createHash('sha512').update(blob.bytes).digest('base64');
      const verify = contentCheck(file, { lowerId, lowerVersion, ...(blob.upstream ? { upstream: blob.upstream } : {}) });
      return await writer.commit(hash, { expectedSha512: blob.sha512, verify, ...(blob.upstream ? { upstream: blob.upstream } : {}) });
    } catch (err) {
      this.log.warn({ key, err: (err as Error).message }, 'package in the shared tier failed its checks; fetching it again');
      return undefined;
    }
  }

  /**
   * Opens the upstream body and starts storing it. Resolves once clients may be answered (see
   * ANSWER_WHEN_VERIFIED); a download that fails before that rejects, so waiting clients get an error status.
   */
  private async start(source: UpstreamSource, key: string, lowerId: string, lowerVersion: string, file: PackageFile): Promise<SharedDownload | undefined> {
    const url = await this.upstreamUrl(source, lowerId, lowerVersion, file);
    if (!url) return undefined;
    const res = await source.client.openBlob(url, 'GET', file);
    if (res.kind === 'not-found') return undefined;
    let writer;
    try {
      writer = await this.blobs.createWriter(key);
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    let nuspec: Buffer | undefined; // the package's own, found by its identity check
    const expected = { lowerId, lowerVersion, upstream: source.name };
    const abandonAfterMs = res.abandonAfterMs;
    const dl = new SharedDownload(
      writer,
      res.body,
      res.length,
      {
        ...(res.length !== undefined ? { expectedLength: res.length } : {}),
        ...(res.sha512 && file === 'nupkg' ? { expectedSha512: res.sha512 } : {}),
        // the size limit was enforced while the body streamed (limits.nuspecBytes)
        verify: file === 'nupkg' ? verifyPackage(expected, (b) => (nuspec = b)) : verifyNuspecOf(expected, Infinity),
        upstream: source.name,
      },
      {
        abandonAfterMs,
        abandonError: () => new NuproxyError('UPSTREAM_UNREACHABLE', `download from upstream ${source.name} cancelled: no client read it for ${abandonAfterMs / 1000} s (limits.abandonAfter)`, { upstream: source.name }),
      },
    );
    dl.done.then(
      (info) => {
        this.log.info({ key, upstream: source.name, bytes: info.size }, 'package stored');
        // the nuspec travels with the package: offline answers (registration, dependencies) are built from it.
        // Kept one at a time, off the path of the downloads under way (it is also read on demand).
        if (file === 'nupkg') this.nuspecs.schedule(lowerId, lowerVersion, key, source.name, nuspec);
      },
      (err: Error) => this.log.warn({ key, upstream: source.name, err: err.message }, 'package download failed; nothing stored'),
    );
    this.waiting.get(key)?.attach(dl); // held while a client still waits for it
    try {
      await dl.ready(ANSWER_WHEN_VERIFIED);
    } catch (err) {
      throw naming(err, source.name);
    }
    return dl;
  }

  private async head(source: UpstreamSource, lowerId: string, lowerVersion: string, file: PackageFile): Promise<PackageHandle | undefined> {
    const url = await this.upstreamUrl(source, lowerId, lowerVersion, file);
    if (!url) return undefined;
    const res = await source.client.openBlob(url, 'HEAD', file);
    if (res.kind === 'not-found') return undefined;
    res.body.destroy(new Error('HEAD has no body'));
    return { kind: 'head', length: res.length, outcome: 'bypass', upstream: source.name };
  }

  private async upstreamUrl(source: UpstreamSource, lowerId: string, lowerVersion: string, file: PackageFile): Promise<string | undefined> {
    const { resources } = await source.resources();
    if (!resources.flat) return undefined;
    const name = file === 'nupkg' ? `${lowerId}.${lowerVersion}.nupkg` : `${lowerId}.nuspec`;
    return `${resources.flat}${lowerId}/${lowerVersion}/${name}`;
  }

  private lastAsked = 0;

  /** Versions of an id whose .nupkg is in the cache (lowercase normalized, ascending). */
  async localVersions(lowerId: string, suppliedBy: (upstream: string | undefined) => boolean = () => true): Promise<string[]> {
    const names = await this.blobs.list(`packages/${lowerId}`);
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
    return this.blobs.list('packages');
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

  /** Resolves when every download under way has finished (graceful shutdown). */
  async drain(): Promise<void> {
    this.nuspecs.hurry(); // nuspecs still waiting for a quiet moment are kept now
    const all = [...this.downloads.values()].map((p) => p.then((d) => (d instanceof SharedDownload ? d.done : undefined)).catch(() => undefined));
    await Promise.all(all);
    await this.nuspecs.drain();
  }

  get active(): number {
    return this.downloads.size;
  }
}

/** The content check of a package file asked for as `expected` (the same for downloads and the shared tier). */
function contentCheck(file: PackageFile, expected: { lowerId: string; lowerVersion: string; upstream?: string }): ContentCheck {
  return file === 'nupkg' ? verifyPackage(expected) : verifyNuspecOf(expected);
}

/** A download's failure as a client sees it: naming the upstream that supplied the bytes. */
function naming(err: unknown, upstream: string): unknown {
  if (!(err instanceof NuproxyError) || typeof err.details.upstream === 'string') return err;
  return new NuproxyError(err.code, err.message, { ...err.details, upstream }, err);
}
