// An id scope: which package ids one access token may see (issue #15), written with the id rules' patterns
// ("Contoso.*", an exact id, or "*"; see id-rules.ts). Pure: the access layer builds one per token, feed/ filters
// its answers with it, http/ answers an id outside it exactly like an absent one.
import { createHash } from 'node:crypto';
import { patternError } from './id-rules.js';

export interface IdScope {
  /**
   * Names the scope in cache and memo keys: equal for equal pattern sets (any order or case), different
   * otherwise, short and without the patterns' text (a key never says which ids a token sees).
   */
  readonly key: string;
  /** Whether the (lowercase) id is inside the scope. */
  allows(lowerId: string): boolean;
}

/**
 * The scope of `patterns` (already validated by the config: patternError is undefined for each). An empty
 * list, or one holding "*", is no restriction: undefined, so callers keep their unscoped (fast) path.
 */
export function idScope(patterns: readonly string[]): IdScope | undefined {
  if (patterns.length === 0) return undefined;
  for (const p of patterns) {
    const err = patternError(p);
    if (err !== undefined) throw new Error(`invalid scope pattern ${JSON.stringify(p)}: ${err}`);
  }
  const lower = [...new Set(patterns.map((p) => p.toLowerCase()))].sort();
  if (lower.includes('*')) return undefined;
  const exact = new Set(lower.filter((p) => !p.endsWith('*')));
  // compiled once: allows() runs for every hit of a search (up to 1000 per upstream), so no per-call parsing
  const prefixes = lower.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  const key = `scope-${createHash('sha256').update(lower.join('\n')).digest('hex').slice(0, 16)}`;
  return {
    key,
    allows: (lowerId) => exact.has(lowerId) || prefixes.some((p) => lowerId.startsWith(p)),
  };
}
