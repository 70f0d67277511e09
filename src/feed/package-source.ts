import type { BlobResult } from '../upstream/nuget-upstream.js';

export type PackageFile = 'nupkg' | 'nuspec';

/**
 * The upstream the feed chose for one package version (the one that wins it in the merged list), as the
 * package path needs it: a name for logs and records, and the file's body. The feed decides who; the package
 * path only fetches (UpstreamSource is one).
 */
export interface PackageSource {
  readonly name: string;
  /** The file's body from this upstream (a 404 is `not-found`), or undefined when it has no flat container. */
  openPackage(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD'): Promise<BlobResult | undefined>;
}

/** Where a package file lives in the blob store (the one definition: cache-keys.ts). */
export { packageKey } from './cache-keys.js';
