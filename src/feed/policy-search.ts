// The supply-chain policy (issue #16) on search and autocomplete answers: after the merge has cut the page, each
// hit keeps only the versions the policy allows (decided by the upstream that wins each version in the id's merged
// list, like the flat container), its `version` becomes the newest of those, and a hit with none left is dropped;
// so is an autocomplete id with none, and autocomplete versions lose the blocked ones.
// Paging is exact over the upstreams' hits, best effort over the filtered ones: a page can come out shorter than
// `take` (the hits it dropped are not replaced from the next page) and totalHits counts out only the drops seen.
import { createHash } from 'node:crypto';
import { lowerNormalizedVersion } from '../protocol/version.js';
import type { PolicyGate, WinnerOf } from './policy-gate.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A filtered document and a token naming the decisions behind it (part of the answer's version). */
export interface Filtered {
  doc: Json;
  fingerprint: string;
}

async function mergedSafely(merged: WinnerOf, lowerId: string): Promise<Awaited<ReturnType<WinnerOf>>> {
  try {
    return await merged(lowerId);
  } catch {
    return undefined; // the upstreams cannot say who wins: decided by the first allowed upstream (policy-gate.ts)
  }
}

async function winnersSafely(merged: WinnerOf, lowerId: string): Promise<Record<string, string> | undefined> {
  return (await mergedSafely(merged, lowerId))?.winners;
}

/** A search page (`{totalHits, data: [hit]}`) with every hit filtered as above. */
export async function filterSearchPage(gate: PolicyGate, doc: Json, winners: WinnerOf): Promise<Filtered> {
  const data = Array.isArray(doc.data) ? (doc.data as unknown[]) : [];
  const prints: string[] = [];
  const hits = await Promise.all(
    data.map(async (hit): Promise<Json | undefined> => {
      if (!isObj(hit) || typeof hit.id !== 'string') return isObj(hit) ? hit : undefined;
      const lowerId = hit.id.toLowerCase();
      const entries = Array.isArray(hit.versions) ? (hit.versions as unknown[]).filter(isObj) : undefined;
      const lowerOf = (s: unknown): string | undefined => (typeof s === 'string' ? lowerNormalizedVersion(s) : undefined);
      const listed = entries ? entries.map((e) => lowerOf(e.version)).filter((v) => v !== undefined) : [];
      const own = lowerOf(hit.version);
      const all = own && !listed.includes(own) ? [...listed, own] : listed;
      const d = await gate.decideAll(lowerId, all, await winnersSafely(winners, lowerId), 'search');
      prints.push(`${lowerId}=${d.fingerprint}`);
      if (d.blocked.size === 0) return hit;
      if (!entries) return own && d.allows(own) ? hit : undefined;
      const kept = entries.filter((e) => {
        const v = lowerOf(e.version);
        return v !== undefined && d.allows(v);
      });
      if (kept.length === 0) return undefined;
      // the versions come sorted ascending (search-merge.ts): the last one kept is the newest allowed
      const keepOwn = own !== undefined && d.allows(own) && kept.some((e) => lowerOf(e.version) === own);
      return { ...hit, versions: kept, version: keepOwn ? hit.version : kept[kept.length - 1]!.version };
    }),
  );
  const kept = hits.filter((h) => h !== undefined);
  const dropped = data.length - kept.length;
  const totalHits = typeof doc.totalHits === 'number' ? Math.max(kept.length, doc.totalHits - dropped) : doc.totalHits;
  return { doc: { ...doc, totalHits, data: kept }, fingerprint: digest(prints) };
}

/** Autocomplete versions of one id (`{totalHits, data: ["1.0.0", ...]}`) without the blocked ones. */
export async function filterAutocompleteVersions(gate: PolicyGate, lowerId: string, doc: Json, winners: WinnerOf): Promise<Filtered> {
  const data = Array.isArray(doc.data) ? (doc.data as unknown[]).filter((s): s is string => typeof s === 'string') : [];
  const lower = data.map((s) => lowerNormalizedVersion(s));
  const d = await gate.decideAll(lowerId, lower.filter((v) => v !== undefined), await winnersSafely(winners, lowerId), 'autocomplete');
  if (d.blocked.size === 0) return { doc, fingerprint: d.fingerprint };
  const kept = data.filter((_, i) => lower[i] === undefined || d.allows(lower[i]!));
  return { doc: { ...doc, totalHits: kept.length, data: kept }, fingerprint: d.fingerprint };
}

/**
 * Autocomplete of ids (`{totalHits, data: ["Id", ...]}`) without the ids whose every version the policy blocks
 * (as their version lists answer: absent). An id whose list cannot be had stays (its versions say no more).
 */
export async function filterAutocompleteIds(gate: PolicyGate, doc: Json, merged: WinnerOf): Promise<Filtered> {
  const data = Array.isArray(doc.data) ? (doc.data as unknown[]) : [];
  const prints: string[] = [];
  const keep = await Promise.all(
    data.map(async (id) => {
      if (typeof id !== 'string') return true;
      const lowerId = id.toLowerCase();
      const m = await mergedSafely(merged, lowerId);
      if (!m || m.versions.length === 0) return true;
      const d = await gate.decideAll(lowerId, m.versions, m.winners, 'autocomplete');
      prints.push(`${lowerId}=${d.fingerprint}`);
      return d.blocked.size < m.versions.length;
    }),
  );
  const kept = data.filter((_, i) => keep[i]);
  if (kept.length === data.length) return { doc, fingerprint: digest(prints) };
  const totalHits = typeof doc.totalHits === 'number' ? Math.max(kept.length, doc.totalHits - (data.length - kept.length)) : doc.totalHits;
  return { doc: { ...doc, totalHits, data: kept }, fingerprint: digest(prints) };
}

function digest(parts: readonly string[]): string {
  return `policy:${createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 16)}`;
}
