import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { BlobInfo, BlobStore } from './blob-store.js';
import { settledReader } from './follow-reader.js';

/**
 * A download another process on this machine is writing (a worker of the same nuproxy), followed through the
 * store by the writer's share reference as that process reports progress, with the same rule as
 * SharedDownload: the last byte only once the writer has verified the whole. Once committed, the blob is read
 * from the store at its key. Without news for `idleMs` the download counts as failed.
 */
export class RemoteDownload {
  readonly done: Promise<BlobInfo>;
  private readonly events = new EventEmitter();
  private written = 0;
  private verified = false;
  private committed: BlobInfo | undefined;
  private failure: Error | undefined;
  private settle!: { resolve: (info: BlobInfo) => void; reject: (err: Error) => void };
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly blobs: Pick<BlobStore, 'open' | 'followShared'>,
    readonly key: string,
    /** The writer's BlobWriter.shareRef. */
    readonly shareRef: string,
    readonly expectedLength: number | undefined,
    readonly upstream: string,
    private readonly idleMs: number,
  ) {
    this.events.setMaxListeners(0);
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined);
    this.touch();
  }

  private touch(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => this.fail('the worker fetching this package stopped reporting'), this.idleMs);
    this.idle.unref();
  }

  progress(written: number, verified: boolean): void {
    if (this.committed || this.failure) return;
    this.written = Math.max(this.written, written);
    this.verified ||= verified;
    this.touch();
    this.events.emit('progress');
  }

  finish(info: BlobInfo): void {
    if (this.committed || this.failure) return;
    if (this.idle) clearTimeout(this.idle);
    this.committed = info;
    this.settle.resolve(info);
    this.events.emit('progress');
  }

  fail(message: string): void {
    if (this.committed || this.failure) return;
    if (this.idle) clearTimeout(this.idle);
    this.failure = new Error(message);
    this.settle.reject(this.failure);
    this.events.emit('progress');
  }

  get settled(): boolean {
    return this.committed !== undefined || this.failure !== undefined;
  }

  createReader(): Readable {
    const stored = (): Promise<Readable | undefined> => this.blobs.open(this.key);
    if (this.committed || this.failure || !this.blobs.followShared) return settledReader(this.done, stored);
    try {
      return this.blobs.followShared(this.shareRef, 0, {
        limit: () => (this.committed ? this.committed.size : this.verified ? this.written : Math.max(0, this.written - 1)),
        finished: () => this.committed !== undefined || this.verified,
        failed: () => this.failure,
        events: this.events,
      });
    } catch {
      return settledReader(this.done, stored); // moved into place (or removed) already: follow the outcome
    }
  }
}
