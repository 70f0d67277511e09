// Which upstreams may serve a package id: per-upstream include/exclude filters and id ownership, the proxy's
// defence against dependency confusion (a public feed publishing an id that belongs to a private one).
//
// Patterns (case-insensitive):
//   "Newtonsoft.Json"  exactly that id (must itself be a valid package id, §7.6)
//   "Contoso.*"        every id starting with "contoso." ("Contoso*" also matches "ContosoLib")
//   "*"                every id
// A "*" is allowed only as the last character, once.
//
// Rules for one id:
//   1. If some upstream's `owns` matches the id, that upstream alone may serve it; its own include/exclude do not
//      apply (owning implies serving). The config rejects owned patterns on two upstreams that could match a common
//      id; if such a config reaches the router anyway, the first owner in priority order wins.
//   2. Otherwise an upstream may serve the id when its `include` list is empty or has a matching pattern, and no
//      `exclude` pattern matches.

import { MAX_ID_LENGTH, isValidPackageId } from './id.js';

export interface UpstreamRules {
  name: string;
  include: readonly string[];
  exclude: readonly string[];
  owns: readonly string[];
}

export interface RuleDecision {
  upstream: string;
  allowed: boolean;
  reason: string;
}

export interface IdRouting {
  lowerId: string;
  owner: string | undefined;
  ownerPattern: string | undefined;
  /** Upstream names allowed to serve the id, in priority order. */
  allowed: readonly string[];
  /** One decision per upstream, in priority order. */
  decisions: readonly RuleDecision[];
}

const PATTERN_CHARS = /^[A-Za-z0-9_.*-]+$/;

/** undefined when `pattern` is a valid id pattern, else what is wrong with it. */
export function patternError(pattern: string): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'empty pattern (use a package id, a prefix ending in "*", or "*")';
  if (pattern.length > MAX_ID_LENGTH + 1) return `pattern too long (${pattern.length} characters, at most ${MAX_ID_LENGTH + 1})`;
  if (!PATTERN_CHARS.test(pattern)) {
    return `invalid pattern ${JSON.stringify(pattern)}: only letters, digits, ".", "_", "-" and a trailing "*" are allowed`;
  }
  const star = pattern.indexOf('*');
  if (star >= 0 && star !== pattern.length - 1) return `invalid pattern ${JSON.stringify(pattern)}: "*" is allowed only once, at the end`;
  if (star < 0 && !isValidPackageId(pattern)) return `invalid pattern ${JSON.stringify(pattern)}: not a valid package id`;
  return undefined;
}

interface Compiled {
  /** The pattern as written, for messages. */
  source: string;
  /** Lowercased, without the trailing '*'. */
  text: string;
  prefix: boolean;
}

function compile(pattern: string): Compiled {
  const prefix = pattern.endsWith('*');
  return { source: pattern, text: (prefix ? pattern.slice(0, -1) : pattern).toLowerCase(), prefix };
}

function matches(p: Compiled, lowerId: string): boolean {
  return p.prefix ? lowerId.startsWith(p.text) : lowerId === p.text;
}

/** Whether `pattern` (any case) matches the (lowercase) id. An invalid pattern matches nothing. */
export function matchesPattern(pattern: string, lowerId: string): boolean {
  if (patternError(pattern) !== undefined) return false;
  return matches(compile(pattern), lowerId);
}

/** Whether some id can match both patterns. */
function overlap(a: Compiled, b: Compiled): boolean {
  if (a.prefix && b.prefix) return a.text.startsWith(b.text) || b.text.startsWith(a.text);
  if (a.prefix) return b.text.startsWith(a.text);
  if (b.prefix) return a.text.startsWith(b.text);
  return a.text === b.text;
}

/**
 * Owned patterns on different upstreams that can match a common id. Each conflict is reported once, at the
 * later upstream's pattern (`upstream` indexes the array, `index` its `owns`), naming both. Invalid patterns are
 * skipped (patternError reports them).
 */
export function ownershipConflicts(upstreams: readonly UpstreamRules[]): { upstream: number; index: number; message: string }[] {
  const out: { upstream: number; index: number; message: string }[] = [];
  const owned = upstreams.map((u) => (u.owns ?? []).map((p) => (patternError(p) === undefined ? compile(p) : undefined)));
  for (let j = 0; j < upstreams.length; j++) {
    (owned[j] ?? []).forEach((pj, k) => {
      if (!pj) return;
      for (let i = 0; i < j; i++) {
        for (const pi of owned[i] ?? []) {
          if (!pi || !overlap(pi, pj)) continue;
          out.push({
            upstream: j,
            index: k,
            message:
              `upstream "${upstreams[j]!.name}" owns ${JSON.stringify(pj.source)}, which overlaps ${JSON.stringify(pi.source)} ` +
              `owned by upstream "${upstreams[i]!.name}": an id can have only one owner`,
          });
        }
      }
    });
  }
  return out;
}

interface CompiledUpstream {
  name: string;
  include: Compiled[];
  exclude: Compiled[];
  owns: Compiled[];
  includeText: string;
}

const MEMO_LIMIT = 10_000;

/** Decides, per id, which upstreams may serve it (see the rules at the top). Array order = priority. */
export class IdRouter {
  private readonly upstreams: CompiledUpstream[];
  private readonly memo = new Map<string, IdRouting>();

  /** `maxMemo`: how many ids' routings are kept (a share of cache.memoryMaxMB, see config/memory-budget.ts). */
  constructor(
    upstreams: readonly UpstreamRules[],
    private readonly maxMemo = MEMO_LIMIT,
  ) {
    const valid = (ps: readonly string[] | undefined) => (ps ?? []).filter((p) => patternError(p) === undefined).map(compile);
    this.upstreams = upstreams.map((u) => ({
      name: u.name,
      include: valid(u.include),
      exclude: valid(u.exclude),
      owns: valid(u.owns),
      includeText: JSON.stringify(u.include ?? []),
    }));
  }

  route(lowerId: string): IdRouting {
    const key = lowerId.toLowerCase();
    const hit = this.memo.get(key);
    if (hit) return hit;
    const routing = this.compute(key);
    if (this.memo.size >= this.maxMemo) {
      // Evict the oldest entry (Map keeps insertion order).
      const oldest = this.memo.keys().next();
      if (!oldest.done) this.memo.delete(oldest.value);
    }
    this.memo.set(key, routing);
    return routing;
  }

  private compute(id: string): IdRouting {
    let owner: CompiledUpstream | undefined;
    let ownerPattern: Compiled | undefined;
    for (const u of this.upstreams) {
      ownerPattern = u.owns.find((p) => matches(p, id));
      if (ownerPattern) {
        owner = u;
        break;
      }
    }

    const decisions: RuleDecision[] = this.upstreams.map((u) => {
      if (owner && ownerPattern) {
        return u === owner
          ? { upstream: u.name, allowed: true, reason: `owns ${JSON.stringify(ownerPattern.source)}` }
          : { upstream: u.name, allowed: false, reason: `owned by ${owner.name} (${JSON.stringify(ownerPattern.source)})` };
      }
      if (u.include.length > 0 && !u.include.some((p) => matches(p, id))) {
        return { upstream: u.name, allowed: false, reason: `not included (include: ${u.includeText})` };
      }
      const ex = u.exclude.find((p) => matches(p, id));
      if (ex) return { upstream: u.name, allowed: false, reason: `excluded by ${JSON.stringify(ex.source)}` };
      return { upstream: u.name, allowed: true, reason: 'allowed' };
    });

    return Object.freeze({
      lowerId: id,
      owner: owner?.name,
      ownerPattern: ownerPattern?.source,
      allowed: Object.freeze(decisions.filter((d) => d.allowed).map((d) => d.upstream)),
      decisions: Object.freeze(decisions.map((d) => Object.freeze(d))),
    });
  }
}
