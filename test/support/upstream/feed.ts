// Service index, flat container, search, autocomplete and vulnerability documents of the test upstream.
import { lowerId as toLowerId } from '../../../src/protocol/id.js';
import { compareVersions, isPrerelease, parseVersion } from '../../../src/protocol/version.js';
import { bytesResp, jsonResp, notFound, type Resp } from './responses.js';
import {
  HIVE_GZ_SEMVER1,
  HIVE_GZ_SEMVER2,
  HIVE_SEMVER1,
  HIVES,
  hiveBase,
  indexUrl,
  leafUrl,
  serveRegistration,
  type FeedContext,
} from './registration.js';
import type { PackageEntry } from './store.js';

export type VulnerabilityData = Record<string, { severity: number; url: string; versions: string }[]>;

export interface FullFeedContext extends FeedContext {
  readonly vulnerabilities: VulnerabilityData | undefined;
  /** False: a flat-only feed (a static or file-server feed): no search or autocomplete, in the index or served. */
  readonly search: boolean;
  /** When set, the index advertises PackagePublish/2.0.0 at {origin}{path} (and SymbolPackagePublish/4.9.0). */
  readonly publish: { readonly path: string; readonly symbolsPath: string | undefined } | undefined;
}

type Resource = { '@id': string; '@type': string; comment?: string; clientVersion?: string };

export function serviceIndex(ctx: FullFeedContext): unknown {
  const o = ctx.origin;
  const resources: Resource[] = [];
  const add = (id: string, types: string[], extra: Partial<Resource> = {}): void => {
    for (const t of types) resources.push({ '@id': id, '@type': t, ...extra });
  };
  add(`${o}/v3-flatcontainer/`, ['PackageBaseAddress/3.0.0'], {
    comment: 'Base URL of where NuGet packages are stored, in the format {base}/{id-lower}/{version-lower}/{id-lower}.{version-lower}.nupkg',
  });
  if (ctx.search) {
    add(`${o}/query`, ['SearchQueryService', 'SearchQueryService/3.0.0-beta', 'SearchQueryService/3.0.0-rc', 'SearchQueryService/3.5.0'], {
      comment: 'Query endpoint of NuGet Search service',
    });
    add(`${o}/autocomplete`, [
      'SearchAutocompleteService',
      'SearchAutocompleteService/3.0.0-beta',
      'SearchAutocompleteService/3.0.0-rc',
    ], { comment: 'Autocomplete endpoint of NuGet Search service' });
    add(`${o}/gallery`, ['SearchGalleryQueryService/3.0.0-rc'], {
      comment: 'Azure Website based Search Service used by Gallery',
    });
  }
  add(hiveBase(ctx, HIVE_SEMVER1), ['RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-beta', 'RegistrationsBaseUrl/3.0.0-rc'], {
    comment: 'Base URL of Azure storage where NuGet package registration info is stored',
  });
  add(hiveBase(ctx, HIVE_GZ_SEMVER1), ['RegistrationsBaseUrl/3.4.0'], {
    comment: 'Base URL of Azure storage where NuGet package registration info is stored in GZIP format. This base URL does not include SemVer 2.0.0 packages.',
  });
  add(hiveBase(ctx, HIVE_GZ_SEMVER2), ['RegistrationsBaseUrl/3.6.0'], {
    comment: 'Base URL of Azure storage where NuGet package registration info is stored in GZIP format. This base URL includes SemVer 2.0.0 packages.',
  });
  add(hiveBase(ctx, HIVE_GZ_SEMVER2), ['RegistrationsBaseUrl/Versioned'], {
    clientVersion: '4.3.0-alpha',
    comment: 'Base URL of Azure storage where NuGet package registration info is stored in GZIP format. This base URL includes SemVer 2.0.0 packages.',
  });
  add(`${o}/api/v2`, ['LegacyGallery/2.0.0']);
  add(`${o}/v3/catalog0/index.json`, ['Catalog/3.0.0'], { comment: 'Index of the NuGet package catalog.' });
  if (ctx.publish) {
    add(`${o}${ctx.publish.path}`, ['PackagePublish/2.0.0']);
    if (ctx.publish.symbolsPath !== undefined) {
      add(`${o}${ctx.publish.symbolsPath}`, ['SymbolPackagePublish/4.9.0'], { comment: 'The gallery symbol publish endpoint.' });
    }
  }
  if (ctx.vulnerabilities) {
    add(`${o}/v3/vulnerabilities/index.json`, ['VulnerabilityInfo/6.7.0'], {
      comment: 'The endpoint for discovering information about vulnerabilities of packages in this package source.',
    });
  }
  return {
    version: '3.0.0',
    resources,
    '@context': { '@vocab': 'http://schema.nuget.org/services#', comment: 'http://www.w3.org/2000/01/rdf-schema#comment' },
  };
}

/** `/v3-flatcontainer/...`: case-sensitive like nuget.org's blob storage (only lowercase paths exist). */
export function serveFlat(ctx: FullFeedContext, rest: string): Resp {
  const parts = rest.split('/');
  const lowerId = parts[0] ?? '';
  const entries = ctx.store.versions(lowerId);
  if (entries.length === 0) return notFound();
  if (parts.length === 2 && parts[1] === 'index.json') {
    return jsonResp(
      { versions: entries.map((e) => e.lowerVersion) },
      { lastModified: Math.max(...entries.map((e) => e.modified)) },
    );
  }
  if (parts.length !== 3) return notFound();
  const e = ctx.store.get(lowerId, parts[1]!);
  if (!e) return notFound();
  if (parts[2] === `${e.lowerId}.${e.lowerVersion}.nupkg`) {
    return bytesResp(e.bytes, 'application/octet-stream', e.modified, {
      etag: `"${e.sha256Hex.slice(0, 32)}"`,
      'x-ms-meta-sha512': e.sha512Base64,
    });
  }
  if (parts[2] === `${e.lowerId}.nuspec`) return bytesResp(Buffer.from(e.info.xml), 'text/xml', e.modified);
  return notFound();
}

interface SearchFilter {
  prerelease: boolean;
  semVer2: boolean;
}

function filterOf(q: URLSearchParams): SearchFilter {
  const level = parseVersion(q.get('semVerLevel') ?? '');
  return { prerelease: q.get('prerelease')?.toLowerCase() === 'true', semVer2: level !== undefined && level.major >= 2 };
}

function visibleVersions(ctx: FullFeedContext, lowerId: string, f: SearchFilter): PackageEntry[] {
  return ctx.store
    .versions(lowerId)
    .filter((e) => e.listed && (f.prerelease || !isPrerelease(e.parsed)) && (f.semVer2 || !e.semVer2));
}

function intParam(q: URLSearchParams, name: string, dflt: number): number {
  const n = Number.parseInt(q.get(name) ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : dflt;
}

/** Matching ids (lowercase) with their visible versions, sorted by id. */
function matches(ctx: FullFeedContext, q: URLSearchParams, f: SearchFilter): [string, PackageEntry[]][] {
  const term = (q.get('q') ?? '').trim().toLowerCase();
  const packageType = (q.get('packageType') ?? '').trim().toLowerCase();
  if (packageType !== '' && packageType !== 'dependency') return [];
  const out: [string, PackageEntry[]][] = [];
  for (const id of ctx.store.ids()) {
    if (term !== '' && !id.includes(term)) continue;
    const versions = visibleVersions(ctx, id, f);
    if (versions.length > 0) out.push([id, versions]);
  }
  return out;
}

export function serveSearch(ctx: FullFeedContext, q: URLSearchParams): Resp {
  const f = filterOf(q);
  const hive = f.semVer2 ? HIVE_GZ_SEMVER2 : HIVE_SEMVER1;
  const all = matches(ctx, q, f);
  const skip = intParam(q, 'skip', 0);
  const take = intParam(q, 'take', 20);
  const data = all.slice(skip, skip + take).map(([lowerId, versions]) => {
    const latest = versions.reduce((a, b) => (compareVersions(b.parsed, a.parsed) > 0 ? b : a));
    const reg = indexUrl(ctx, hive, lowerId);
    return {
      '@id': reg,
      '@type': 'Package',
      registration: reg,
      id: latest.id,
      version: latest.fullVersion,
      description: latest.info.description ?? '',
      summary: '',
      title: latest.id,
      iconUrl: '',
      licenseUrl: '',
      projectUrl: '',
      tags: [],
      authors: (latest.info.authors ?? '').split(',').map((a) => a.trim()).filter((a) => a !== ''),
      owners: [],
      totalDownloads: versions.length * 1000,
      verified: false,
      packageTypes: [{ name: 'Dependency' }],
      versions: versions.map((e) => ({ version: e.fullVersion, downloads: 1000, '@id': leafUrl(ctx, hive, e) })),
      vulnerabilities: [],
    };
  });
  return jsonResp(
    { '@context': { '@vocab': 'http://schema.nuget.org/schema#', '@base': hiveBase(ctx, hive) }, totalHits: all.length, data },
    { lastModified: ctx.store.storeModified, contentType: 'application/json; charset=utf-8' },
  );
}

export function serveAutocomplete(ctx: FullFeedContext, q: URLSearchParams): Resp {
  const f = filterOf(q);
  const opts = { lastModified: ctx.store.storeModified, contentType: 'application/json; charset=utf-8' };
  const context = { '@vocab': 'http://schema.nuget.org/schema#' };
  const id = q.get('id');
  if (id !== null && !q.has('q')) {
    const versions = visibleVersions(ctx, toLowerId(id.trim()), f).map((e) => e.fullVersion);
    return jsonResp({ '@context': context, totalHits: versions.length, data: versions }, opts);
  }
  const all = matches(ctx, q, f);
  const skip = intParam(q, 'skip', 0);
  const take = intParam(q, 'take', 20);
  const data = all.slice(skip, skip + take).map(([, versions]) => versions[versions.length - 1]!.id);
  return jsonResp({ '@context': context, totalHits: all.length, data }, opts);
}

export function serveVulnerabilities(ctx: FullFeedContext, path: string): Resp {
  if (!ctx.vulnerabilities) return notFound();
  const lastModified = ctx.store.created;
  if (path === '/v3/vulnerabilities/index.json') {
    return jsonResp(
      [{ '@name': 'base', '@id': `${ctx.origin}/v3/vulnerabilities/base.json`, '@updated': '2024-01-01T00:00:00Z' }],
      { lastModified },
    );
  }
  if (path === '/v3/vulnerabilities/base.json') return jsonResp(ctx.vulnerabilities, { lastModified });
  return notFound();
}

/** Routes a GET/HEAD path (decoded pathname) to a document. */
export function route(ctx: FullFeedContext, pathname: string, query: URLSearchParams): Resp {
  if (pathname === '/v3/index.json') return jsonResp(serviceIndex(ctx), { lastModified: ctx.store.created });
  if (pathname.startsWith('/v3-flatcontainer/')) return serveFlat(ctx, pathname.slice('/v3-flatcontainer/'.length));
  for (const hive of HIVES) {
    if (pathname.startsWith(hive.path)) return serveRegistration(ctx, hive, pathname.slice(hive.path.length));
  }
  if (pathname === '/query' && ctx.search) return serveSearch(ctx, query);
  if (pathname === '/autocomplete' && ctx.search) return serveAutocomplete(ctx, query);
  if (pathname.startsWith('/v3/vulnerabilities/')) return serveVulnerabilities(ctx, pathname);
  return notFound();
}
