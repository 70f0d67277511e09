// Who may use the admin API (issue #14): a token whose SHA-256 is configured (admin.tokens, hashed like
// publish.keys). The one check lives here so that issue #15's access tokens with an `admin` permission can join it.
import { createHash, timingSafeEqual } from 'node:crypto';

export interface AdminToken {
  name: string;
  sha256: string;
}

/** The token a request presents: `Authorization: Bearer <token>`, or `X-NuGet-ApiKey` like the publish routes. */
export function presentedToken(header: (name: string) => string | undefined): string | undefined {
  const auth = header('authorization');
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(auth);
    return m?.[1];
  }
  const key = header('x-nuget-apikey');
  return key !== undefined && key.length > 0 && key.length <= 512 ? key : undefined;
}

/**
 * The configured token's name, or undefined. Every digest is compared (constant time, and no early exit), so
 * the answer's timing says nothing about which token, or how much of one, matched.
 */
export function checkAdminToken(presented: string | undefined, tokens: readonly AdminToken[]): string | undefined {
  if (presented === undefined) return undefined;
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let name: string | undefined;
  for (const t of tokens) {
    const want = Buffer.from(t.sha256, 'hex');
    if (want.length === digest.length && timingSafeEqual(want, digest) && name === undefined) name = t.name;
  }
  return name;
}
