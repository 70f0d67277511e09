// The advisories an upstream's VulnerabilityInfo pages (§6.3) name for one id, for the policy's `vulnerable` rule
// (issue #16): beside the registration's catalogEntry.vulnerabilities, the data NuGetAudit reads. A page can hold
// every advisory of a feed (megabytes), so each is indexed by id once per stored version and kept (a few pages).
import { LRUCache } from 'lru-cache';
import type { Severity } from '../policy/decision.js';
import { parseRange, satisfies, type VersionRange } from '../protocol/range.js';
import { parseVersion } from '../protocol/version.js';
import type { Upstream } from './upstream.js';

type Json = Record<string, unknown>;

export interface RangedAdvisory {
  severity: Severity;
  advisoryUrl?: string;
  range: VersionRange;
}

/** Pages indexed at once (nuget.org has a base page and a few update pages). */
const KEPT_PAGES = 16;

export class VulnerabilityFacts {
  private readonly pages = new LRUCache<string, Map<string, RangedAdvisory[]>>({ max: KEPT_PAGES });

  /**
   * Every advisory `upstream`'s pages list for the id (none when it has no VulnerabilityInfo). A page that cannot
   * be read is left out (the registration's advisories still count); `onError` says so.
   */
  async of(upstream: Upstream, lowerId: string, onError: (err: unknown) => void): Promise<RangedAdvisory[]> {
    let index;
    try {
      index = await upstream.vulnerabilityIndex();
    } catch (err) {
      onError(err);
      return [];
    }
    if (index.kind !== 'ok') return [];
    const out: RangedAdvisory[] = [];
    for (const e of index.value.entries) {
      try {
        const page = await upstream.vulnerabilityPage(e.url, e.name, e.tag);
        if (page.kind !== 'ok') continue;
        const key = `${upstream.name}\n${e.name}/${e.tag}\n${page.version}`;
        let byId = this.pages.get(key);
        if (!byId) {
          byId = indexPage(page.value);
          this.pages.set(key, byId);
        }
        out.push(...(byId.get(lowerId) ?? []));
      } catch (err) {
        onError(err);
      }
    }
    return out;
  }
}

/** The advisories of `ranged` that cover a version (normalized, lowercase). */
export function covering(ranged: readonly RangedAdvisory[], lowerVersion: string): { severity: Severity; advisoryUrl?: string }[] {
  if (ranged.length === 0) return [];
  const v = parseVersion(lowerVersion);
  if (!v) return [];
  return ranged.filter((a) => satisfies(a.range, v)).map((a) => ({ severity: a.severity, ...(a.advisoryUrl ? { advisoryUrl: a.advisoryUrl } : {}) }));
}

/** A page `{ "<id>": [{ severity, url, versions }] }` by lowercase id; entries that do not parse are left out. */
function indexPage(page: Json): Map<string, RangedAdvisory[]> {
  const byId = new Map<string, RangedAdvisory[]>();
  for (const [id, list] of Object.entries(page)) {
    if (!Array.isArray(list)) continue;
    const kept: RangedAdvisory[] = [];
    for (const a of list as unknown[]) {
      if (a === null || typeof a !== 'object') continue;
      const o = a as Json;
      const severity = typeof o.severity === 'number' ? o.severity : Number(o.severity);
      const range = typeof o.versions === 'string' ? parseRange(o.versions) : undefined;
      if (!Number.isInteger(severity) || severity < 0 || severity > 3 || !range) continue;
      kept.push({ severity: severity as Severity, range, ...(typeof o.url === 'string' ? { advisoryUrl: o.url } : {}) });
    }
    if (kept.length) byId.set(id.toLowerCase(), [...(byId.get(id.toLowerCase()) ?? []), ...kept]);
  }
  return byId;
}
