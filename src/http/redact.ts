import type { Redactor } from '../log.js';

/**
 * A JSON value with the configured secrets cut out of every string in it (keys included), for the answers that
 * quote upstream error messages (explain, readiness): an upstream's text may carry back what nuproxy sent it.
 * Works on the values, before serialization, so a secret with a quote in it is still found.
 */
export function withoutSecrets<T>(value: T, secrets: Redactor): T {
  if (secrets.empty) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return secrets.redact(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [secrets.redact(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
