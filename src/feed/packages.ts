import type { Readable } from 'node:stream';
import type { BlobInfo, FsBlobStore } from '../cache/fs-blob-store.js';
import { SharedDownload } from '../cache/shared-download.js';
import type { Logger } from '../log.js';
import { verifyNuspec, verifyZip } from './verify.js';
import type { UpstreamSource } from './upstream-source.js';

export type PackageFile = 'nupkg' | 'nuspec';
export type { BlobInfo };

export type PackageHandle =
  | { kind: 'file'; info: BlobInfo; outcome: 'hit'; upstream?: string }
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
export class PackageFiles {
  private readonly downloads = new Map<string, Promise<SharedDownload | undefined>>();

  constructor(
    private readonly blobs: FsBlobStore,
    private readonly log: Logger,
  ) {}

  /**
   * `resolve` names the upstream to fetch from; it is only called on a miss, so a cached package is served
   * without asking anything (and with every upstream down).
   */
  async open(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD', resolve: () => Promise<{ source: UpstreamSource; partial: string[] } | undefined>): Promise<PackageHandle | undefined> {
    const key = packageKey(lowerId, lowerVersion, file);
    const pending = this.downloads.get(key);
    if (!pending) {
      const info = await this.blobs.stat(key);
      if (info) return { kind: 'file', info, outcome: 'hit', ...(info.upstream ? { upstream: info.upstream } : {}) };
    }
    let outcome: 'miss' | 'shared' = 'shared';
    let started = this.downloads.get(key);
    if (!started && method === 'HEAD') {
      const chosen = await resolve();
      return chosen ? this.head(chosen.source, lowerId, lowerVersion, file) : undefined;
    }
    if (!started) {
      outcome = 'miss';
      started = resolve().then((chosen) => (chosen ? this.start(chosen.source, key, lowerId, lowerVersion, file) : undefined));
      this.downloads.set(key, started);
      const forget = (): void => void this.downloads.delete(key);
      started.then((dl) => (dl ? dl.done.then(forget, forget) : forget()), forget);
    }
    const download = await started;
    if (!download) return undefined;
    return { kind: 'stream', stream: download.createReader(), length: download.expectedLength, outcome, upstream: download.upstream };
  }

  private async start(source: UpstreamSource, key: string, lowerId: string, lowerVersion: string, file: PackageFile): Promise<SharedDownload | undefined> {
    const url = await this.upstreamUrl(source, lowerId, lowerVersion, file);
    if (!url) return undefined;
    const res = await source.client.openBlob(url);
    if (res.kind === 'not-found') return undefined;
    let writer;
    try {
      writer = this.blobs.createWriter(key);
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    const dl = new SharedDownload(writer, res.body, res.length, {
      ...(res.length !== undefined ? { expectedLength: res.length } : {}),
      ...(res.sha512 && file === 'nupkg' ? { expectedSha512: res.sha512 } : {}),
      verify: file === 'nupkg' ? verifyZip : verifyNuspec,
      upstream: source.name,
    });
    dl.done.then(
      (info) => this.log.info({ key, upstream: source.name, bytes: info.size }, 'package stored'),
      (err: Error) => this.log.warn({ key, upstream: source.name, err: err.message }, 'package download failed; nothing stored'),
    );
    return dl;
  }

  private async head(source: UpstreamSource, lowerId: string, lowerVersion: string, file: PackageFile): Promise<PackageHandle | undefined> {
    const url = await this.upstreamUrl(source, lowerId, lowerVersion, file);
    if (!url) return undefined;
    const res = await source.client.openBlob(url, 'HEAD');
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

  /** Resolves when every download under way has finished (graceful shutdown). */
  async drain(): Promise<void> {
    const all = [...this.downloads.values()].map((p) => p.then((d) => d?.done).catch(() => undefined));
    await Promise.all(all);
  }

  get active(): number {
    return this.downloads.size;
  }
}
