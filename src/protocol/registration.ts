import { isValidPackageId, lowerId as toLowerId } from './id.js';
import { compareVersions, lowerNormalizedVersion, parseVersion, type NuGetVersion } from './version.js';
import { packageContentUrl, registrationIndexUrl, registrationLeafUrl, registrationPageUrl } from './urls.js';

/**
 * Registration documents rewritten to the proxy (protocol notes §3.7 and Appendix A). Every URL a client may
 * dereference is rebuilt from ids and versions rather than string-replaced, so odd upstream URL shapes
 * (Artifactory's doubled segments, "Download/<id>/<ver>" package URLs) come out in the proxy's one shape.
 * `links` remembers where the upstream keeps the documents behind the rewritten URLs, so the proxy can fetch
 * a page or leaf when a client follows one. Unknown fields are kept as they are.
 */
export interface Rewritten {
  doc: Record<string, unknown>;
  links: Record<string, string>; // "page:<lower>/<upper>" and "leaf:<lowerVersion>" -> upstream URL
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

export function pageKey(lower: string, upper: string): string {
  return `page:${lower}/${upper}`;
}

export function leafKey(lowerVersion: string): string {
  return `leaf:${lowerVersion}`;
}

/**
 * The URLs inside a catalog entry object (§3.5): packageContent (when present) and dependencies[].registration.
 * A dependency whose id the proxy cannot serve loses its (optional) registration URL rather than leak upstream's.
 * catalogEntry.@id and the group/dependency/deprecation @id fragments are catalog URLs and stay (Appendix A).
 */
function rewriteCatalogEntry(entry: Json, hive: string, content: string): Json {
  const ce: Json = { ...entry };
  if ('packageContent' in entry) ce.packageContent = content;
  if (Array.isArray(entry.dependencyGroups)) {
    ce.dependencyGroups = entry.dependencyGroups.map((g: unknown) => {
      if (!isObj(g) || !Array.isArray(g.dependencies)) return g;
      return {
        ...g,
        dependencies: g.dependencies.map((d: unknown) => {
          if (!isObj(d) || !('registration' in d)) return d;
          if (typeof d.id === 'string' && isValidPackageId(d.id)) return { ...d, registration: registrationIndexUrl(hive, toLowerId(d.id)) };
          const rest: Json = { ...d };
          delete rest.registration;
          return rest;
        }),
      };
    });
  }
  return ce;
}

function rewriteLeaf(leaf: Json, hive: string, links: Record<string, string>): Json | undefined {
  const entry = leaf.catalogEntry;
  if (!isObj(entry) || typeof entry.id !== 'string' || typeof entry.version !== 'string') return undefined;
  const lid = isValidPackageId(entry.id) ? toLowerId(entry.id) : undefined;
  const lver = lowerNormalizedVersion(entry.version);
  if (!lid || !lver) return undefined;
  if (typeof leaf['@id'] === 'string') links[leafKey(lver)] = leaf['@id'];
  const content = packageContentUrl(lid, lver);
  const out: Json = { ...leaf, '@id': registrationLeafUrl(hive, lid, lver), packageContent: content };
  out.registration = registrationIndexUrl(hive, lid);
  out.catalogEntry = rewriteCatalogEntry(entry, hive, content);
  return out;
}

function bounds(page: Json): { lower: string; upper: string } | undefined {
  if (typeof page.lower !== 'string' || typeof page.upper !== 'string') return undefined;
  const lower = lowerNormalizedVersion(page.lower);
  const upper = lowerNormalizedVersion(page.upper);
  return lower && upper ? { lower, upper } : undefined;
}

function rewriteLeaves(items: unknown[], hive: string, links: Record<string, string>): Json[] {
  const out: Json[] = [];
  for (const item of items) {
    const leaf = isObj(item) ? rewriteLeaf(item, hive, links) : undefined;
    if (leaf) out.push(leaf);
  }
  return out;
}

/** A registration index. Pages whose bounds do not parse are dropped (the client could not use them either). */
export function rewriteRegistrationIndex(doc: Json, lowerId: string, hive: string): Rewritten {
  const links: Record<string, string> = {};
  const indexUrl = registrationIndexUrl(hive, lowerId);
  const pages: Json[] = [];
  for (const page of Array.isArray(doc.items) ? doc.items : []) {
    if (!isObj(page)) continue;
    const b = bounds(page);
    if (!b) continue;
    if (Array.isArray(page.items)) {
      // inlined: no upstream page document to remember (its @id is only a fragment of the index URL)
      const items = rewriteLeaves(page.items, hive, links);
      if (items.length === 0) continue; // nothing left the client could use (pitfall 13: drop empty pages)
      pages.push({ ...page, '@id': `${indexUrl}#page/${b.lower}/${b.upper}`, parent: indexUrl, items, count: items.length });
    } else {
      if (typeof page['@id'] === 'string') links[pageKey(b.lower, b.upper)] = page['@id'];
      const out: Json = { ...page, '@id': registrationPageUrl(hive, lowerId, b.lower, b.upper) };
      if ('parent' in page) out.parent = indexUrl;
      pages.push(out);
    }
  }
  return { doc: { ...doc, '@id': indexUrl, count: pages.length, items: pages }, links };
}

/** A separately fetched registration page. */
export function rewriteRegistrationPage(doc: Json, lowerId: string, hive: string, lower: string, upper: string): Rewritten {
  const links: Record<string, string> = {};
  const items = rewriteLeaves(Array.isArray(doc.items) ? doc.items : [], hive, links);
  return {
    doc: { ...doc, '@id': registrationPageUrl(hive, lowerId, lower, upper), parent: registrationIndexUrl(hive, lowerId), items, count: items.length },
    links,
  };
}

/** A registration leaf document (§3.6): catalogEntry is a catalog URL string there and is left alone. */
export function rewriteRegistrationLeaf(doc: Json, lowerId: string, lowerVersion: string, hive: string): Rewritten {
  const content = packageContentUrl(lowerId, lowerVersion);
  const out: Json = { ...doc, '@id': registrationLeafUrl(hive, lowerId, lowerVersion) };
  if ('registration' in doc) out.registration = registrationIndexUrl(hive, lowerId);
  if ('packageContent' in doc) out.packageContent = content;
  // Some servers also embed the catalog entry as an object (Sleet: "sleet:catalogEntry"); its packageContent and
  // dependency registrations are download/metadata URLs like any other.
  for (const key of ['catalogEntry', 'sleet:catalogEntry']) {
    const entry = doc[key];
    if (isObj(entry)) out[key] = rewriteCatalogEntry(entry, hive, content);
  }
  return { doc: out, links: {} };
}

/** The page (by its bounds) whose range holds `version`, from a rewritten index's links. */
export function findPageFor(links: Record<string, string>, version: NuGetVersion): string | undefined {
  for (const key of Object.keys(links)) {
    if (!key.startsWith('page:')) continue;
    const [lo, up] = key.slice(5).split('/');
    const lv = parseVersion(lo ?? '');
    const uv = parseVersion(up ?? '');
    if (lv && uv && compareVersions(lv, version) <= 0 && compareVersions(version, uv) <= 0) return key;
  }
  return undefined;
}
