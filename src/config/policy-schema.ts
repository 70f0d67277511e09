// The `policy` section and an upstream's `policy` override (issue #16; src/policy/ decides with them).
import { z } from 'zod';
import { patternError } from '../protocol/id-rules.js';
import { isValidPackageId } from '../protocol/id.js';
import { parseVersion } from '../protocol/version.js';
import { duration, optionalDuration } from './schema-kit.js';

/**
 * A policy entry naming packages: an id pattern (as idPatterns) or one exact version, "Id@1.2.3" (a valid id and a
 * valid NuGet version).
 */
export function policyEntryError(entry: string): string | undefined {
  const at = entry.indexOf('@');
  if (at < 0) return patternError(entry);
  const id = entry.slice(0, at);
  const version = entry.slice(at + 1);
  if (!isValidPackageId(id)) return `invalid entry ${JSON.stringify(entry)}: ${JSON.stringify(id)} is not a valid package id (use "Id@1.2.3" or an id pattern)`;
  if (parseVersion(version) === undefined) return `invalid entry ${JSON.stringify(entry)}: ${JSON.stringify(version)} is not a valid NuGet version`;
  return undefined;
}

const policyEntries = z
  .array(
    z.string().superRefine((p, ctx) => {
      const err = policyEntryError(p);
      if (err !== undefined) ctx.addIssue({ code: 'custom', message: err });
    }),
  )
  .max(10_000);

export const POLICY_SEVERITIES = ['off', 'low', 'moderate', 'high', 'critical'] as const;
/** An SPDX licence id or expression as written in licenseExpression (letters, digits, ".", "-", "+", "(", ")", spaces). */
const spdx = z.string().regex(/^[A-Za-z0-9.+\-() ]{1,200}$/, 'must be an SPDX licence id or expression such as MIT, Apache-2.0 or "MIT OR Apache-2.0"');

/**
 * The supply-chain policy (issue #16; src/policy/), with every default: all rules off but `malicious`, which blocks
 * nothing until advisories are imported.
 */
export function globalPolicy() {
  return z
    .strictObject({
      // a version younger than this (by the winning upstream's published date) is not offered; 0 = off
      minimumAge: duration('0'),
      // block versions with an advisory at or above this severity
      vulnerable: z.enum(POLICY_SEVERITIES).default('off'),
      // block what imported OSV MAL- advisories name (`nuproxy advisories import`)
      malicious: z.boolean().default(true),
      deny: policyEntries.default([]),
      licenses: z
        .strictObject({
          allow: z.array(spdx).max(1000).default([]), // empty: the rule is off
          other: z.enum(['allow', 'block', 'list']).default('allow'), // a licence URL or file only (no expression); list: allowed, and listed in /explain
        })
        .prefault({}),
      exempt: z
        .strictObject({ minimumAge: policyEntries.default([]), vulnerable: policyEntries.default([]), licenses: policyEntries.default([]) })
        .prefault({}),
    })
    .prefault({});
}

/** An upstream's override of the global policy: every key optional, merged over the global ones (src/policy/policy.ts). */
export function upstreamPolicy() {
  return z
    .strictObject({
      minimumAge: optionalDuration(),
      vulnerable: z.enum(POLICY_SEVERITIES).optional(),
      malicious: z.boolean().optional(),
      deny: policyEntries.optional(),
      licenses: z.strictObject({ allow: z.array(spdx).max(1000).optional(), other: z.enum(['allow', 'block', 'list']).optional() }).optional(),
      exempt: z.strictObject({ minimumAge: policyEntries.optional(), vulnerable: policyEntries.optional(), licenses: policyEntries.optional() }).optional(),
    })
    .optional();
}
