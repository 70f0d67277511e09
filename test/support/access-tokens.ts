// Shared by the tests of pushes under access control (test/integration/access-publish*.test.ts, issue #15): the
// tokens they configure, their values (made up, each distinct so that a leak names which one), and the checks on
// what the proxy logged.
import { expect } from 'vitest';
import { hashKey } from '../../src/feed/publish.js';
import { makeNupkg } from './nupkg.js';
import type { TestProxy } from './proxy.js';

export const UPSTREAM_KEY = 'upstream-key-7f3a9c2e51';
export const PUSHER = 'tok-pusher-5b8e1d07c4a6';
export const READER = 'tok-reader-93c2aa61f0de';
export const SCOPED = 'tok-scoped-1e7d44b9a035';
export const LEGACY = 'tok-legacy-c60f2b8d7e19';
export const GUESS = 'tok-guess-0a0a0a0a0a0a';
export const SECRETS = [UPSTREAM_KEY, PUSHER, READER, SCOPED, LEGACY, GUESS];

export const basic = (token: string): string => `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}`;
export const pkg = (id: string, version = '1.0.0'): Uint8Array => makeNupkg({ id, version });

export const tokens = [
  { name: 'pusher', sha256: hashKey(PUSHER), permissions: ['read', 'push'] },
  { name: 'reader', sha256: hashKey(READER), permissions: ['read'] },
  { name: 'contoso-team', sha256: hashKey(SCOPED), permissions: ['read', 'push'], scopes: ['Contoso.*'] },
];

/** The access lines of the framework's routes (method, path, status, and the token's name as principal). */
export function accessLines(proxy: TestProxy): { method: string; path: string; status: number; principal?: string }[] {
  return proxy.logs.lines.filter((l) => typeof l.method === 'string' && typeof l.status === 'number') as never;
}

/** No captured log line holds any of the secrets, in any form pino wrote it. */
export function expectNoSecretLogged(proxy: TestProxy): void {
  const lines = proxy.logs.raw().split('\n');
  expect(lines.length).toBeGreaterThan(1);
  for (const line of lines) for (const s of [...SECRETS, ...SECRETS.map((x) => Buffer.from(`anyone:${x}`).toString('base64'))]) expect(line).not.toContain(s);
}
