import { NuproxyError } from '../errors.js';
import { parseServiceIndex, ServiceIndexError, type UpstreamResources } from '../protocol/service-index.js';
import type { HiveName } from '../protocol/service-types.js';
import type { BlobResult, NugetV3Upstream } from '../upstream/nuget-upstream.js';
import { storeKey } from './cache-keys.js';
import type { Contribution } from './fan-out.js';
import type { CacheOutcome, MetadataCache } from './metadata-cache.js';
import type { Upstream, UpstreamHealth } from './upstream.js';
import type { LeafSet, UpstreamDocs, VulnIndex } from './upstream-docs.js';
import type { Config } from '../config/schema.js';
import type { PackageFile, PackageSource } from './package-source.js';

export type Freshness = Config['cache']['freshness'];

type Json = Record<string, unknown>;

/**
 * One configured upstream as the feed sees it: the client plus its service index, cached like any other
 * metadata (so it survives a restart when the store is Redis, and is served stale when the upstream is down).
 * Its documents are read through `docs`, which all upstreams share (one bound on parsed documents).
 */
export class UpstreamSource implements Upstream, PackageSource {
  private parsed: { fetchedAt: number; resources: UpstreamResources } | undefined;

  constructor(
    readonly client: NugetV3Upstream,
    private readonly cache: MetadataCache,
    /** Freshness per kind of document for this upstream (its own overrides over cache.freshness). */
    readonly fresh: Freshness,
    /** Pushes, deletes and relists go to this upstream. */
    readonly writable: boolean,
    private readonly docs: UpstreamDocs,
  ) {}

  get name(): string {
    return this.client.name;
  }

  async resources(): Promise<{ resources: UpstreamResources; outcome: CacheOutcome }> {
    const doc = await this.cache.get(storeKey.serviceIndex(this.name), this.fresh.serviceIndex, {
      upstream: this.name,
      fetch: (v) => this.client.fetchJson(this.client.serviceIndexUrl, v),
      transform: (json) => {
        try {
          parseServiceIndex(json); // refuse to store an index the proxy cannot use
        } catch (err) {
          throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.name}: ${(err as ServiceIndexError).message}`, { upstream: this.name });
        }
        return { body: JSON.stringify(json) };
      },
    });
    if (doc.entry.absent) {
      throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.name} has no service index at its configured URL (404)`, { upstream: this.name });
    }
    if (!this.parsed || this.parsed.fetchedAt !== doc.entry.fetchedAt) {
      const resources = parseServiceIndex(JSON.parse(doc.entry.body));
      this.client.trustUrls(resources.urls);
      this.parsed = { fetchedAt: doc.entry.fetchedAt, resources };
    }
    return { resources: this.parsed.resources, outcome: doc.outcome };
  }

  versions(lowerId: string, revalidate: boolean): Promise<Contribution<string[]>> {
    return this.docs.versions(this, lowerId, revalidate);
  }

  leaves(hive: HiveName, lowerId: string): Promise<Contribution<LeafSet>> {
    return this.docs.leaves(this, hive, lowerId);
  }

  search(rawQuery: string, hive: string): Promise<Contribution<Json>> {
    return this.docs.search(this, rawQuery, hive);
  }

  autocomplete(rawQuery: string): Promise<Contribution<Json>> {
    return this.docs.autocomplete(this, rawQuery);
  }

  vulnerabilityIndex(): Promise<Contribution<VulnIndex>> {
    return this.docs.vulnerabilityIndex(this);
  }

  vulnerabilityPage(url: string, name: string, tag: string): Promise<Contribution<Json>> {
    return this.docs.vulnerabilityPage(this, url, name, tag);
  }

  /** A package file's body from this upstream's flat container (undefined when its index names none). */
  async openPackage(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD'): Promise<BlobResult | undefined> {
    const { resources } = await this.resources();
    if (!resources.flat) return undefined;
    const name = file === 'nupkg' ? `${lowerId}.${lowerVersion}.nupkg` : `${lowerId}.nuspec`;
    return this.client.openBlob(`${resources.flat}${lowerId}/${lowerVersion}/${name}`, method, file);
  }

  send(url: string, init: Parameters<NugetV3Upstream['send']>[1]): ReturnType<NugetV3Upstream['send']> {
    return this.client.send(url, init);
  }

  health(): UpstreamHealth {
    return this.client.health();
  }
}
