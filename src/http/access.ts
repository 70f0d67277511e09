// The HTTP side of access control (issue #15): a verdict of access/authenticator.ts, and the permission a route
// needs, become who asks or the one answer: 401 with the Basic challenge (no token, or a wrong one: the NuGet
// client then sends its packageSourceCredentials, or says it needs them), 403 (a token without the permission),
// 429 (an address past the wrong-token limit). A wrong token's answer may be held back (the throttle's delay).
import type { Authenticator, AskOptions } from '../access/authenticator.js';
import type { Permission, Principal } from '../access/principal.js';
import { NuproxyError } from '../errors.js';

/** `who`: the token refused for lacking the permission (403), so that the access line can still name it. */
export type Access = { principal: Principal } | { refuse: NuproxyError; delayMs: number; who?: Principal };

const MISSING = 'this feed needs a token: give it as the password in packageSourceCredentials (HTTP Basic), or as X-NuGet-ApiKey';
const WRONG = 'the token is not valid for this feed';
/**
 * The challenge to a wrong Bearer token: an API client (or the dashboard's script) speaks Bearer, and a Basic
 * challenge would make a browser open its login dialog over the page instead of showing the refusal.
 */
const BEARER = 'Bearer realm="nuproxy"';
const bearer = (req: { headers: { authorization?: string | undefined } }): boolean => /^bearer\s/i.test(req.headers.authorization ?? '');

/** Who asks and whether they may `need` (undefined: nothing beyond being identified, e.g. the service index). */
export function access(auth: Authenticator, req: Parameters<Authenticator['identify']>[0], need: Permission | undefined, ask: AskOptions): Access {
  const v = auth.identify(req, ask);
  if ('principal' in v) {
    const p = v.principal;
    if (need === undefined || p.permissions.has(need)) return v;
    // an anonymous request that may not: the challenge, so that the client sends the credentials it has
    if (p.anonymous) return { refuse: new NuproxyError('UNAUTHORIZED', MISSING), delayMs: 0 };
    return { refuse: forbidden(p, need), delayMs: 0, who: p };
  }
  switch (v.fail) {
    case 'missing':
      // a route open to all (the service index): no credentials is fine
      if (need === undefined) return { principal: auth.anonymousPrincipal };
      return { refuse: new NuproxyError('UNAUTHORIZED', MISSING), delayMs: 0 };
    case 'wrong':
      return { refuse: new NuproxyError('UNAUTHORIZED', WRONG, bearer(req) ? { challenge: BEARER } : {}), delayMs: v.delayMs };
    case 'throttled':
      return { refuse: new NuproxyError('TOO_MANY_REQUESTS', `too many wrong tokens from this address: try again in ${v.retryAfterS} s`, { retryAfter: v.retryAfterS }), delayMs: 0 };
  }
}

export function forbidden(p: Principal, need: Permission): NuproxyError {
  return new NuproxyError('FORBIDDEN', `token ${p.name} does not have the ${need} permission`);
}

/** The framework routes' refusal: rejects with it once the throttle's delay is over (the answer is the caller's). */
export async function refuseAfterDelay(a: { refuse: NuproxyError; delayMs: number }): Promise<never> {
  if (a.delayMs > 0) await new Promise((r) => setTimeout(r, a.delayMs).unref());
  throw a.refuse;
}

/** Runs `answer` after `delayMs` (at once for 0); the timer does not keep the process alive. */
export function later(delayMs: number, answer: () => void): void {
  if (delayMs <= 0) return answer();
  setTimeout(answer, delayMs).unref();
}
