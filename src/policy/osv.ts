// Advisories in the OSV format (https://ossf.github.io/osv-schema/), as the OpenSSF malicious-packages repository
// and OSV's data exports publish them: what `nuproxy advisories import` reads. Kept, for NuGet packages: the
// malicious-package entries (ids "MAL-…", for the malicious rule) and other advisories that carry a severity
// (GitHub's database_specific.severity: LOW, MODERATE, HIGH, CRITICAL; for the vulnerable rule, beside the
// upstreams' own data); everything else is counted and left out. Pure: the caller reads the files (bounded by
// MAX_OSV_FILE_BYTES) and hands the text in with its name, so every error names the file.
//
// An advisory is untrusted input: only the fields the rules use are kept (id, modified, summary, severity, an
// advisory URL, and per affected NuGet package its name, versions and ECOSYSTEM/SEMVER ranges), each bounded.
import type { Severity } from './decision.js';
import { NuproxyError } from '../errors.js';
import { isValidPackageId } from '../protocol/id.js';

/** Largest advisory file read (real ones are a few KB; one with thousands of versions is under 1 MB). */
export const MAX_OSV_FILE_BYTES = 8 * 1024 * 1024;
/** Most advisories in one file, one import and the stored set (the NuGet MAL- entries number a few thousand). */
export const MAX_ADVISORIES = 200_000;
/** Most versions or range events one affected package may list. */
const MAX_VERSIONS = 100_000;
const MAX_SUMMARY = 300;
const MAX_AFFECTED = 1000;

export interface OsvEvent {
  introduced?: string;
  fixed?: string;
  last_affected?: string;
}

export interface OsvAffected {
  /** The package id as the advisory writes it. */
  name: string;
  /** Exact versions named (as written). */
  versions: string[];
  /** ECOSYSTEM or SEMVER ranges (GIT ranges cannot be judged against NuGet versions and are left out). */
  ranges: OsvEvent[][];
  /** The advisory listed neither versions nor a usable range: every version is affected. */
  all: boolean;
}

/** A kept advisory: the subset of an OSV entry the rules need. */
export interface Advisory {
  id: string;
  modified: string;
  summary?: string;
  /** Set for a vulnerability advisory (not MAL-): NuGet's numbering, 0 low … 3 critical. Absent: malicious. */
  severity?: Severity;
  /** Where to read about it (the entry's first ADVISORY reference). */
  url?: string;
  affected: OsvAffected[];
}

const SEVERITIES: Record<string, Severity> = { LOW: 0, MODERATE: 1, MEDIUM: 1, HIGH: 2, CRITICAL: 3 };
const SEVERITY_TEXT = ['LOW', 'MODERATE', 'HIGH', 'CRITICAL'] as const;

export interface OsvParse {
  advisories: Advisory[];
  /** Ids of NuGet advisories marked withdrawn (an import removes them from the stored set). */
  withdrawn: string[];
  /** Entries left out, by why: not NuGet; neither MAL- nor with a severity; package names NuGet cannot have. */
  ignored: { otherEcosystem: number; withoutSeverity: number; invalidId: number };
}

export function emptyParse(): OsvParse {
  return { advisories: [], withdrawn: [], ignored: { otherEcosystem: 0, withoutSeverity: 0, invalidId: 0 } };
}

function bad(source: string, message: string): NuproxyError {
  return new NuproxyError('BAD_REQUEST', `${source}: ${message}`, { source });
}

const str = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max;

/**
 * Parses one file's text (one advisory object, or an array of them) and adds what it keeps to `into`. `source`
 * names the file in errors; its base name stands in for an empty id (the malicious-packages repository files new
 * reports as "MAL-0000-…json" with "id": "" until they get a number).
 */
export function parseOsvText(text: string, source: string, into: OsvParse = emptyParse()): OsvParse {
  if (text.length > MAX_OSV_FILE_BYTES) throw bad(source, `larger than ${MAX_OSV_FILE_BYTES} bytes: not an advisory file`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(source, `not JSON (${(err as Error).message})`);
  }
  return parseOsvValue(value, source, into);
}

/** As parseOsvText, for a value already parsed (one advisory object or an array of them). */
export function parseOsvValue(value: unknown, source: string, into: OsvParse = emptyParse()): OsvParse {
  const entries = Array.isArray(value) ? value : [value];
  if (entries.length > MAX_ADVISORIES) throw bad(source, `more than ${MAX_ADVISORIES} advisories`);
  const fileId = /^(MAL-[A-Za-z0-9._-]{1,100})\.json$/i.exec(source.split(/[\\/]/).pop() ?? '')?.[1];
  entries.forEach((entry, i) => addEntry(entry, Array.isArray(value) ? `${source} [${i}]` : source, entries.length === 1 ? fileId : undefined, into));
  return into;
}

/** An advisory as an OSV entry again (what the stored document holds, so reading it back is parseOsvValue). */
export function toOsv(a: Advisory): Record<string, unknown> {
  return {
    id: a.id,
    modified: a.modified,
    ...(a.summary !== undefined ? { summary: a.summary } : {}),
    ...(a.severity !== undefined ? { database_specific: { severity: SEVERITY_TEXT[a.severity] } } : {}),
    ...(a.url !== undefined ? { references: [{ type: 'ADVISORY', url: a.url }] } : {}),
    affected: a.affected.map((p) => ({
      package: { ecosystem: 'NuGet', name: p.name },
      ...(p.versions.length > 0 ? { versions: p.versions } : {}),
      ...(p.ranges.length > 0 ? { ranges: p.ranges.map((events) => ({ type: 'ECOSYSTEM', events })) } : {}),
    })),
  };
}

function addEntry(entry: unknown, source: string, fileId: string | undefined, into: OsvParse): void {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad(source, 'not an OSV advisory (expected an object with "id" and "modified")');
  const e = entry as Record<string, unknown>;
  if (!str(e.id, 200) || !str(e.modified, 64)) throw bad(source, 'not an OSV advisory (expected an object with "id" and "modified")');
  if (e.affected !== undefined && !Array.isArray(e.affected)) throw bad(source, '"affected" is not an array');
  const id = e.id !== '' ? e.id : fileId;
  const affected = ((e.affected as unknown[] | undefined) ?? []).slice(0, MAX_AFFECTED);
  const nuget = affected.filter((a) => ecosystemOf(a) === 'NuGet');
  if (nuget.length === 0) {
    into.ignored.otherEcosystem++;
    return;
  }
  const malicious = id !== undefined && /^MAL-[A-Za-z0-9._-]{1,100}$/.test(id);
  const severity = malicious ? undefined : severityOf(e.database_specific);
  if (id === undefined || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/.test(id) || (!malicious && severity === undefined)) {
    into.ignored.withoutSeverity++;
    return;
  }
  if (e.withdrawn !== undefined && e.withdrawn !== null) {
    into.withdrawn.push(id);
    return;
  }
  const kept: OsvAffected[] = [];
  for (const a of nuget) {
    const parsed = parseAffected(a as Record<string, unknown>, source);
    if (!parsed) into.ignored.invalidId++;
    // "every version" is what a malicious package gets; a vulnerability names the versions it affects
    else if (malicious || !parsed.all) kept.push(parsed);
  }
  if (kept.length === 0) return;
  if (into.advisories.length >= MAX_ADVISORIES) throw bad(source, `more than ${MAX_ADVISORIES} advisories in one import`);
  const summary = typeof e.summary === 'string' && e.summary !== '' ? e.summary.slice(0, MAX_SUMMARY) : undefined;
  const url = advisoryUrl(e.references);
  into.advisories.push({
    id,
    modified: e.modified,
    ...(summary !== undefined ? { summary } : {}),
    ...(severity !== undefined ? { severity } : {}),
    ...(url !== undefined ? { url } : {}),
    affected: kept,
  });
}

function severityOf(db: unknown): Severity | undefined {
  const s = typeof db === 'object' && db !== null ? (db as { severity?: unknown }).severity : undefined;
  return typeof s === 'string' ? SEVERITIES[s.toUpperCase()] : undefined;
}

function advisoryUrl(refs: unknown): string | undefined {
  if (!Array.isArray(refs)) return undefined;
  for (const r of refs.slice(0, 100)) {
    const ref = r as { type?: unknown; url?: unknown } | null;
    if (ref && ref.type === 'ADVISORY' && str(ref.url, 300) && /^https?:\/\//i.test(ref.url)) return ref.url;
  }
  return undefined;
}

function ecosystemOf(a: unknown): string | undefined {
  if (typeof a !== 'object' || a === null) return undefined;
  const pkg = (a as { package?: unknown }).package;
  if (typeof pkg !== 'object' || pkg === null) return undefined;
  const eco = (pkg as { ecosystem?: unknown }).ecosystem;
  return typeof eco === 'string' ? eco : undefined;
}

/** The NuGet package of one `affected` entry; undefined when its name cannot be a NuGet id (e.g. homoglyphs). */
function parseAffected(a: Record<string, unknown>, source: string): OsvAffected | undefined {
  const name = (a.package as { name?: unknown }).name;
  if (!str(name, 200) || !isValidPackageId(name)) return undefined;
  const versions = a.versions === undefined ? [] : a.versions;
  if (!Array.isArray(versions) || versions.length > MAX_VERSIONS || !versions.every((v) => str(v, 256))) {
    throw bad(source, `"versions" of ${name} must be at most ${MAX_VERSIONS} strings`);
  }
  const ranges: OsvEvent[][] = [];
  if (a.ranges !== undefined) {
    if (!Array.isArray(a.ranges) || a.ranges.length > MAX_AFFECTED) throw bad(source, `"ranges" of ${name} is not an array of ranges`);
    for (const r of a.ranges as unknown[]) {
      const range = r as { type?: unknown; events?: unknown };
      if (typeof r !== 'object' || r === null || !Array.isArray(range.events) || range.events.length > MAX_VERSIONS) {
        throw bad(source, `a range of ${name} has no "events" array`);
      }
      if (range.type !== 'ECOSYSTEM' && range.type !== 'SEMVER') continue;
      ranges.push(range.events.map((ev) => event(ev, name, source)).filter((ev) => ev !== undefined));
    }
  }
  // MAL- entries usually list versions, or one range "introduced 0": every version. No usable data at all (only
  // GIT ranges, or nothing) means the same: a malicious package is not trusted in any version.
  const all = versions.length === 0 && ranges.length === 0;
  return { name, versions: versions as string[], ranges, all };
}

function event(ev: unknown, name: string, source: string): OsvEvent | undefined {
  if (typeof ev !== 'object' || ev === null) throw bad(source, `a range event of ${name} is not an object`);
  const e = ev as Record<string, unknown>;
  for (const k of ['introduced', 'fixed', 'last_affected'] as const) if (e[k] !== undefined && !str(e[k], 256)) throw bad(source, `a range event of ${name}: "${k}" is not a version string`);
  if (typeof e.introduced === 'string') return { introduced: e.introduced };
  if (typeof e.fixed === 'string') return { fixed: e.fixed };
  if (typeof e.last_affected === 'string') return { last_affected: e.last_affected };
  return undefined; // "limit" (GIT only) and unknown kinds
}
