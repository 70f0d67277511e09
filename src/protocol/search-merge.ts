// (Over 300 lines: the paging rules below and the code that keeps them belong in one place; the comment is
// their specification.)
// Merging search and autocomplete answers from several upstreams into one (protocol reference §4.3, Appendix B).
//
// Inputs are answers already rewritten to proxy URLs (search.ts), one per upstream, in priority order. The rules
// below make paging exact and deterministic:
//
// * Query. Every upstream is asked for skip=0&take=<window>, the smallest of 50, 100, 200, 400, 1000 that covers
//   skip+take (upstreamSearchQuery, searchWindowFor); every other parameter is forwarded byte-for-byte. Pages in
//   one window share the upstreams' (cached) answers. The merged list is then cut to [skip, skip+take); when the
//   window gave too few merged ids while an upstream had more, the next window is asked (mergeSearchWindow).
// * Filter. A hit whose id is not a valid package id, or that the id rules do not allow from that upstream
//   (`allowed(lowerId, upstream)`), is dropped: an id owned by another upstream never appears from a public one.
// * Order. Round-robin by ORIGINAL rank across upstreams in priority order (u1[0], u2[0], u3[0], u1[1], ...),
//   dropped hits leaving holes; an id (case-insensitive) stays at its EARLIEST position only. The merged list of a
//   window is then an exact prefix of the merged list of any larger window, so paging with skip/take returns
//   every id exactly once, in the same order as one big page.
//   (Limit: an upstream answers at most 1000 hits, so a window ending beyond the 1000th merged position is exact
//   only while the upstreams' top 1000 suffice; past that it is best effort, like nuget.org's own deep paging.)
// * Entry. For an id found in several upstreams, every metadata field (id spelling, description, title, iconUrl,
//   authors, owners, tags, verified, packageTypes, deprecation, vulnerabilities, @id, registration, ...) comes from
//   the highest-priority upstream that returned it. `versions` is the union over those upstreams, deduped by NuGet
//   version equality (for a duplicate the higher-priority entry wins, its `downloads` summed with the others'),
//   sorted ascending by NuGet precedence; entries whose version does not parse are dropped. `version` is the
//   highest version among the union and the upstreams' own `version` values, spelled as an upstream's `version`
//   field when one equals it (keeps +metadata), else as in the union. `totalDownloads` is the SUM over the
//   upstreams: downloads counted on different feeds are different downloads. Only ids inside the fetched windows
//   are merged: an id beyond an upstream's window contributes nothing from that upstream.
// * totalHits. Sum of the upstreams' totalHits (a missing/invalid one counts as its data length), minus the hits
//   dropped by the filter and the duplicate ids seen in the fetched windows, never below the merged ids seen.
// * Document. { @context (from the first answer that has one), totalHits, data: merged.slice(skip, skip+take) }.
//
// Autocomplete ids follow the same order, filter, totalHits and slice rules on the `data` string arrays (spelling
// from the highest-priority upstream). Autocomplete versions (the `id=` form) are a union: deduped by NuGet version
// equality, sorted ascending by precedence, first-seen spelling kept.

import { isValidPackageId } from './id.js';
import { compareVersions, normalizeVersion, parseVersion, versionsEqual, type NuGetVersion } from './version.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface UpstreamSearch {
  upstream: string;
  /** nuget.org-shaped: {totalHits, data: [{id, version, versions: [{version, downloads, '@id'}], totalDownloads, ...}]} */
  doc: Record<string, unknown>;
}

export interface MergeOptions {
  skip: number;
  take: number;
  allowed: (lowerId: string, upstream: string) => boolean;
}

// nuget.org's documented limits (DOCS: skip <= 3000, take <= 1000) and the gallery's defaults.
export const DEFAULT_SKIP = 0;
export const DEFAULT_TAKE = 20;
export const MAX_SKIP = 3000;
export const MAX_TAKE = 1000;

// ---------------------------------------------------------------------------------------------------------------
// Query strings

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

interface RawQuery {
  lead: string; // '?' when the input had one
  parts: string[]; // raw 'name=value' pieces, as written
}

function splitQuery(rawQuery: string): RawQuery {
  const lead = rawQuery.startsWith('?') ? '?' : '';
  const body = rawQuery.slice(lead.length);
  return { lead, parts: body === '' ? [] : body.split('&') };
}

/** Parameter name of a raw piece, decoded and lowercased (ASP.NET binds query parameters case-insensitively). */
function nameOf(part: string): string {
  const eq = part.indexOf('=');
  return decodeComponent(eq < 0 ? part : part.slice(0, eq)).toLowerCase();
}

function valueOf(part: string): string {
  const eq = part.indexOf('=');
  return eq < 0 ? '' : decodeComponent(part.slice(eq + 1));
}

/** First value of a parameter (decoded), undefined when absent. */
function param(q: RawQuery, name: string): string | undefined {
  const part = q.parts.find((p) => nameOf(p) === name);
  return part === undefined ? undefined : valueOf(part);
}

/** A non-negative integer parameter; absent or invalid (not digits, negative) -> def; above max -> max. */
function count(value: string | undefined, def: number, max: number): number {
  if (value === undefined) return def;
  const t = value.trim();
  if (!/^\d+$/.test(t)) return def;
  return Math.min(Number(t), max);
}

function pagedQuery(rawQuery: string, window?: number): { rawQuery: string; skip: number; take: number } {
  const q = splitQuery(rawQuery);
  const skip = count(param(q, 'skip'), DEFAULT_SKIP, MAX_SKIP);
  const take = count(param(q, 'take'), DEFAULT_TAKE, MAX_TAKE);
  const upstreamTake = Math.min(window ?? skip + take, MAX_TAKE);
  // Replace the first skip/take in place, drop repeats, append what is missing; everything else stays as written.
  const out: string[] = [];
  let sawSkip = false;
  let sawTake = false;
  for (const part of q.parts) {
    const name = nameOf(part);
    if (name === 'skip') {
      if (!sawSkip) out.push('skip=0');
      sawSkip = true;
    } else if (name === 'take') {
      if (!sawTake) out.push(`take=${upstreamTake}`);
      sawTake = true;
    } else {
      out.push(part);
    }
  }
  if (!sawSkip) out.push('skip=0');
  if (!sawTake) out.push(`take=${upstreamTake}`);
  return { rawQuery: q.lead + out.join('&'), skip, take };
}

/**
 * Query sent to each upstream so that the merged window [skip, skip+take) is exact: skip=0,
 * take=min(skip+take, 1000); every other parameter kept byte-for-byte (the raw query string, not re-encoded; a
 * leading '?' is kept). Returns the new raw query and the parsed skip/take: defaults 0/20, invalid values (not
 * a non-negative integer) -> defaults, take capped at 1000 and skip at 3000 (nuget.org's documented limits; the
 * gallery itself answers take > 1000 with 20). Parameter names match case-insensitively, like ASP.NET's binding.
 */
export function upstreamSearchQuery(rawQuery: string, window?: number): { rawQuery: string; skip: number; take: number } {
  return pagedQuery(rawQuery, window);
}

/**
 * How many hits to ask each upstream for: a few fixed window sizes, so that the pages a client walks through
 * share the same upstream answers (cached), and so the merged entries of one id agree from page to page.
 */
export const SEARCH_WINDOWS = [50, 100, 200, 400, MAX_TAKE] as const;

export function searchWindowFor(skip: number, take: number): number {
  return SEARCH_WINDOWS.find((w) => w >= skip + take) ?? MAX_TAKE;
}

/**
 * Whether an autocomplete query asks for the versions of one id: nuget.org's rule is "id given and q absent"
 * (ASP.NET binds an empty value as absent).
 */
export function isAutocompleteVersionsQuery(rawQuery: string): boolean {
  const q = splitQuery(rawQuery);
  return (param(q, 'id') ?? '') !== '' && (param(q, 'q') ?? '') === '';
}

/** Like upstreamSearchQuery for autocomplete ids; a versions query (`id=`, no `q`) is returned unchanged. */
export function upstreamAutocompleteQuery(rawQuery: string, window?: number): { rawQuery: string; skip: number; take: number } {
  const paged = pagedQuery(rawQuery, window);
  return isAutocompleteVersionsQuery(rawQuery) ? { ...paged, rawQuery } : paged;
}

// ---------------------------------------------------------------------------------------------------------------
// Round-robin merge

interface Item<T> {
  lowerId: string;
  upstream: number; // index into the answers
  value: T;
}

interface Merged<T> {
  /** Ids in merged order; each with its contributions in priority order. */
  entries: Item<T>[][];
  totalHits: number;
  /** How many hits each upstream returned. */
  lengths: number[];
}

/**
 * Whether a merged window answers [skip, skip+take) exactly: the window yielded enough merged ids, or no upstream
 * has more to give (each returned fewer hits than it was asked for). Otherwise ask again with a larger window.
 */
function windowComplete(merged: Merged<unknown>, to: number, window: number | undefined): boolean {
  return window === undefined || merged.entries.length >= to || merged.lengths.every((n) => n < window);
}

function totalHitsOf(doc: Json, dataLength: number): number {
  const t = doc.totalHits;
  return typeof t === 'number' && Number.isFinite(t) && t >= 0 ? Math.floor(t) : dataLength;
}

function roundRobin<T>(
  answers: readonly { upstream: string; doc: Json }[],
  idOf: (x: unknown) => { id: string; value: T } | undefined,
  allowed: (lowerId: string, upstream: string) => boolean,
): Merged<T> {
  let sum = 0;
  let removed = 0; // filtered hits plus repeated ids
  // Each list keeps every hit at its ORIGINAL rank, with a hole where a hit was dropped: a dropped hit must not
  // move the hits after it into an earlier round, or the merged order would depend on the window fetched.
  const lists: (Item<T> | undefined)[][] = answers.map((a, u) => {
    const data = Array.isArray(a.doc?.data) ? (a.doc.data as unknown[]) : [];
    sum += totalHitsOf(a.doc ?? {}, data.length);
    return data.map((x) => {
      const got = idOf(x);
      const lowerId = got && isValidPackageId(got.id) ? got.id.toLowerCase() : undefined;
      if (!got || lowerId === undefined || !allowed(lowerId, a.upstream)) {
        removed++;
        return undefined;
      }
      return { lowerId, upstream: u, value: got.value };
    });
  });

  const byId = new Map<string, Item<T>[]>();
  const entries: Item<T>[][] = [];
  const rounds = Math.max(0, ...lists.map((l) => l.length));
  for (let r = 0; r < rounds; r++) {
    for (const list of lists) {
      const item = list[r];
      if (!item) continue;
      const existing = byId.get(item.lowerId);
      if (existing) {
        removed++;
        // A repeat inside one upstream's answer adds nothing; one from another upstream is merged in.
        if (!existing.some((e) => e.upstream === item.upstream)) existing.push(item);
      } else {
        const entry = [item];
        byId.set(item.lowerId, entry);
        entries.push(entry);
      }
    }
  }
  for (const e of entries) e.sort((a, b) => a.upstream - b.upstream);
  return { entries, totalHits: Math.max(sum - removed, entries.length), lengths: lists.map((l) => l.length) };
}

function bounds(skip: number, take: number): [number, number] {
  const s = Number.isFinite(skip) && skip > 0 ? Math.floor(skip) : 0;
  const t = Number.isFinite(take) && take > 0 ? Math.floor(take) : 0;
  return [s, s + t];
}

// ---------------------------------------------------------------------------------------------------------------
// Search

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

interface VersionSlot {
  parsed: NuGetVersion;
  entry: Json;
}

function mergeHits(hits: readonly Json[]): Json {
  const winner = hits[0] as Json;
  const out: Json = { ...winner };

  let union: VersionSlot[] | undefined;
  if (hits.some((h) => Array.isArray(h.versions))) {
    const slots = new Map<string, VersionSlot>();
    for (const h of hits) {
      if (!Array.isArray(h.versions)) continue;
      for (const v of h.versions as unknown[]) {
        if (!isObj(v) || typeof v.version !== 'string') continue;
        const parsed = parseVersion(v.version);
        if (!parsed) continue;
        const key = normalizeVersion(parsed).toLowerCase();
        const slot = slots.get(key);
        if (!slot) {
          slots.set(key, { parsed, entry: { ...v } });
        } else if (finite(v.downloads)) {
          slot.entry.downloads = finite(slot.entry.downloads) ? slot.entry.downloads + v.downloads : v.downloads;
        }
      }
    }
    union = [...slots.values()].sort((a, b) => compareVersions(a.parsed, b.parsed));
    out.versions = union.map((s) => s.entry);
  }

  // version: the highest among the union and the upstreams' own `version` values.
  const own = hits
    .map((h) => (typeof h.version === 'string' ? { s: h.version, v: parseVersion(h.version) } : undefined))
    .filter((x): x is { s: string; v: NuGetVersion } => x !== undefined && x.v !== undefined);
  const candidates = [...own, ...(union ?? []).map((slot) => ({ s: slot.entry.version as string, v: slot.parsed }))];
  const best = candidates.reduce<{ s: string; v: NuGetVersion } | undefined>(
    (acc, c) => (acc === undefined || compareVersions(c.v, acc.v) > 0 ? c : acc),
    undefined,
  );
  if (best) out.version = own.find((o) => versionsEqual(o.v, best.v))?.s ?? best.s;

  const downloads = hits.map((h) => h.totalDownloads).filter(finite);
  if (downloads.length > 0) out.totalDownloads = downloads.reduce((a, b) => a + b, 0);
  return out;
}

/** Merges search answers (see the rules at the top of this file). */
export function mergeSearch(answers: readonly UpstreamSearch[], opts: MergeOptions): Record<string, unknown> {
  return mergeSearchWindow(answers, opts).doc;
}

/** mergeSearch, plus whether the upstreams' answers (asked for `window` hits each) were enough for the page. */
export function mergeSearchWindow(answers: readonly UpstreamSearch[], opts: MergeOptions & { window?: number }): { doc: Record<string, unknown>; complete: boolean } {
  const merged = roundRobin<Json>(
    answers,
    (x) => (isObj(x) && typeof x.id === 'string' ? { id: x.id, value: x } : undefined),
    opts.allowed,
  );
  const [from, to] = bounds(opts.skip, opts.take);
  const data = merged.entries.slice(from, to).map((entry) => mergeHits(entry.map((e) => e.value)));
  const context = answers.find((a) => a.doc && a.doc['@context'] !== undefined)?.doc['@context'];
  return {
    doc: { ...(context !== undefined ? { '@context': context } : {}), totalHits: merged.totalHits, data },
    complete: windowComplete(merged, to, opts.window),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Autocomplete

/** Merges autocomplete-ids answers ({totalHits, data: ["Id", ...]}) like search (see the top of this file). */
export function mergeAutocompleteIds(
  answers: readonly { upstream: string; doc: Record<string, unknown> }[],
  opts: MergeOptions,
): { totalHits: number; data: string[] } {
  return mergeAutocompleteIdsWindow(answers, opts).doc;
}

/** mergeAutocompleteIds, plus whether the window was enough (see mergeSearchWindow). */
export function mergeAutocompleteIdsWindow(
  answers: readonly { upstream: string; doc: Record<string, unknown> }[],
  opts: MergeOptions & { window?: number },
): { doc: { totalHits: number; data: string[] }; complete: boolean } {
  const merged = roundRobin<string>(answers, (x) => (typeof x === 'string' ? { id: x, value: x } : undefined), opts.allowed);
  const [from, to] = bounds(opts.skip, opts.take);
  return {
    doc: { totalHits: merged.totalHits, data: merged.entries.slice(from, to).map((entry) => entry[0]!.value) },
    complete: windowComplete(merged, to, opts.window),
  };
}

/**
 * Merges autocomplete-versions answers ({data: ["1.0.0", ...]}): union, deduped by NuGet version equality, sorted
 * ascending by precedence, first-seen spelling kept (answers in priority order); strings that do not parse as a
 * version are dropped.
 */
export function mergeAutocompleteVersions(answers: readonly { upstream: string; doc: Record<string, unknown> }[]): {
  totalHits: number;
  data: string[];
} {
  const seen = new Map<string, { s: string; v: NuGetVersion }>();
  for (const a of answers) {
    const data = Array.isArray(a.doc?.data) ? (a.doc.data as unknown[]) : [];
    for (const s of data) {
      if (typeof s !== 'string') continue;
      const v = parseVersion(s);
      if (!v) continue;
      const key = normalizeVersion(v).toLowerCase();
      if (!seen.has(key)) seen.set(key, { s, v });
    }
  }
  const data = [...seen.values()].sort((a, b) => compareVersions(a.v, b.v)).map((x) => x.s);
  return { totalHits: data.length, data };
}
