import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { BlobInfo } from './fs-blob-store.js';
import { committedReader, fileReader, settledReader } from './follow-reader.js';

/**
 * A download another process on this machine is writing (a worker of the same nuproxy): its temp file is
 * followed as that process reports progress, with the same rule as SharedDownload: the last byte only once the
 * writer has verified the whole. Without news for `idleMs` the download counts as failed.
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
    readonly tempPath: string,
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
    if (this.committed) return committedReader(this.committed);
    if (this.failure) return settledReader(this.done);
    try {
      return fileReader(
        this.tempPath,
        0,
        () => (this.committed ? this.committed.size : this.verified ? this.written : Math.max(0, this.written - 1)),
        () => this.committed !== undefined || this.verified,
        () => this.failure,
        this.events,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return settledReader(this.done); // moved into place (or removed) already: follow the outcome
    }
  }
}
