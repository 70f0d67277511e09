import type { UpstreamResources } from '../protocol/service-index.js';
import type { HiveName } from '../protocol/service-types.js';
import type { BlobResult, NugetV3Upstream } from '../upstream/nuget-upstream.js';
import type { Contribution } from './fan-out.js';
import type { CacheOutcome } from './metadata-cache.js';
import type { LeafSet, VulnIndex } from './upstream-docs.js';

type Json = Record<string, unknown>;

/** The circuit breaker's state, as /health shows it. */
export type UpstreamHealth = ReturnType<NugetV3Upstream['health']>;

/**
 * One configured upstream, as feed/ sees it: exactly what the feed asks of it. Documents come back as
 * contributions to a merged answer, already read through the metadata cache under their keys (cache-keys.ts).
 * `UpstreamSource` is the real one; `OfflineUpstream` the one that never connects (offline mode). A failure is a
 * coded upstream failure (errors.ts isUpstreamFailure), so "down" never looks like "absent".
 */
export interface Upstream {
  readonly name: string;
  /** Pushes, deletes and relists go to this upstream. */
  readonly writable: boolean;
  /** Its service index, parsed (cached like any other document). */
  resources(): Promise<{ resources: UpstreamResources; outcome: CacheOutcome }>;
  /** The id's version list (`revalidate`: past its freshness whatever its age). */
  versions(lowerId: string, revalidate: boolean): Promise<Contribution<string[]>>;
  /** Every registration leaf of the id in the hive that stands for `hive`, external pages included. */
  leaves(hive: HiveName, lowerId: string): Promise<Contribution<LeafSet>>;
  search(rawQuery: string, hive: string): Promise<Contribution<Json>>;
  autocomplete(rawQuery: string): Promise<Contribution<Json>>;
  vulnerabilityIndex(): Promise<Contribution<VulnIndex>>;
  /** One page its vulnerability index lists (`url`), proxied as `name`/`tag`. */
  vulnerabilityPage(url: string, name: string, tag: string): Promise<Contribution<Json>>;
  /** A package file from its flat container: what the client's openBlob gives; undefined without a flat container. */
  openPackage(lowerId: string, lowerVersion: string, file: 'nupkg' | 'nuspec', method: 'GET' | 'HEAD'): Promise<BlobResult | undefined>;
  /** Push, delete or relist on the upstream's own publish URL. */
  send(url: string, init: Parameters<NugetV3Upstream['send']>[1]): ReturnType<NugetV3Upstream['send']>;
  health(): UpstreamHealth;
}
