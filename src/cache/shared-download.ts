import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { BlobInfo, BlobWriter, CommitCheck, FollowLimits } from './blob-store.js';
import { memoryReader, settledReader } from './follow-reader.js';

/** Another worker's download, followed through the store (re-exported: one module for both kinds). */
export { RemoteDownload } from './remote-download.js';

const MEMORY_MAX = 2 * 1024 * 1024;

/** A body that can be cancelled (the upstream connection closed with it). */
export type DownloadSource = AsyncIterable<Uint8Array> & { destroy?(err?: Error): void };

export interface DownloadOptions {
  /**
   * Once no reader (and no hold) is left, the download goes on at most this long, then it is cancelled: the
   * source destroyed, what was written dropped, `done` rejected with `abandonError()`. Unset: it always goes on.
   */
  abandonAfterMs?: number;
  abandonError?: () => Error;
}

/**
 * One upstream body written once into the blob store and read by any number of clients while it arrives.
 * Readers follow the writer (BlobWriter.follow: on disk, its temp file); memory stays flat whatever the size. The
 * last byte is held back from readers until the blob is verified and committed, so no client ever receives a
 * complete-looking body that failed its checks: on failure their streams are destroyed and the client sees a
 * truncated response.
 *
 * Whoever wants the bytes holds the download (each reader does while it is open, others with `hold()`); once
 * nobody has for `abandonAfterMs`, it is cancelled, so clients that left do not keep an upstream connection and
 * the disk busy.
 */
export class SharedDownload {
  readonly done: Promise<BlobInfo>;
  /**
   * Resolves when the first bytes are written (the source passed them: its head checks are behind it) or the
   * source ended; rejects with the download's error if it fails before. Until then a client can still be
   * answered with an error status instead of a cut body.
   */
  readonly started: Promise<void>;
  /** Who supplies the bytes (reported to clients). */
  readonly upstream: string;
  private readonly events = new EventEmitter();
  private committed: BlobInfo | undefined;
  /** Every check passed: readers may have the last byte even before the file is moved into place. */
  private verified = false;
  private failure: Error | undefined;
  /**
   * A small download (announced length up to MEMORY_MAX) is also kept in memory while it lasts: its readers
   * take the bytes from there instead of reading them back from the store (one disk round trip less per chunk).
   */
  private mem: Buffer[] | undefined;
  private firstBytes!: { resolve: () => void; reject: (err: Error) => void };
  /** Readers open plus holds taken: while above 0 the download is wanted. */
  private holders = 0;
  private abandonTimer: NodeJS.Timeout | undefined;
  /** Set when the download was cancelled (abandoned): the reason every reader and caller gets. */
  private cancelled: Error | undefined;
  /** Every byte has arrived: cancelling no longer saves anything. */
  private received = false;

  constructor(
    private readonly writer: BlobWriter,
    private readonly source: DownloadSource,
    readonly expectedLength: number | undefined,
    check: CommitCheck,
    private readonly opts: DownloadOptions = {},
  ) {
    this.upstream = check.upstream ?? '';
    if (expectedLength !== undefined && expectedLength <= MEMORY_MAX) this.mem = [];
    this.events.setMaxListeners(0);
    this.started = new Promise<void>((resolve, reject) => (this.firstBytes = { resolve, reject }));
    this.started.catch(() => undefined);
    this.done = this.pump(source, check);
    this.done.catch(() => undefined); // failures reach readers and awaiting callers; never unhandled
    void this.started.then(() => this.holders === 0 && this.armAbandon(), () => undefined);
  }

  /**
   * Marks the download as wanted by someone who is not (yet) a reader here, e.g. a client of another worker
   * following it through the store. Call the returned function (once) when they are gone.
   */
  hold(): () => void {
    this.holders++;
    if (this.abandonTimer) clearTimeout(this.abandonTimer);
    this.abandonTimer = undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
      if (this.holders === 0) this.armAbandon();
    };
  }

  private armAbandon(): void {
    const ms = this.opts.abandonAfterMs;
    if (ms === undefined || this.settled || this.received || this.abandonTimer) return;
    this.abandonTimer = setTimeout(() => {
      this.abandonTimer = undefined;
      if (this.holders === 0) this.cancel(this.opts.abandonError?.() ?? new Error(`download abandoned: nobody read it for ${ms} ms`));
    }, ms);
    this.abandonTimer.unref();
  }

  /** Stops the download: the source is destroyed (its connection closed), nothing is stored, readers fail. */
  private cancel(reason: Error): void {
    if (this.settled || this.received || this.cancelled) return;
    this.cancelled = reason;
    this.source.destroy?.(reason);
    this.events.emit('progress');
  }

  /** Cancelled because nobody was reading it (a new client must start it again). */
  get abandoned(): boolean {
    return this.cancelled !== undefined;
  }

  private get settled(): boolean {
    return this.committed !== undefined || this.failure !== undefined;
  }

  private async pump(source: AsyncIterable<Uint8Array>, check: CommitCheck): Promise<BlobInfo> {
    const hash = createHash('sha512');
    try {
      for await (const chunk of source) {
        if (this.cancelled) throw this.cancelled; // a source that cannot be destroyed stops at its next chunk
        if (this.mem && this.writer.written + chunk.length <= MEMORY_MAX) {
          // one copy (the source may reuse its buffers) serves the readers and the writer's zip-tail check
          const copy = Buffer.from(chunk);
          this.writer.write(copy, true);
          this.mem.push(copy);
        } else {
          this.mem = undefined; // longer than announced: the commit refuses it
          this.writer.write(chunk);
        }
        hash.update(chunk);
        if (this.writer.written === chunk.length) this.firstBytes.resolve();
        this.events.emit('progress');
      }
      if (this.cancelled) throw this.cancelled;
      this.received = true;
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
      this.firstBytes.resolve();
      this.committed = await this.writer.commit(hash.digest('base64'), {
        ...check,
        onVerified: () => {
          this.verified = true;
          this.events.emit('progress');
        },
      });
      this.mem = undefined; // later readers read the committed file
      this.events.emit('progress');
      return this.committed;
    } catch (err) {
      if (this.abandonTimer) clearTimeout(this.abandonTimer);
      // what was written goes first: whoever hears of the failure (a client's 502) finds nothing left of it
      await this.writer.abort();
      this.failure = this.cancelled ?? (err instanceof Error ? err : new Error(String(err)));
      this.firstBytes.reject(this.failure);
      this.events.emit('progress');
      throw this.failure;
    }
  }

  /**
   * Resolves once a client may be answered: when every check has passed, or, for a body longer than
   * `holdUpTo` bytes, as soon as more than that has arrived (a large package streams to its clients while it
   * arrives). Rejects with the download's error before that, so a client still waiting gets an error status
   * rather than a cut body.
   */
  ready(holdUpTo: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const decide = (): boolean => {
        if (this.failure) reject(this.failure);
        else if (this.isVerified || this.writer.written > holdUpTo) resolve();
        else return false;
        return true;
      };
      if (decide()) return;
      const off = this.onProgress(() => decide() && off());
    });
  }

  /**
   * The whole body, once every check has passed, when it is held in memory (a small download, see `mem`):
   * a client waiting for it is answered with one write instead of a reader following the download. Undefined
   * before that, for a large body, and once committed (later clients read the stored file).
   */
  verifiedBytes(): Buffer | undefined {
    if (!this.verified || this.committed || !this.mem) return undefined;
    if (this.mem.length !== 1) this.mem = [Buffer.concat(this.mem)];
    return this.mem[0];
  }

  get bytesWritten(): number {
    return this.writer.written;
  }

  /** Every check passed (the last byte may be read). */
  get isVerified(): boolean {
    return this.verified || this.committed !== undefined;
  }

  /** What another process of this nuproxy follows the download by (BlobStore.followShared), if the store can share. */
  get shareRef(): string | undefined {
    return this.writer.shareRef;
  }

  /** Called on every chunk written, on verification and at the end. */
  onProgress(listener: () => void): () => void {
    this.events.on('progress', listener);
    return () => this.events.off('progress', listener);
  }

  /**
   * A stream of the blob's bytes, available as they arrive. Open it synchronously after construction. While
   * open it holds the download (see hold()).
   */
  createReader(): Readable {
    if (this.committed) return this.writer.follow(0, this.committedLimits(this.committed));
    if (this.failure) return this.afterOutcome();
    const reader = this.followingReader();
    const release = this.hold();
    reader.once('close', release);
    return reader;
  }

  private committedLimits(info: BlobInfo): FollowLimits {
    return { limit: () => info.size, finished: () => true, events: this.events };
  }

  /** Waits for the outcome: the committed bytes, or the download's error. */
  private afterOutcome(): Readable {
    return settledReader(this.done, (info) => this.writer.follow(0, this.committedLimits(info)));
  }

  private followingReader(): Readable {
    const self = this;
    const limits: FollowLimits = {
      limit: () => (self.committed ? self.committed.size : self.verified ? self.writer.written : Math.max(0, self.writer.written - 1)),
      finished: () => self.committed !== undefined || self.verified,
      failed: () => self.failure ?? self.cancelled,
      events: this.events,
    };
    if (this.mem) return memoryReader(this.mem, limits);
    try {
      return this.writer.follow(0, limits);
    } catch {
      // The writer's bytes are gone but the outcome is not recorded yet: a failure has just removed them. Follow
      // the outcome instead of failing with the writer's error.
      return this.afterOutcome();
    }
  }
}
