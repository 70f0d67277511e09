import type { Readable } from 'node:stream';
import type { BlobInfo, BlobStore } from '../cache/blob-store.js';
import type { BoxLink } from '../cache/box-link.js';
import { RemoteDownload, type SharedDownload } from '../cache/shared-download.js';

/** A download another worker announced fails when it reports nothing for this long. */
const REMOTE_IDLE_MS = 120_000;

/** What a worker tells the others about its downloads (through the primary process). */
type BoxDownloadMessage =
  | { kind: 'dl-start'; key: string; shareRef: string; length: number | undefined; upstream: string; written: number; verified: boolean }
  | { kind: 'dl-progress'; key: string; written: number; verified: boolean }
  | { kind: 'dl-done'; key: string; info: BlobInfo }
  | { kind: 'dl-failed'; key: string; message: string }
  | { kind: 'holder-gone'; key: string }
  // a client of another worker started (join) or stopped (leave) following a download: it is still wanted
  | { kind: 'dl-join'; key: string }
  | { kind: 'dl-leave'; key: string };

/**
 * This worker's side of the downloads shared between the workers of one nuproxy (config `workers`, one disk):
 * it announces its own downloads (their share reference in the store, progress, outcome) so the others' clients
 * follow them through the store instead of fetching again, follows the downloads the others announce, and tells a writer while a client here
 * still reads its download (so the writer does not abandon it when its own clients have left). Who fetches is
 * the fetch lock's business (BoxFetchLock).
 */
export class WorkerDownloads {
  constructor(
    private readonly box: BoxLink,
    private readonly blobs: Pick<BlobStore, 'open' | 'followShared'>,
  ) {
    box.subscribe((payload) => this.onBoxMessage(payload as BoxDownloadMessage));
  }

  /** A reader of another worker's download; while it is open, that worker keeps the download going. */
  follow(key: string, r: RemoteDownload): Readable {
    const stream = r.createReader();
    this.box.publish({ kind: 'dl-join', key } satisfies BoxDownloadMessage);
    stream.once('close', () => this.box.publish({ kind: 'dl-leave', key } satisfies BoxDownloadMessage));
    return stream;
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
      this.remote.set(m.key, new RemoteDownload(this.blobs, m.key, m.shareRef, m.length, m.upstream, REMOTE_IDLE_MS));
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
  followable(key: string): RemoteDownload | undefined {
    const r = this.remote.get(key);
    if (r?.settled) this.remote.delete(key);
    return r && !r.settled ? r : undefined;
  }

  /** Resolves when another worker announces a download of `key`, or after `ms`. */
  remoteStart(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const list = this.remoteWaiters.get(key) ?? [];
      list.push(resolve);
      this.remoteWaiters.set(key, list);
      setTimeout(resolve, ms).unref();
    });
  }

  /**
   * Tells the other workers about a download this worker makes, so their clients follow it through the store. A
   * store that cannot share a writer: nothing is announced (the others wait for the lock, then read the store).
   */
  announce(key: string, dl: SharedDownload): void {
    const box = this.box;
    const shareRef = dl.shareRef;
    if (shareRef === undefined || !this.blobs.followShared) return;
    const mine = { dl, holds: [] as (() => void)[] };
    this.announced.set(key, mine);
    const forget = (): void => {
      if (this.announced.get(key) === mine) this.announced.delete(key);
    };
    dl.done.then(forget, forget);
    box.publish({ kind: 'dl-start', key, shareRef, length: dl.expectedLength, upstream: dl.upstream, written: dl.bytesWritten, verified: dl.isVerified } satisfies BoxDownloadMessage);
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
}
