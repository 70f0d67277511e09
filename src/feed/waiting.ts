import type { SharedDownload } from '../cache/shared-download.js';

/**
 * The client a package is opened for, as far as a download needs to know it: whether it is still there (the
 * HTTP response; it emits 'close' when the client goes). Without one (tools such as warm), the caller counts as
 * waiting until the download can be read.
 */
export interface Asker {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * The clients waiting for a download of one key before they can read it (its first bytes, or its verification:
 * see ANSWER_WHEN_VERIFIED in packages.ts). While one of them is still there the download is held; when the last one goes
 * before reading, the download's abandonment budget starts, as for readers who left.
 */
export class Waiting {
  private count = 0;
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
