import type { BlobStore } from '../cache/blob-store.js';
import type { Logger } from '../log.js';
import { readNuspecBytes } from './nuspec.js';
import { packageKey } from './cache-keys.js';

/** Longest a stored package waits for a quiet moment before its nuspec is kept. */
const NUSPEC_MAX_WAIT_MS = 30_000;

/**
 * The nuspec of every stored package, kept beside it (packages/{id}/{version}/{id}.nuspec): offline answers
 * (registration, dependencies, search) are built from them. Kept one at a time, at a quiet moment: a cold
 * restore fetches dozens of packages at once, and between its bursts the client needs the CPU.
 */
export class NuspecKeeper {
  private chain: Promise<unknown> = Promise.resolve();
  private hurried = false;

  constructor(
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    /** True while the proxy is busy with packages (downloads under way, or a package just asked for). */
    private readonly busy: () => boolean,
    /** Called with the key of a nuspec once stored (a memory copy of the old one must go). */
    private readonly stored: (key: string) => void,
    /** Longest a stored package waits for a quiet moment (tests shorten it). */
    private readonly maxWaitMs = NUSPEC_MAX_WAIT_MS,
  ) {}

  /** Keeps the nuspec of a package just stored (at `nupkgKey`): `known` (read by its identity check), or read from the package. */
  schedule(lowerId: string, lowerVersion: string, nupkgKey: string, upstream?: string, known?: Buffer): void {
    // the longest wait counts from now, not from when the one before it is kept: on a server that is never idle a
    // queue of nuspecs would otherwise be kept one per maxWaitMs
    const until = Date.now() + this.maxWaitMs;
    this.chain = this.chain
      .then(() => this.quiet(until))
      .then(() => this.keep(lowerId, lowerVersion, nupkgKey, upstream, known))
      .catch(() => undefined);
  }

  /**
   * Waits until not busy, but not past `until` on a server that is never idle. Looks before it sleeps: on a quiet
   * (or stopping) server a queue of nuspecs is kept back to back, not one per sleep (564 queued nuspecs once held a
   * SIGTERM for 28 s, nearly all of a 30 s grace).
   */
  private async quiet(until: number): Promise<void> {
    while (!this.hurried && this.busy() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  /** Stores the nuspec of a stored package beside it (`known`, or read from the .nupkg); its bytes, or undefined. */
  async keep(lowerId: string, lowerVersion: string, nupkgKey: string, upstream?: string, known?: Buffer): Promise<Buffer | undefined> {
    const key = packageKey(lowerId, lowerVersion, 'nuspec');
    try {
      // the package may have been evicted while this waited for a quiet moment: no nuspec without its package
      if (known && !(await this.blobs.stat(nupkgKey))) return undefined;
      const bytes = known ?? (await this.fromPackage(nupkgKey));
      if (!bytes) return undefined;
      // the nuspec inside the (checked) package is the authority: it replaces a different stored copy
      const existing = await this.blobs.stat(key);
      if (existing && (await this.blobs.read(key))?.equals(bytes)) return bytes;
      await this.blobs.put(key, bytes, upstream ? { upstream } : {});
      this.stored(key);
      return bytes;
    } catch (err) {
      this.log.warn({ key, err: (err as Error).message }, 'could not keep the nuspec of a stored package');
      return undefined;
    }
  }

  /** The nuspec inside a stored package, read through the store (the zip directory and one entry). */
  private async fromPackage(nupkgKey: string): Promise<Buffer | undefined> {
    const content = await this.blobs.reader(nupkgKey);
    if (!content) return undefined;
    try {
      return await readNuspecBytes(content);
    } finally {
      await content.close();
    }
  }

  /** Shutting down: nuspecs still waiting for a quiet moment are kept now. */
  hurry(): void {
    this.hurried = true;
  }

  /** Resolves when every nuspec scheduled so far is kept. */
  drain(): Promise<unknown> {
    return this.chain;
  }
}
