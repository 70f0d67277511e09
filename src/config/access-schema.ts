// The `access` section: who may read, push and administer (issue #15; src/access/ checks with it).
import { z } from 'zod';
import { idPatterns } from './schema-kit.js';

const sha256Hex = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of the token, 64 hex digits (nuproxy hash-key)');
const PERMISSIONS = ['read', 'push', 'admin', 'metrics'] as const;

/** Who may read, push and administer (issue #15; src/access/). */
export const accessSchema = z
  .strictObject({
    // reads (and, in publish.keyMode passthrough, pushes the upstream then judges) without a token
    anonymous: z.boolean().default(true),
    tokens: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" and "-", at most 64'),
          // absent: the token is reached only through a client certificate (access.certificates)
          sha256: sha256Hex.optional(),
          permissions: z.array(z.enum(PERMISSIONS)).min(1),
          scopes: idPatterns, // empty: every id
        }),
      )
      .max(1024)
      .default([]),
    // mutual TLS (tls.clientCa): a verified certificate whose subject has these attributes acts as that token
    certificates: z
      .array(z.strictObject({ subject: z.string().regex(/^\s*[A-Za-z][A-Za-z0-9.]*=[^,]+(,\s*[A-Za-z][A-Za-z0-9.]*=[^,]+)*\s*$/, 'attributes like "CN=agent-1,O=Contoso"'), token: z.string().min(1) }))
      .default([]),
  })
  .prefault({})
  .superRefine((a, ctx) => {
    const names = new Map<string, number>();
    const hashes = new Map<string, string>();
    a.tokens.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tokens', i, 'name'], message: `token name ${t.name} is used twice` });
      names.set(t.name, i);
      if (t.sha256 !== undefined) {
        const h = t.sha256.toLowerCase();
        const other = hashes.get(h);
        if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['tokens', i, 'sha256'], message: `tokens ${other} and ${t.name} have the same SHA-256: one token, two names` });
        hashes.set(h, t.name);
      }
    });
    a.certificates.forEach((c, i) => {
      if (!names.has(c.token)) ctx.addIssue({ code: 'custom', path: ['certificates', i, 'token'], message: `no access token is named ${c.token}` });
    });
    a.tokens.forEach((t, i) => {
      if (t.sha256 === undefined && !a.certificates.some((c) => c.token === t.name)) {
        ctx.addIssue({ code: 'custom', path: ['tokens', i, 'sha256'], message: `token ${t.name} has no sha256 and no client certificate maps to it: nothing could use it` });
      }
    });
  });
