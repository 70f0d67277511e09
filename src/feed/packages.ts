import type { Readable } from 'node:stream';
import type { BlobInfo, FsBlobStore } from '../cache/fs-blob-store.js';
import { RemoteDownload, SharedDownload } from '../cache/shared-download.js';
import type { Logger } from '../log.js';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RedisBlobTier } from '../cache/redis-blob-tier.js';
import type { BoxLink } from '../cache/box-link.js';
import { LRUCache } from 'lru-cache';
import { sortVersionStrings } from '../protocol/sort.js';
import { readNuspecBytes } from './nuspec.js';
import { verifyNuspecOf, verifyPackage, type ContentCheck } from './verify.js';
import type { UpstreamSource } from './upstream-source.js';
import { NuproxyError } from '../errors.js';

export type PackageFile = 'nupkg' | 'nuspec';

/**
 * The client a package is opened for, as far as a download needs to know it: whether it is still there (the
 * HTTP response; it emits 'close' when the client goes). Without one (tools such as warm), the caller counts as
 * waiting until the download can be read.
 */
export interface Asker {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}
export type { BlobInfo };

export type PackageHandle =
  | { kind: 'file'; info: BlobInfo; outcome: 'hit'; upstream?: string; bytes?: Buffer }
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

/**
 * The clients waiting for a download of one key before they can read it (its first bytes, or its verification:
 * see ANSWER_WHEN_VERIFIED). While one of them is still there the download is held; when the last one goes
 * before reading, the download's abandonment budget starts, as for readers who left.
 */
class Waiting {
  count = 0;
  private dl: SharedDownload | undefined;
  private release: (() => void) | undefined;

  /** The download these clients wait for, once it exists. */
  attach(dl: SharedDownload): void {
    this.dl = dl;
    if (this.count > 0 && !this.release) this.release = dl.hold();
  }

  /** A client starts waiting; the returned function says it stopped (it reads now, or it left). */
  add(asker: Asker | undefined): () => void {
    this.count++;
    if (this.dl && !this.release) this.release = this.dl.hold();
    let done = false;
    const stop = (): void => {
      if (done) return;
      done = true;
      asker?.off('close', stop);
      if (--this.count === 0) {
        this.release?.();
        this.release = undefined;
      }
    };
    asker?.once('close', stop);
    return stop;
  }
}

/** How long one instance may hold the shared fetch lock, and how long others wait for it. */
const LOCK_MS = 60_000;
const POLL_MS = 50;
/** A download another worker announced fails when it reports nothing for this long. */
const REMOTE_IDLE_MS = 120_000;

/** What a worker tells the others about its downloads (through the primary process). */
type BoxDownloadMessage =
  | { kind: 'dl-start'; key: string; tempPath: string; length: number | undefined; upstream: string; written: number; verified: boolean }
  | { kind: 'dl-progress'; key: string; written: number; verified: boolean }
  | { kind: 'dl-done'; key: string; info: BlobInfo }
  | { kind: 'dl-failed'; key: string; message: string }
  | { kind: 'holder-gone'; key: string }
  // a client of another worker started (join) or stopped (leave) following a download: it is still wanted
  | { kind: 'dl-join'; key: string }
  | { kind: 'dl-leave'; key: string };
/** Longest a stored package waits for a quiet moment before its nuspec is extracted. */
const NUSPEC_MAX_WAIT_MS = 30_000;
/** A quiet moment: no download under way and no package asked for during this long. */
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
    private readonly blobs: FsBlobStore,
    private readonly log: Logger,
    /** The shared tier (Redis) when several instances work as one cache. */
    private readonly tier?: RedisBlobTier,
    /** The other worker processes of this nuproxy (config `workers`), sharing this disk. */
    private readonly box?: BoxLink,
  ) {
    box?.subscribe((payload) => this.onBoxMessage(payload as BoxDownloadMessage));
  }

  /** Downloads other workers are making now, as they announce them (followed by this worker's clients). */
  private readonly remote = new Map<string, RemoteDownload>();
  private readonly remoteWaiters = new Map<string, (() => void)[]>();

  /** This worker's downloads that other workers follow, and the holds their clients keep on them. */
  private readonly announced = new Map<string, { dl: SharedDownload; holds: (() => void)[] }>();

  private onBoxMessage(m: BoxDownloadMessage): void {
    if (m?.kind === 'dl-join' || m?.kind === 'dl-leave') {
      const mine = this.announced.get(m.key);
      if (!mine) return;
      if (m.kind === 'dl-join') mine.holds.push(mine.dl.hold());
      else mine.holds.pop()?.();
      return;
    }
    if (m?.kind === 'dl-start') {
      this.remote.set(m.key, new RemoteDownload(m.tempPath, m.length, m.upstream, REMOTE_IDLE_MS));
      for (const wake of this.remoteWaiters.get(m.key) ?? []) wake();
      this.remoteWaiters.delete(m.key);
    }
    const r = this.remote.get(m?.key);
    if (!r) return;
    if (m.kind === 'dl-progress' || m.kind === 'dl-start') r.progress(m.written, m.verified);
    else if (m.kind === 'dl-done') r.finish(m.info);
    else if (m.kind === 'dl-failed') r.fail(m.message);
    else if (m.kind === 'holder-gone') r.fail('the worker fetching this package stopped');
    if (r.settled) this.remote.delete(m.key);
  }

  /** Another worker's download of `key` that is still under way (a settled one is forgotten). */
  private followable(key: string): RemoteDownload | undefined {
    const r = this.remote.get(key);
    if (r?.settled) this.remote.delete(key);
    return r && !r.settled ? r : undefined;
  }

  /** Resolves when another worker announces a download of `key`, or after `ms`. */
  private remoteStart(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const list = this.remoteWaiters.get(key) ?? [];
      list.push(resolve);
      this.remoteWaiters.set(key, list);
      setTimeout(resolve, ms).unref();
    });
  }

  /** Tells the other workers about a download this worker makes, so their clients follow its temp file. */
  private announce(key: string, dl: SharedDownload): void {
    const box = this.box!;
    const mine = { dl, holds: [] as (() => void)[] };
    this.announced.set(key, mine);
    const forget = (): void => {
      if (this.announced.get(key) === mine) this.announced.delete(key);
    };
    dl.done.then(forget, forget);
    box.publish({ kind: 'dl-start', key, tempPath: dl.tempPath, length: dl.expectedLength, upstream: dl.upstream, written: dl.bytesWritten, verified: dl.isVerified } satisfies BoxDownloadMessage);
    let sent = dl.bytesWritten;
    let sentVerified = false;
    const off = dl.onProgress(() => {
      const written = dl.bytesWritten;
      const verified = dl.isVerified;
      // every 256 KB, and once verified (with the final length: verification comes after the last byte)
      if (written - sent < 256 * 1024 && verified === sentVerified) return;
      sent = written;
      sentVerified = verified;
      box.publish({ kind: 'dl-progress', key, written, verified } satisfies BoxDownloadMessage);
    });
    dl.done.then(
      (info) => {
        off();
        box.publish({ kind: 'dl-done', key, info } satisfies BoxDownloadMessage);
      },
      (err: Error) => {
        off();
        box.publish({ kind: 'dl-failed', key, message: err.message } satisfies BoxDownloadMessage);
      },
    );
  }

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
          bytes = await readFile(info.path);
          this.small.set(key, bytes);
        }
        return { kind: 'file', info, outcome: 'hit', ...(info.upstream ? { upstream: info.upstream } : {}), ...(bytes ? { bytes } : {}) };
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
    const handle = this.handleFor(key, started, fetched, outcome, lowerId, lowerVersion, file, method, resolve, asker);
    stopWaiting?.(); // after the reader exists: the download is held throughout
    return handle;
  }

  private handleFor(
    key: string,
    started: Promise<Fetched | undefined>,
    fetched: Fetched | undefined,
    outcome: 'miss' | 'shared',
    lowerId: string,
    lowerVersion: string,
    file: PackageFile,
    method: 'GET' | 'HEAD',
    resolve: () => Promise<{ source: UpstreamSource; partial: string[] } | undefined>,
    asker: Asker | undefined,
  ): PackageHandle | Promise<PackageHandle | undefined> | undefined {
    if (!fetched) return undefined;
    if (fetched instanceof RemoteDownload) {
      const stream = fetched.createReader();
      // the worker writing it learns that a client here still wants it (so it is not abandoned)
      this.box?.publish({ kind: 'dl-join', key } satisfies BoxDownloadMessage);
      stream.once('close', () => this.box?.publish({ kind: 'dl-leave', key } satisfies BoxDownloadMessage));
      return { kind: 'stream', stream, length: fetched.expectedLength, outcome: 'shared', upstream: fetched.upstream };
    }
    if (!(fetched instanceof SharedDownload)) {
      const { file: info } = fetched;
      return { kind: 'file', info, outcome: 'hit', ...(info.upstream ? { upstream: info.upstream } : {}) };
    }
    if (fetched.abandoned) {
      // cancelled a moment ago (nobody was reading), not forgotten yet: this client starts it again
      if (this.downloads.get(key) === started) this.downloads.delete(key);
      this.waiting.delete(key);
      return this.open(lowerId, lowerVersion, file, method, resolve, asker);
    }
    return { kind: 'stream', stream: fetched.createReader(), length: fetched.expectedLength, outcome, upstream: fetched.upstream };
  }

  /** A miss: coordinated with the other workers of this nuproxy when there are any, else fetchHere. */
  private async fetch(key: string, lowerId: string, lowerVersion: string, file: PackageFile, resolve: () => Promise<{ source: UpstreamSource; partial: string[] } | undefined>): Promise<Fetched | undefined> {
    const box = this.box;
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
          this.announce(key, fetched);
          fetched.done.then(release, release);
        }
        return fetched;
      }
      // another worker holds the lock: follow its download as soon as it announces it, or read what it stored
      const following = this.followable(key);
      if (following) return following;
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([box.waitUnlocked(key, left), this.remoteStart(key, left)]);
      const announced = this.followable(key);
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
            if (info.size <= tier.maxBytes) await tier.put(key, { bytes: await readFile(info.path), sha512: info.sha512!, ...(info.upstream ? { upstream: info.upstream } : {}) });
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
        if (file === 'nupkg') this.scheduleNuspec(lowerId, lowerVersion, info.path, source.name, nuspec);
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

  private nuspecChain: Promise<unknown> = Promise.resolve();
  private draining = false;
  private lastAsked = 0;

  private scheduleNuspec(lowerId: string, lowerVersion: string, nupkgPath: string, upstream?: string, known?: Buffer): void {
    this.nuspecChain = this.nuspecChain
      .then(() => this.quiet())
      .then(() => this.keepNuspec(lowerId, lowerVersion, nupkgPath, upstream, known))
      .catch(() => undefined);
  }

  /**
   * Waits until no download is under way and no package was asked for during NUSPEC_QUIET_MS (a cold restore
   * fetches dozens at once, and between its bursts the client needs the CPU: the nuspecs are extracted after it,
   * not in its way), but not longer than NUSPEC_MAX_WAIT_MS on a server that is never idle.
   */
  private async quiet(): Promise<void> {
    const until = Date.now() + NUSPEC_MAX_WAIT_MS;
    do await new Promise((r) => setTimeout(r, 50));
    while ((this.downloads.size > 0 || Date.now() - this.lastAsked < NUSPEC_QUIET_MS) && Date.now() < until && !this.draining);
  }

  /** Stores the nuspec of a stored package beside it: `known` (read by its identity check) or read from it. */
  private async keepNuspec(lowerId: string, lowerVersion: string, nupkgPath: string, upstream?: string, known?: Buffer): Promise<Buffer | undefined> {
    const key = packageKey(lowerId, lowerVersion, 'nuspec');
    try {
      const bytes = known ?? (await readNuspecBytes(nupkgPath));
      if (!bytes) return undefined;
      // the nuspec inside the (checked) package is the authority: it replaces a different stored copy
      const existing = await this.blobs.stat(key);
      if (existing && (await readFile(existing.path)).equals(bytes)) return bytes;
      await this.blobs.put(key, bytes, upstream);
      this.small.delete(key);
      return bytes;
    } catch (err) {
      this.log.warn({ key, err: (err as Error).message }, 'could not keep the nuspec of a stored package');
      return undefined;
    }
  }

  /** Versions of an id whose .nupkg is in the cache (lowercase normalized, ascending). */
  async localVersions(lowerId: string, suppliedBy: (upstream: string | undefined) => boolean = () => true): Promise<string[]> {
    const names = await this.blobs.children(`packages/${lowerId}`);
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
    return this.blobs.children('packages');
  }

  /** The nuspec of a cached package: the stored one, or read from the .nupkg (and kept). */
  async localNuspec(lowerId: string, lowerVersion: string): Promise<string | undefined> {
    const nuspec = await this.safeStat(packageKey(lowerId, lowerVersion, 'nuspec'));
    if (nuspec) return (await readFile(nuspec.path, 'utf8')).replace(/^\uFEFF/, '');
    const nupkg = await this.safeStat(packageKey(lowerId, lowerVersion, 'nupkg'));
    if (!nupkg) return undefined;
    return (await this.keepNuspec(lowerId, lowerVersion, nupkg.path, nupkg.upstream))?.toString('utf8').replace(/^\uFEFF/, '');
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
    this.draining = true; // nuspecs still waiting for a quiet moment are extracted now
    const all = [...this.downloads.values()].map((p) => p.then((d) => (d instanceof SharedDownload ? d.done : undefined)).catch(() => undefined));
    await Promise.all(all);
    await this.nuspecChain;
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
