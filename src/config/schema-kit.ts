// The building blocks of the config schema (schema.ts and its sections): durations, sizes, id patterns and
// environment variable names, each with the message a user sees when a value is wrong.
import { z } from 'zod';
import { parseDurationMs } from './duration.js';
import { patternError } from '../protocol/id-rules.js';

export function toMs(v: number | string, ctx: z.core.$RefinementCtx<number | string>): number {
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use seconds or e.g. "90s", "10m", "1h", "7d")` });
    return z.NEVER;
  }
  return ms;
}

export const duration = (def: string) => z.union([z.number(), z.string()]).prefault(def).transform(toMs);
/** A duration without a default (absent stays undefined). */
export const optionalDuration = () => z.union([z.number(), z.string()]).transform(toMs).optional();

/** Package id patterns (see src/protocol/id-rules.ts): an id, a prefix ending in "*", or "*". */
export const idPatterns = z
  .array(
    z.string().superRefine((p, ctx) => {
      const err = patternError(p);
      if (err !== undefined) ctx.addIssue({ code: 'custom', message: err });
    }),
  )
  .default([]);

export const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
/** Sizes are a number of bytes or a string such as "250MB", "512kb", "1GB" (binary units). */
export const byteSize = (def: string, zeroAllowed = false) =>
  z
    .union([zeroAllowed ? z.number().int().nonnegative() : z.number().int().positive(), z.string()])
    .prefault(def)
    .transform((v, ctx) => {
      if (typeof v === 'number') return v;
      const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(v);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(v)} (use bytes or e.g. "250MB")` });
        return z.NEVER;
      }
      return Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!);
    });

/** A size that may be 0 (off): bytes or "50GB". */
export const byteSizeOrZero = (def: string) =>
  z.union([z.literal(0), z.literal('0'), byteSize(def)]).prefault(def).transform((v) => (v === '0' ? 0 : v));

export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the NAME of an environment variable');
