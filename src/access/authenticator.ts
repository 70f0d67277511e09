// Who a request is (issue #15): a client certificate mapped to a token, HTTP Basic with the token as the password
// (what NuGet.Config's packageSourceCredentials and credential providers send), a Bearer token, or X-NuGet-ApiKey
// where that header carries a nuproxy token. No I/O: the tokens' SHA-256 digests are held in memory, and a small
// memo of recent successes skips even the hash on the warm path.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { idScope } from '../protocol/id-scope.js';
import type { Permission, Principal } from './principal.js';
import { FailureThrottle, type ThrottleOptions } from './throttle.js';

export interface TokenConfig {
  name: string;
  /** Absent: reached only through a client certificate. */
  sha256?: string | undefined;
  permissions: readonly Permission[];
  scopes: readonly string[];
}

export interface AuthenticatorOptions {
  /** Whether a request without credentials may read. */
  anonymous: boolean;
  /**
   * Permissions a request without credentials has besides `read` (publish.keyMode passthrough with anonymous
   * reads: `push`, the upstream judging the key it is given).
   */
  anonymousExtra?: readonly Permission[];
  tokens: readonly TokenConfig[];
  /** The token name a connection's verified client certificate maps to (access/client-cert.ts), if any. */
  certificateToken?: ((socket: Socket) => string | undefined) | undefined;
  throttle?: Partial<ThrottleOptions>;
  /**
   * trustForwardedHeaders: behind a reverse proxy every request comes from its address, so the throttle counts the
   * client's, the first X-Forwarded-For entry, instead (only when that proxy is trusted to set it).
   */
  trustForwardedFor?: boolean;
}

/** The outcome: who asks, or why nobody could be told (`wrong` is counted against the address). */
export type Verdict = { principal: Principal } | { fail: 'missing' } | { fail: 'wrong'; delayMs: number } | { fail: 'throttled'; retryAfterS: number };

/** How far an X-NuGet-ApiKey is ours: on reads, the admin API and mapped pushes yes; on passthrough pushes it is the upstream's. */
export interface AskOptions {
  apiKeyIsOurs: boolean;
}

const MEMO_MAX = 1024;
const MAX_CREDENTIAL = 4096;

export class Authenticator {
  private readonly byDigest = new Map<string, { digest: Buffer; principal: Principal }>();
  private readonly byName = new Map<string, Principal>();
  private readonly memo = new Map<string, Principal>();
  private readonly throttle: FailureThrottle;
  readonly anonymousPrincipal: Principal;

  constructor(private readonly opts: AuthenticatorOptions) {
    const anon: Permission[] = opts.anonymous ? ['read', ...(opts.anonymousExtra ?? [])] : [];
    for (const t of opts.tokens) {
      // a token never may less than no token: while anonymous reads are on, an admin-only token still reads
      // (within its scopes, which are the token's)
      const p: Principal = { name: t.name, anonymous: false, permissions: new Set([...t.permissions, ...anon]), scope: idScope(t.scopes) };
      this.byName.set(t.name, p);
      if (t.sha256 !== undefined) {
        const hex = t.sha256.toLowerCase();
        if (!this.byDigest.has(hex)) this.byDigest.set(hex, { digest: Buffer.from(hex, 'hex'), principal: p });
      }
    }
    this.anonymousPrincipal = { name: 'anonymous', anonymous: true, permissions: new Set(anon), scope: undefined };
    this.throttle = new FailureThrottle(opts.throttle);
  }

  /** Whether any credential can be checked at all (with none configured, every request is anonymous). */
  get hasTokens(): boolean {
    return this.byName.size > 0;
  }

  /** Whether some token has `permission` (the admin API is off without an admin token). */
  grants(permission: Permission): boolean {
    for (const p of this.byName.values()) if (p.permissions.has(permission)) return true;
    return false;
  }

  /** The token configured under `name` (a certificate mapping names one). */
  principalNamed(name: string): Principal | undefined {
    return this.byName.get(name);
  }

  /** Who sent `req`. Synchronous and without I/O: it runs before every read. */
  identify(req: IncomingMessage, ask: AskOptions): Verdict {
    const cert = this.opts.certificateToken?.(req.socket);
    if (cert !== undefined) {
      const p = this.byName.get(cert);
      if (p) return { principal: p };
    }
    const h = req.headers;
    const auth = h.authorization;
    let presented: string | undefined;
    let memoKey: string | undefined;
    if (auth !== undefined) {
      memoKey = auth;
      const hit = this.memo.get(auth);
      if (hit) return { principal: hit };
      presented = credentialOf(auth);
      // .NET answers a challenge it has no credentials for with empty Basic ones ("Og==", ":"): that is no
      // token, not a wrong one (neither counted by the throttle nor told "not valid")
      if (presented === undefined && !emptyBasic(auth)) return this.failed(req);
    } else {
      const key = h['x-nuget-apikey'];
      if (typeof key === 'string' && key.length > 0 && ask.apiKeyIsOurs) {
        memoKey = `k ${key}`;
        const hit = this.memo.get(memoKey);
        if (hit) return { principal: hit };
        presented = key;
      }
    }
    if (presented === undefined) return this.opts.anonymous ? { principal: this.anonymousPrincipal } : { fail: 'missing' };
    const blocked = this.throttle.blocked(this.addressOf(req));
    if (blocked !== undefined) return { fail: 'throttled', retryAfterS: blocked };
    const p = this.check(presented);
    if (!p) return this.failed(req);
    if (memoKey !== undefined) this.remember(memoKey, p);
    return { principal: p };
  }

  /**
   * The token whose SHA-256 equals the presented value's. The lookup is keyed by that digest, so where it goes
   * says nothing about how close the value is to a real token; the one candidate is then compared in constant time.
   */
  private check(presented: string): Principal | undefined {
    if (presented.length > MAX_CREDENTIAL) return undefined;
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    const found = this.byDigest.get(digest.toString('hex'));
    return found && timingSafeEqual(found.digest, digest) ? found.principal : undefined;
  }

  private failed(req: IncomingMessage): Verdict {
    return { fail: 'wrong', delayMs: this.throttle.fail(this.addressOf(req)) };
  }

  private addressOf(req: IncomingMessage): string {
    if (this.opts.trustForwardedFor) {
      const f = req.headers['x-forwarded-for'];
      const first = (Array.isArray(f) ? f[0] : f)?.split(',')[0]?.trim();
      if (first) return first.slice(0, 64);
    }
    return req.socket.remoteAddress ?? '';
  }

  private remember(key: string, p: Principal): void {
    if (this.memo.size >= MEMO_MAX) this.memo.delete(this.memo.keys().next().value!);
    this.memo.set(key, p);
  }
}

/** The secret in an Authorization header: Basic's password (any user name), or a Bearer token. */
export function credentialOf(auth: string): string | undefined {
  if (auth.length > MAX_CREDENTIAL) return undefined;
  const m = /^(Basic|Bearer)[ \t]+(\S+)[ \t]*$/i.exec(auth);
  if (!m) return undefined;
  if (m[1]!.toLowerCase() === 'bearer') return m[2];
  const b64 = m[2]!;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const text = Buffer.from(b64, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const password = text.slice(colon + 1);
  return password.length > 0 ? password : undefined;
}

/** Basic with an empty password (and any user name, usually empty too). */
function emptyBasic(auth: string): boolean {
  const m = /^Basic[ \t]+([A-Za-z0-9+/]*={0,2})[ \t]*$/i.exec(auth);
  if (!m) return false;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  return text === '' || text.endsWith(':') && text.indexOf(':') === text.length - 1;
}

/** Whether `p` has `permission`. */
export function may(p: Principal, permission: Permission): boolean {
  return p.permissions.has(permission);
}
