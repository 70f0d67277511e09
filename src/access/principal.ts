// Who is asking (issue #15): the identity a request authenticated as, and what it may do. Built by
// authenticator.ts from the configured tokens (or a mapped client certificate); http/, admin/ and ui/ ask it.
import type { IdScope } from '../protocol/id-scope.js';

/** `metrics`: GET /metrics when metrics.access is "token" (a scraper needs nothing else). */
export type Permission = 'read' | 'push' | 'admin' | 'metrics';

export interface Principal {
  /** The token's configured name ("anonymous" for a request without one): what log lines name, never a value. */
  readonly name: string;
  readonly anonymous: boolean;
  /** Holds each permission the token was given. */
  readonly permissions: ReadonlySet<Permission>;
  /** The ids it may see; undefined: every id. */
  readonly scope: IdScope | undefined;
}

/** Whether `p` may see the (lowercase) id. */
export function inScope(p: Principal, lowerId: string): boolean {
  return p.scope === undefined || p.scope.allows(lowerId);
}
