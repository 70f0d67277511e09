// Registration hives of the test upstream (protocol reference §3), shaped like nuget.org's registration5-* hives.
import { createHash } from 'node:crypto';
import { lowerId as toLowerId } from '../../../src/protocol/id.js';
import { formatRange, parseRange } from '../../../src/protocol/range.js';
import { jsonResp, notFound, type Resp } from './responses.js';
import type { PackageEntry, PackageStore } from './store.js';

export interface Hive {
  /** Path under the origin, with trailing slash. */
  readonly path: string;
  readonly gzip: boolean;
  readonly semVer2: boolean;
}

export const HIVE_GZ_SEMVER2: Hive = { path: '/v3/registration5-gz-semver2/', gzip: true, semVer2: true };
export const HIVE_GZ_SEMVER1: Hive = { path: '/v3/registration5-gz-semver1/', gzip: true, semVer2: false };
export const HIVE_SEMVER1: Hive = { path: '/v3/registration5-semver1/', gzip: false, semVer2: false };
export const HIVES: readonly Hive[] = [HIVE_GZ_SEMVER2, HIVE_GZ_SEMVER1, HIVE_SEMVER1];

/**
 * What a test package's registration leaf says beyond its nuspec (supply-chain policy tests, issue #16): its own
 * published date (else PUBLISHED), licence expression or URL, and advisories (catalogEntry.vulnerabilities).
 */
export interface LeafMeta {
  published?: string;
  licenseExpression?: string;
  licenseUrl?: string;
  /** severity "0" (low) … "3" (critical), as nuget.org writes it. */
  vulnerabilities?: { advisoryUrl: string; severity: string }[];
}

export interface FeedContext {
  readonly origin: string;
  readonly store: PackageStore;
  readonly inlineThreshold: number;
  readonly pageSize: number;
  /** By "lowerid@lowerversion" (normalized). */
  readonly leafMeta?: ReadonlyMap<string, LeafMeta>;
}

/** The leaf metadata of an entry, if a test gave any. */
function metaOf(ctx: FeedContext, e: PackageEntry): LeafMeta | undefined {
  return ctx.leafMeta?.get(`${e.lowerId}@${e.lowerVersion}`);
}

/** The published date a leaf shows: 1900 for an unlisted version (nuget.org's convention), else the test's or PUBLISHED. */
function publishedOf(ctx: FeedContext, e: PackageEntry): string {
  return e.listed ? (metaOf(ctx, e)?.published ?? PUBLISHED) : UNLISTED_PUBLISHED;
}

export const COMMIT_TIMESTAMP = '2024-01-01T00:00:00.0000000Z';
export const PUBLISHED = '2024-01-01T00:00:00.000+00:00';
export const UNLISTED_PUBLISHED = '1900-01-01T00:00:00+00:00';

const REGISTRATION_CONTEXT = {
  '@vocab': 'http://schema.nuget.org/schema#',
  catalog: 'http://schema.nuget.org/catalog#',
  xsd: 'http://www.w3.org/2001/XMLSchema#',
  items: { '@id': 'catalog:item', '@container': '@set' },
  commitTimeStamp: { '@id': 'catalog:commitTimeStamp', '@type': 'xsd:dateTime' },
  commitId: { '@id': 'catalog:commitId' },
  count: { '@id': 'catalog:count' },
  parent: { '@id': 'catalog:parent', '@type': '@id' },
  tags: { '@id': 'tag', '@container': '@set' },
  reasons: { '@container': '@set' },
  packageTargetFrameworks: { '@id': 'packageTargetFramework', '@container': '@set' },
  dependencyGroups: { '@id': 'dependencyGroup', '@container': '@set' },
  dependencies: { '@id': 'dependency', '@container': '@set' },
  packageContent: { '@type': '@id' },
  published: { '@type': 'xsd:dateTime' },
  registration: { '@type': '@id' },
};

const LEAF_CONTEXT = {
  '@vocab': 'http://schema.nuget.org/schema#',
  xsd: 'http://www.w3.org/2001/XMLSchema#',
  catalogEntry: { '@type': '@id' },
  registration: { '@type': '@id' },
  packageContent: { '@type': '@id' },
  published: { '@type': 'xsd:dateTime' },
};

/** A GUID-shaped, deterministic commit id. */
export function commitId(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** nuget.org style range string ("[2.14.0, )"); passes the nuspec string through when it cannot be parsed. */
export function nugetOrgRange(range: string): string {
  const r = parseRange(range);
  return r ? formatRange(r) : range;
}

export const hiveBase = (ctx: FeedContext, hive: Hive): string => `${ctx.origin}${hive.path}`;
export const indexUrl = (ctx: FeedContext, hive: Hive, lowerId: string): string =>
  `${hiveBase(ctx, hive)}${lowerId}/index.json`;
export const leafUrl = (ctx: FeedContext, hive: Hive, e: PackageEntry): string =>
  `${hiveBase(ctx, hive)}${e.lowerId}/${e.lowerVersion}.json`;
export const packageContentUrl = (ctx: FeedContext, e: PackageEntry): string =>
  `${ctx.origin}/v3-flatcontainer/${e.lowerId}/${e.lowerVersion}/${e.lowerId}.${e.lowerVersion}.nupkg`;
export const catalogUrl = (ctx: FeedContext, e: PackageEntry): string =>
  `${ctx.origin}/v3/catalog0/data/2024.01.01.00.00.00/${e.lowerId}.${e.lowerVersion}.json`;

function hiveVersions(ctx: FeedContext, hive: Hive, lowerId: string): PackageEntry[] {
  return ctx.store.versions(lowerId).filter((e) => hive.semVer2 || !e.semVer2);
}

function catalogEntry(ctx: FeedContext, hive: Hive, e: PackageEntry): Record<string, unknown> {
  const catUrl = catalogUrl(ctx, e);
  const entry: Record<string, unknown> = {
    '@id': catUrl,
    '@type': 'PackageDetails',
    authors: e.info.authors ?? '',
  };
  // Like nuget.org: no dependencyGroups property without groups, no dependencies property in an empty group.
  if (e.info.dependencyGroups.length > 0) {
    entry.dependencyGroups = e.info.dependencyGroups.map((g) => {
      const groupId =
        g.targetFramework !== undefined
          ? `${catUrl}#dependencygroup/${g.targetFramework.toLowerCase()}`
          : `${catUrl}#dependencygroup`;
      const group: Record<string, unknown> = { '@id': groupId, '@type': 'PackageDependencyGroup' };
      if (g.dependencies.length > 0) {
        group.dependencies = g.dependencies.map((d) => ({
          '@id': `${groupId}/${toLowerId(d.id)}`,
          '@type': 'PackageDependency',
          id: d.id,
          range: nugetOrgRange(d.range),
          registration: indexUrl(ctx, hive, toLowerId(d.id)),
        }));
      }
      if (g.targetFramework !== undefined) group.targetFramework = g.targetFramework;
      return group;
    });
  }
  const meta = metaOf(ctx, e);
  Object.assign(entry, {
    description: e.info.description ?? '',
    iconUrl: '',
    id: e.id,
    language: '',
    licenseExpression: meta?.licenseExpression ?? '',
    licenseUrl: meta?.licenseUrl ?? '',
    listed: e.listed,
    minClientVersion: '',
    packageContent: packageContentUrl(ctx, e),
    projectUrl: '',
    published: publishedOf(ctx, e),
    requireLicenseAcceptance: false,
    summary: '',
    tags: [],
    title: '',
    version: e.fullVersion,
  });
  // like nuget.org: the property only when the version has advisories
  if (meta?.vulnerabilities?.length) entry.vulnerabilities = meta.vulnerabilities.map((v) => ({ '@id': `${catUrl}#vulnerability/${v.advisoryUrl}`, '@type': 'Vulnerability', ...v }));
  return entry;
}

function leafObject(ctx: FeedContext, hive: Hive, e: PackageEntry): Record<string, unknown> {
  return {
    '@id': leafUrl(ctx, hive, e),
    '@type': 'Package',
    commitId: commitId(`${e.lowerId}@${e.lowerVersion}@${e.modified}`),
    commitTimeStamp: COMMIT_TIMESTAMP,
    catalogEntry: catalogEntry(ctx, hive, e),
    packageContent: packageContentUrl(ctx, e),
    registration: indexUrl(ctx, hive, e.lowerId),
  };
}

interface Paging {
  inlined: boolean;
  pages: { lower: string; upper: string; entries: PackageEntry[] }[];
}

function paging(ctx: FeedContext, entries: PackageEntry[]): Paging {
  const pages: Paging['pages'] = [];
  for (let i = 0; i < entries.length; i += ctx.pageSize) {
    const chunk = entries.slice(i, i + ctx.pageSize);
    pages.push({ lower: chunk[0]!.lowerVersion, upper: chunk[chunk.length - 1]!.lowerVersion, entries: chunk });
  }
  return { inlined: entries.length <= ctx.inlineThreshold, pages };
}

function pageObject(
  ctx: FeedContext,
  hive: Hive,
  lowerId: string,
  page: Paging['pages'][number],
  withItems: boolean,
  inlined: boolean,
): Record<string, unknown> {
  const index = indexUrl(ctx, hive, lowerId);
  const obj: Record<string, unknown> = {
    '@id': inlined
      ? `${index}#page/${page.lower}/${page.upper}`
      : `${hiveBase(ctx, hive)}${lowerId}/page/${page.lower}/${page.upper}.json`,
    '@type': 'catalog:CatalogPage',
    commitId: commitId(page.entries.map((e) => `${e.lowerVersion}@${e.modified}`).join(',')),
    commitTimeStamp: COMMIT_TIMESTAMP,
    count: page.entries.length,
  };
  if (withItems) {
    obj.items = page.entries.map((e) => leafObject(ctx, hive, e));
    obj.parent = index;
  }
  obj.lower = page.lower;
  obj.upper = page.upper;
  return obj;
}

/** Serves `{hive}...` paths; `rest` is the path after the hive prefix. */
export function serveRegistration(ctx: FeedContext, hive: Hive, rest: string): Resp {
  const parts = rest.split('/');
  const lowerId = parts[0] ?? '';
  const entries = hiveVersions(ctx, hive, lowerId);
  if (entries.length === 0) return notFound();
  const lastModified = Math.max(...entries.map((e) => e.modified));
  const gzip = hive.gzip;
  const p = paging(ctx, entries);

  if (parts.length === 2 && parts[1] === 'index.json') {
    const index = indexUrl(ctx, hive, lowerId);
    return jsonResp(
      {
        '@id': index,
        '@type': ['catalog:CatalogRoot', 'PackageRegistration', 'catalog:Permalink'],
        commitId: commitId(entries.map((e) => `${e.lowerVersion}@${e.modified}`).join(',')),
        commitTimeStamp: COMMIT_TIMESTAMP,
        count: p.pages.length,
        items: p.pages.map((pg) => pageObject(ctx, hive, lowerId, pg, p.inlined, p.inlined)),
        '@context': REGISTRATION_CONTEXT,
      },
      { lastModified, gzip },
    );
  }
  if (parts.length === 4 && parts[1] === 'page' && !p.inlined) {
    const page = p.pages.find((pg) => pg.lower === parts[2] && `${pg.upper}.json` === parts[3]);
    if (!page) return notFound();
    return jsonResp(
      { ...pageObject(ctx, hive, lowerId, page, true, false), '@context': REGISTRATION_CONTEXT },
      { lastModified, gzip },
    );
  }
  if (parts.length === 2 && parts[1]!.endsWith('.json')) {
    const lowerVersion = parts[1]!.slice(0, -'.json'.length);
    const e = entries.find((x) => x.lowerVersion === lowerVersion);
    if (!e) return notFound();
    return jsonResp(
      {
        '@id': leafUrl(ctx, hive, e),
        '@type': ['Package', 'http://schema.nuget.org/catalog#Permalink'],
        catalogEntry: catalogUrl(ctx, e),
        listed: e.listed,
        packageContent: packageContentUrl(ctx, e),
        published: publishedOf(ctx, e),
        registration: indexUrl(ctx, hive, e.lowerId),
        '@context': LEAF_CONTEXT,
      },
      { lastModified: e.modified, gzip },
    );
  }
  return notFound();
}
