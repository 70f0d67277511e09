// The access tokens of a config (issue #15): access.tokens, plus the two older kinds of hashed key, which become
// tokens too so that one check serves every route: admin.tokens (the admin API of issue #14) get `admin`, and
// publish.keys (keyMode mapped) get `push`. Both keep working; start-up says where they belong now.
import type { Config } from '../config/schema.js';
import { Authenticator, type AuthenticatorOptions, type TokenConfig } from './authenticator.js';
import type { Permission } from './principal.js';

export interface ConfigTokens {
  tokens: TokenConfig[];
  /** Start-up messages (info): keys that moved. */
  notes: string[];
}

export function configTokens(config: Pick<Config, 'access' | 'admin' | 'publish'>): ConfigTokens {
  type Mutable = TokenConfig & { permissions: Permission[] };
  const tokens: Mutable[] = [];
  const notes: string[] = [];
  const byHash = new Map<string, Mutable>();
  const names = new Set<string>();
  const add = (t: TokenConfig): void => {
    // admin implies metrics: whoever may purge may read the figures
    const permissions = t.permissions.includes('admin') && !t.permissions.includes('metrics') ? [...t.permissions, 'metrics' as Permission] : [...t.permissions];
    const hash = t.sha256?.toLowerCase();
    const same = hash !== undefined ? byHash.get(hash) : undefined;
    if (same) {
      // one secret under two settings (e.g. the same key in admin.tokens and publish.keys): one token, both rights
      same.permissions = [...new Set([...same.permissions, ...permissions])];
      return;
    }
    let name = t.name;
    for (let i = 2; names.has(name); i++) name = `${t.name}-${i}`;
    names.add(name);
    const token: Mutable = { name, sha256: hash, permissions, scopes: t.scopes };
    tokens.push(token);
    if (hash !== undefined) byHash.set(hash, token);
  };
  for (const t of config.access.tokens) add({ name: t.name, sha256: t.sha256, permissions: t.permissions, scopes: t.scopes });
  for (const t of config.admin.tokens) add({ name: t.name, sha256: t.sha256, permissions: ['admin'], scopes: [] });
  if (config.admin.tokens.length > 0) notes.push('admin.tokens are access tokens with the admin permission: they keep working; access.tokens (permissions: [admin]) is where new ones go');
  if (config.publish.keyMode === 'mapped') {
    for (const k of config.publish.keys) add({ name: k.name, sha256: k.sha256, permissions: ['push'], scopes: [] });
    if (config.publish.keys.length > 0) notes.push('publish.keys are access tokens with the push permission: they keep working; access.tokens (permissions: [push]) is where new ones go');
  }
  return { tokens, notes };
}

/**
 * The authenticator for a config, or undefined when there is nothing to check: anonymous reads and no token of
 * any kind (today's open feed; the read path then does no access work at all).
 */
export function authenticatorFor(
  config: Pick<Config, 'access' | 'admin' | 'publish' | 'trustForwardedHeaders'>,
  extra: Pick<AuthenticatorOptions, 'certificateToken' | 'throttle'> = {},
): { auth: Authenticator | undefined; notes: string[] } {
  const { tokens, notes } = configTokens(config);
  if (config.access.anonymous && tokens.length === 0) return { auth: undefined, notes };
  const auth = new Authenticator({
    anonymous: config.access.anonymous,
    // passthrough pushes with anonymous reads stay as before: the upstream judges the key it is relayed
    anonymousExtra: config.publish.keyMode === 'passthrough' ? ['push'] : [],
    tokens,
    trustForwardedFor: config.trustForwardedHeaders,
    ...extra,
  });
  return { auth, notes };
}
