import type { Config } from '../config/schema.js';
import { NuproxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { buildServiceIndex, type ProxyCapabilities, type UpstreamResources } from '../protocol/service-index.js';
import {
  findPageFor,
  leafKey,
  pageKey,
  rewriteRegistrationIndex,
  rewriteRegistrationLeaf,
  rewriteRegistrationPage,
} from '../protocol/registration.js';
import { rewriteSearch, searchHive } from '../protocol/search.js';
import { sortVersionStrings } from '../protocol/sort.js';
import { parseVersion } from '../protocol/version.js';
import { rewriteVulnerabilityIndex } from '../protocol/vulnerability.js';
import type { CacheOutcome, DocSource, MetadataCache } from './metadata-cache.js';
import { PackageFiles, type PackageFile, type PackageHandle } from './packages.js';
import type { UpstreamSource } from './upstream-source.js';

/** A metadata answer: the stored body (placeholder base, see protocol/urls.ts) and how it was obtained. */
export interface DocAnswer {
  key: string;
  body: string;
  fetchedAt: number;
  gzip: boolean;
  outcome: CacheOutcome;
  upstream: string | undefined;
  links: Record<string, string> | undefined;
}

type Freshness = Config['cache']['freshness'];

/** Capabilities advertised when no upstream index is known at all (first start with upstreams unreachable). */
const FALLBACK_CAPS: ProxyCapabilities = {
  hives: [{ name: 'semver2', types: [{ type: 'RegistrationsBaseUrl/3.6.0' }, { type: 'RegistrationsBaseUrl/Versioned', clientVersion: '4.3.0-alpha' }] }],
  search: false,
  searchPackageType: false,
  autocomplete: false,
  autocompletePackageType: false,
  vulnerability: false,
};

/**
 * The decisions: which upstream answers, how long answers stay fresh, how upstream documents become the proxy's.
 * Routes call this; it calls the upstream clients and the stores.
 */
export class Feed {
  readonly packages: PackageFiles;
  private readonly primary: UpstreamSource;

  constructor(
    private readonly upstreams: readonly UpstreamSource[],
    private readonly cache: MetadataCache,
    packages: PackageFiles,
    private readonly fresh: Freshness,
    private readonly log: Logger,
  ) {
    const first = upstreams[0];
    if (!first) throw new NuproxyError('CONFIG_INVALID', 'at least one upstream is required');
    this.primary = first;
    this.packages = packages;
  }

  async serviceIndex(): Promise<DocAnswer> {
    let caps = FALLBACK_CAPS;
    let outcome: CacheOutcome = 'stale';
    let fetchedAt = 0;
    try {
      const r = await this.primary.resources();
      caps = capabilitiesOf(r.resources);
      outcome = r.outcome;
    } catch (err) {
      this.log.warn({ upstream: this.primary.name, err: (err as Error).message }, 'no upstream service index; advertising the fallback resource set');
    }
    const body = JSON.stringify(buildServiceIndex(caps));
    fetchedAt = hashCode(body);
    return { key: 'index', body, fetchedAt, gzip: false, outcome, upstream: this.primary.name, links: undefined };
  }

  async versions(lowerId: string): Promise<DocAnswer | undefined> {
    const src = this.primary;
    const key = `flat:${lowerId}`;
    return this.doc(key, this.fresh.versions, {
      upstream: src.name,
      fetch: async (v) => src.client.fetchJson(`${await this.flatBase(src)}${lowerId}/index.json`, v),
      transform: (json) => {
        const raw = (json as { versions?: unknown }).versions;
        if (!Array.isArray(raw)) throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${src.name} sent a version list without "versions"`, { upstream: src.name });
        return { body: JSON.stringify({ versions: sortVersionStrings(raw.filter((x): x is string => typeof x === 'string')) }) };
      },
    });
  }

  async registrationIndex(hive: string, lowerId: string): Promise<DocAnswer | undefined> {
    const src = this.primary;
    const base = await this.hiveBase(src, hive);
    if (!base) return undefined;
    return this.doc(`reg:${hive}:${lowerId}:index`, this.fresh.registration, {
      upstream: src.name,
      fetch: (v) => src.client.fetchJson(`${base}${lowerId}/index.json`, v),
      transform: (json) => {
        const { doc, links } = rewriteRegistrationIndex(asObject(json, src.name), lowerId, hive);
        return { body: JSON.stringify(doc), links };
      },
    });
  }

  async registrationPage(hive: string, lowerId: string, lower: string, upper: string): Promise<DocAnswer | undefined> {
    const index = await this.registrationIndex(hive, lowerId);
    const url = index?.links?.[pageKey(lower, upper)];
    if (!url) return undefined;
    const src = this.primary;
    return this.doc(`reg:${hive}:${lowerId}:page:${lower}/${upper}`, this.fresh.registration, {
      upstream: src.name,
      fetch: (v) => src.client.fetchJson(url, v),
      transform: (json) => {
        const { doc, links } = rewriteRegistrationPage(asObject(json, src.name), lowerId, hive, lower, upper);
        return { body: JSON.stringify(doc), links };
      },
    });
  }

  async registrationLeaf(hive: string, lowerId: string, lowerVersion: string): Promise<DocAnswer | undefined> {
    const index = await this.registrationIndex(hive, lowerId);
    if (!index) return undefined;
    let url = index.links?.[leafKey(lowerVersion)];
    if (!url) {
      const version = parseVersion(lowerVersion);
      const page = version && index.links ? findPageFor(index.links, version) : undefined;
      if (page) {
        const [lower, upper] = page.slice('page:'.length).split('/') as [string, string];
        const pageDoc = await this.registrationPage(hive, lowerId, lower, upper);
        url = pageDoc?.links?.[leafKey(lowerVersion)];
      }
    }
    if (!url) return undefined;
    const src = this.primary;
    return this.doc(`reg:${hive}:${lowerId}:leaf:${lowerVersion}`, this.fresh.registration, {
      upstream: src.name,
      fetch: (v) => src.client.fetchJson(url, v),
      transform: (json) => ({ body: JSON.stringify(rewriteRegistrationLeaf(asObject(json, src.name), lowerId, lowerVersion, hive).doc) }),
    });
  }

  async search(rawQuery: string): Promise<DocAnswer | undefined> {
    const src = this.primary;
    const { resources } = await src.resources();
    const hive = searchHive(new URLSearchParams(rawQuery), resources.hives.map((h) => h.name));
    if (resources.search.length === 0 || !hive) return undefined;
    return this.doc(`search:${rawQuery}`, this.fresh.search, {
      upstream: src.name,
      fetch: (v) => failover(resources.search, (url) => src.client.fetchJson(withQuery(url, rawQuery), v)),
      transform: (json) => ({ body: JSON.stringify(rewriteSearch(asObject(json, src.name), hive)) }),
    });
  }

  async autocomplete(rawQuery: string): Promise<DocAnswer | undefined> {
    const src = this.primary;
    const { resources } = await src.resources();
    if (resources.autocomplete.length === 0) return undefined;
    return this.doc(`ac:${rawQuery}`, this.fresh.autocomplete, {
      upstream: src.name,
      fetch: (v) => failover(resources.autocomplete, (url) => src.client.fetchJson(withQuery(url, rawQuery), v)),
      transform: (json) => ({ body: JSON.stringify(asObject(json, src.name)) }),
    });
  }

  async vulnerabilityIndex(): Promise<DocAnswer | undefined> {
    const src = this.primary;
    const { resources } = await src.resources();
    const url = resources.vulnerability;
    if (!url) return undefined;
    return this.doc('vuln:index', this.fresh.vulnerabilities, {
      upstream: src.name,
      fetch: (v) => src.client.fetchJson(url, v),
      transform: (json) => {
        const { doc, links } = rewriteVulnerabilityIndex(json);
        return { body: JSON.stringify(doc), links };
      },
    });
  }

  async vulnerabilityPage(name: string, tag: string): Promise<DocAnswer | undefined> {
    const index = await this.vulnerabilityIndex();
    const url = index?.links?.[`${name}/${tag}`];
    if (!url) return undefined;
    const src = this.primary;
    // page URLs change when their content does, so a stored page stays valid for as long as the index names it
    return this.doc(`vuln:page:${name}:${tag}`, this.fresh.vulnerabilities * 24, {
      upstream: src.name,
      fetch: (v) => src.client.fetchJson(url, v),
      transform: (json) => ({ body: JSON.stringify(asObject(json, src.name)) }),
    });
  }

  openPackage(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD'): Promise<PackageHandle | undefined> {
    return this.packages.open(this.primary, lowerId, lowerVersion, file, method);
  }

  private async doc(key: string, maxAgeMs: number, source: DocSource): Promise<DocAnswer | undefined> {
    const cached = await this.cache.get(key, maxAgeMs, source);
    if (!cached) return undefined;
    const e = cached.entry;
    return { key, body: e.body, fetchedAt: e.fetchedAt, gzip: e.gzip === true, outcome: cached.outcome, upstream: e.upstream, links: e.links };
  }

  private async flatBase(src: UpstreamSource): Promise<string> {
    const { resources } = await src.resources();
    if (!resources.flat) throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${src.name} offers no PackageBaseAddress`, { upstream: src.name });
    return resources.flat;
  }

  private async hiveBase(src: UpstreamSource, hive: string): Promise<string | undefined> {
    const { resources } = await src.resources();
    return resources.hives.find((h) => h.name === hive)?.url;
  }
}

function capabilitiesOf(r: UpstreamResources): ProxyCapabilities {
  return {
    hives: r.hives.map((h) => ({ name: h.name, types: h.types })),
    search: r.search.length > 0,
    searchPackageType: r.searchPackageType,
    autocomplete: r.autocomplete.length > 0,
    autocompletePackageType: r.autocompletePackageType,
    vulnerability: r.vulnerability !== undefined,
  };
}

function asObject(json: unknown, upstream: string): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${upstream} sent JSON of the wrong shape`, { upstream });
  }
  return json as Record<string, unknown>;
}

/** The client replaces the @id's query with its own (§4.1): do the same, forwarding the raw query string. */
function withQuery(url: string, rawQuery: string): string {
  const bare = url.split('?')[0]!;
  return rawQuery ? `${bare}?${rawQuery}` : bare;
}

/** Tries each endpoint in order (like the client does for several search endpoints); the last error wins. */
async function failover<T>(urls: readonly string[], fn: (url: string) => Promise<T>): Promise<T> {
  let lastErr: unknown;
  for (const url of urls) {
    try {
      return await fn(url);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

function hashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}
