import { compareVersions, lowerNormalizedVersion, normalizeVersion, parseVersion } from '../protocol/version.js';
import { packageContentUrl, registrationIndexUrl, registrationLeafUrl, registrationPageUrl } from '../protocol/urls.js';

type Json = Record<string, unknown>;

/** nuget.org's paging (NuGetGallery Catalog2Registration): 64 leaves a page, all inlined up to 127 leaves. */
export const LEAVES_PER_PAGE = 64;
export const MAX_INLINED_LEAVES = 127;

export interface BuiltRegistration {
  index: Json;
  /** Separate page documents by "lower/upper" (lowercase normalized); empty when pages are inlined. */
  pages: Map<string, Json>;
  /** Leaf per lowercase normalized version, for leaf documents. */
  leaves: Map<string, Json>;
}

export function leafVersion(leaf: Json): string | undefined {
  const ce = leaf.catalogEntry as Json | undefined;
  return typeof ce?.version === 'string' ? lowerNormalizedVersion(ce.version) : undefined;
}

/** A minimal leaf for a version an upstream's flat container lists but its registration lacks. */
export function synthesizeLeaf(hive: string, lowerId: string, id: string, lowerVersion: string): Json {
  const leafUrl = registrationLeafUrl(hive, lowerId, lowerVersion);
  const content = packageContentUrl(lowerId, lowerVersion);
  return {
    '@id': leafUrl,
    '@type': 'Package',
    catalogEntry: { '@id': leafUrl, '@type': 'PackageDetails', id, version: lowerVersion, listed: true, packageContent: content, description: '', authors: '' },
    packageContent: content,
    registration: registrationIndexUrl(hive, lowerId),
  };
}

/**
 * Rebuilds a registration index from chosen leaves (protocol notes §3.2, pitfall 13): sorted by NuGet
 * precedence, chunked into pages with their own `lower`, `upper` and `count`, inlined when small, every URL the
 * proxy's. `extras` are index-level fields kept from the highest-priority upstream (e.g. `@context`).
 */
export function buildRegistration(hive: string, lowerId: string, chosen: readonly Json[], extras: Json = {}): BuiltRegistration {
  const sorted = chosen
    .map((leaf) => ({ leaf, v: parseVersion(String((leaf.catalogEntry as Json).version)) }))
    .filter((x): x is { leaf: Json; v: NonNullable<typeof x.v> } => x.v !== undefined)
    .sort((a, b) => compareVersions(a.v, b.v));
  const indexUrl = registrationIndexUrl(hive, lowerId);
  const inline = sorted.length <= MAX_INLINED_LEAVES;
  const pages = new Map<string, Json>();
  const leaves = new Map<string, Json>();
  const items: Json[] = [];
  for (let i = 0; i < sorted.length; i += LEAVES_PER_PAGE) {
    const chunk = sorted.slice(i, i + LEAVES_PER_PAGE);
    const lower = normalizeVersion(chunk[0]!.v);
    const upper = normalizeVersion(chunk[chunk.length - 1]!.v);
    const lo = lower.toLowerCase();
    const up = upper.toLowerCase();
    const pageLeaves = chunk.map((c) => c.leaf);
    for (const c of chunk) leaves.set(normalizeVersion(c.v).toLowerCase(), c.leaf);
    if (inline) {
      items.push({ '@id': `${indexUrl}#page/${lo}/${up}`, '@type': 'catalog:CatalogPage', count: chunk.length, items: pageLeaves, parent: indexUrl, lower, upper });
    } else {
      const pageUrl = registrationPageUrl(hive, lowerId, lo, up);
      items.push({ '@id': pageUrl, '@type': 'catalog:CatalogPage', count: chunk.length, lower, upper });
      pages.set(`${lo}/${up}`, { '@id': pageUrl, '@type': 'catalog:CatalogPage', count: chunk.length, items: pageLeaves, parent: indexUrl, lower, upper });
    }
  }
  const { items: _i, count: _c, '@id': _id, ...rest } = extras;
  const index: Json = {
    '@id': indexUrl,
    '@type': ['catalog:CatalogRoot', 'PackageRegistration', 'catalog:Permalink'],
    ...rest,
    count: items.length,
    items,
  };
  return { index, pages, leaves };
}

/** The registration leaf document (§3.6) for one merged leaf. */
export function leafDocument(hive: string, lowerId: string, lowerVersion: string, leaf: Json): Json {
  const ce = (leaf.catalogEntry ?? {}) as Json;
  return {
    '@id': registrationLeafUrl(hive, lowerId, lowerVersion),
    '@type': ['Package', 'http://schema.nuget.org/catalog#Permalink'],
    catalogEntry: typeof ce['@id'] === 'string' ? ce['@id'] : registrationLeafUrl(hive, lowerId, lowerVersion),
    listed: ce.listed !== false,
    packageContent: packageContentUrl(lowerId, lowerVersion),
    ...(typeof ce.published === 'string' ? { published: ce.published } : {}),
    registration: registrationIndexUrl(hive, lowerId),
  };
}
