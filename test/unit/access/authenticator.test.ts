// The access checks without a server (issue #15): how a credential is read, what a verdict is for each kind of
// request, the memo, the throttle's schedule on a fake clock, and how the older admin.tokens and publish.keys
// become tokens.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Authenticator, credentialOf, type Verdict } from '../../../src/access/authenticator.js';
import { authenticatorFor, configTokens } from '../../../src/access/from-config.js';
import { FailureThrottle } from '../../../src/access/throttle.js';
import { validateConfig } from '../../../src/config/load.js';
import { idScope } from '../../../src/protocol/id-scope.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const req = (headers: Record<string, string>, remoteAddress = '10.0.0.1'): IncomingMessage => ({ headers, socket: { remoteAddress } }) as unknown as IncomingMessage;
const nameOf = (v: Verdict): string => ('principal' in v ? v.principal.name : `fail:${v.fail}`);

const CI = 'ci-token-0123456789';
const TEAM = 'team-token-0123456789';

function auth(anonymous: boolean): Authenticator {
  return new Authenticator({
    anonymous,
    tokens: [
      { name: 'ci', sha256: sha(CI), permissions: ['read', 'push'], scopes: [] },
      { name: 'team', sha256: sha(TEAM).toUpperCase(), permissions: ['read'], scopes: ['Contoso.*'] },
    ],
  });
}

describe('credentialOf', () => {
  it('reads the password of Basic (any user name, colons in the password kept) and a Bearer token', () => {
    expect(credentialOf(basic('anything', CI))).toBe(CI);
    expect(credentialOf(basic('', 'a:b:c'))).toBe('a:b:c');
    expect(credentialOf('basic ' + Buffer.from('u:p').toString('base64'))).toBe('p');
    expect(credentialOf('Bearer abc.def')).toBe('abc.def');
  });
  it('finds nothing in a malformed header', () => {
    for (const h of ['Basic', 'Basic !!!', `Basic ${Buffer.from('nocolon').toString('base64')}`, basic('u', ''), 'Digest x', 'Bearer a b', `Bearer ${'x'.repeat(5000)}`]) {
      expect(credentialOf(h), h).toBeUndefined();
    }
  });
});

describe('Authenticator.identify', () => {
  const ours = { apiKeyIsOurs: true };
  it('knows a token by Basic, Bearer and X-NuGet-ApiKey, with its permissions and scope', () => {
    const a = auth(false);
    const v = a.identify(req({ authorization: basic('me', TEAM) }), ours);
    expect(nameOf(v)).toBe('team');
    if (!('principal' in v)) throw new Error('no principal');
    expect([...v.principal.permissions]).toEqual(['read']);
    expect(v.principal.scope?.allows('contoso.lib')).toBe(true);
    expect(v.principal.scope?.allows('other.lib')).toBe(false);
    expect(nameOf(a.identify(req({ authorization: `Bearer ${CI}` }), ours))).toBe('ci');
    expect(nameOf(a.identify(req({ 'x-nuget-apikey': CI }), ours))).toBe('ci');
  });
  it('while anonymous reads are on, a token without read may read too (never less than no token)', () => {
    const a = new Authenticator({ anonymous: true, tokens: [{ name: 'ops', sha256: sha(CI), permissions: ['admin'], scopes: [] }] });
    const v = a.identify(req({ authorization: `Bearer ${CI}` }), ours);
    expect('principal' in v && [...v.principal.permissions].sort()).toEqual(['admin', 'read']);
    const closed = new Authenticator({ anonymous: false, tokens: [{ name: 'ops', sha256: sha(CI), permissions: ['admin'], scopes: [] }] });
    const w = closed.identify(req({ authorization: `Bearer ${CI}` }), ours);
    expect('principal' in w && [...w.principal.permissions]).toEqual(['admin']);
  });
  it('without credentials: anonymous (read only) when allowed, else missing', () => {
    const open = auth(true).identify(req({}), ours);
    expect('principal' in open && open.principal.anonymous && [...open.principal.permissions]).toEqual(['read']);
    expect(nameOf(auth(false).identify(req({}), ours))).toBe('fail:missing');
  });
  it('empty Basic credentials (what .NET sends when it has none) are no token, not a wrong one', () => {
    const a = new Authenticator({ anonymous: false, tokens: [], throttle: { free: 0 } });
    for (const h of ['Basic Og==', `Basic ${Buffer.from('user:').toString('base64')}`, 'Basic ']) {
      expect(nameOf(a.identify(req({ authorization: h }, '10.7.7.7'), ours)), h).toBe('fail:missing');
    }
    expect(nameOf(auth(true).identify(req({ authorization: 'Basic Og==' }), ours))).toBe('anonymous');
    // and nothing was counted against the address
    const wrong = a.identify(req({ authorization: 'Bearer nope' }, '10.7.7.7'), ours);
    expect('delayMs' in wrong && wrong.delayMs).toBe(250); // the first failure past free: 0 (an earlier count would double it)
  });
  it('a wrong token is wrong even where anonymous reads are allowed (never silently anonymous)', () => {
    expect(nameOf(auth(true).identify(req({ authorization: basic('me', 'guess') }), ours))).toBe('fail:wrong');
    expect(nameOf(auth(true).identify(req({ authorization: 'Basic %%%' }), ours))).toBe('fail:wrong');
  });
  it("an X-NuGet-ApiKey that is the upstream's (passthrough pushes) is not a credential", () => {
    const a = auth(false);
    expect(nameOf(a.identify(req({ 'x-nuget-apikey': CI }), { apiKeyIsOurs: false }))).toBe('fail:missing');
    expect(nameOf(a.identify(req({ 'x-nuget-apikey': 'upstream-key', authorization: basic('u', CI) }), { apiKeyIsOurs: false }))).toBe('ci');
  });
  it('remembers successes only: a memoized header answers the same, a wrong one is checked (and counted) each time', () => {
    const a = new Authenticator({ anonymous: false, tokens: [{ name: 'ci', sha256: sha(CI), permissions: ['read'], scopes: [] }], throttle: { free: 2, blockAfter: 4 } });
    const h = { authorization: basic('u', CI) };
    for (let i = 0; i < 3; i++) expect(nameOf(a.identify(req(h), ours))).toBe('ci');
    const wrong = { authorization: basic('u', 'nope') };
    const verdicts = [1, 2, 3, 4, 5].map(() => a.identify(req(wrong, '10.9.9.9'), ours));
    expect(verdicts.map((v) => ('fail' in v ? v.fail : 'ok'))).toEqual(['wrong', 'wrong', 'wrong', 'wrong', 'throttled']);
    expect(verdicts.map((v) => ('delayMs' in v ? v.delayMs : -1))).toEqual([0, 0, 250, 500, -1]);
    // another address is not slowed by that one, and a right token from the blocked address still works
    expect(nameOf(a.identify(req(wrong, '10.9.9.8'), ours))).toBe('fail:wrong');
    expect(nameOf(a.identify(req(h, '10.9.9.9'), ours))).toBe('ci');
  });
  it('behind a trusted reverse proxy, counts wrong tokens by X-Forwarded-For', () => {
    const a = new Authenticator({ anonymous: false, tokens: [], throttle: { free: 1 }, trustForwardedFor: true });
    const wrong = (client: string) => a.identify(req({ authorization: 'Bearer nope', 'x-forwarded-for': `${client}, 10.0.0.254` }, '10.0.0.254'), ours);
    expect([wrong('198.51.100.7'), wrong('198.51.100.7'), wrong('198.51.100.8')].map((v) => ('delayMs' in v ? v.delayMs : -1))).toEqual([0, 250, 0]);
  });
  it('maps a certificate to the token it names first', () => {
    const a = new Authenticator({
      anonymous: false,
      tokens: [{ name: 'agent', permissions: ['read'], scopes: [] }],
      certificateToken: (s) => ((s as unknown as { remoteAddress: string }).remoteAddress === '10.1.1.1' ? 'agent' : undefined),
    });
    expect(nameOf(a.identify(req({}, '10.1.1.1'), ours))).toBe('agent');
    expect(nameOf(a.identify(req({}, '10.1.1.2'), ours))).toBe('fail:missing');
  });
});

describe('FailureThrottle', () => {
  it('answers the free failures at once, then doubles the delay up to the cap, blocks past the limit, forgets after the window', () => {
    let now = 0;
    const t = new FailureThrottle({ free: 2, baseDelayMs: 100, maxDelayMs: 400, windowMs: 1000, blockAfter: 6 }, () => now);
    expect([1, 2, 3, 4, 5, 6].map(() => t.fail('a'))).toEqual([0, 0, 100, 200, 400, 400]);
    expect(t.blocked('a')).toBe(1);
    expect(t.blocked('b')).toBeUndefined();
    now = 1001;
    expect(t.blocked('a')).toBeUndefined();
    expect(t.fail('a')).toBe(0);
  });
  it('remembers a bounded number of addresses (the oldest go first)', () => {
    const t = new FailureThrottle({ free: 0, baseDelayMs: 10, addresses: 3 }, () => 0);
    for (const a of ['a', 'b', 'c', 'd']) t.fail(a);
    expect(t.fail('a')).toBe(10); // forgotten: its first failure again
    expect(t.fail('d')).toBe(20);
  });
});

describe('idScope', () => {
  it('is no restriction for an empty list or "*", and keys equal sets equally without naming the patterns', () => {
    expect(idScope([])).toBeUndefined();
    expect(idScope(['Contoso.*', '*'])).toBeUndefined();
    const a = idScope(['Contoso.*', 'Fabrikam.Lib'])!;
    const b = idScope(['fabrikam.lib', 'CONTOSO.*'])!;
    expect(a.key).toBe(b.key);
    expect(a.key).not.toMatch(/contoso|fabrikam/i);
    expect(idScope(['Contoso.*'])!.key).not.toBe(a.key);
    expect([a.allows('contoso.x'), a.allows('fabrikam.lib'), a.allows('fabrikam.lib2'), a.allows('contosox')]).toEqual([true, true, false, false]);
  });
});

describe('the tokens of a config', () => {
  const cfg = (raw: Record<string, unknown>) => validateConfig(raw, { K: 'upstream-key' }, 'test').config;
  it('adds admin.tokens (admin, which implies metrics) and mapped publish.keys (push), merging one secret under two settings', () => {
    const c = cfg({
      upstreams: [{ name: 'a', serviceIndex: 'https://a.example/v3/index.json', writable: true }],
      access: { tokens: [{ name: 'ci', sha256: sha(CI), permissions: ['read'] }] },
      admin: { tokens: [{ name: 'ops', sha256: sha('ops-token') }, { name: 'ci', sha256: sha('other') }] },
      publish: { keyMode: 'mapped', keys: [{ name: 'agents', sha256: sha(CI).toUpperCase() }], upstreamKeyEnv: 'K' },
    });
    const { tokens, notes } = configTokens(c);
    expect(tokens.map((t) => [t.name, [...t.permissions].sort()])).toEqual([
      ['ci', ['push', 'read']],
      ['ops', ['admin', 'metrics']],
      ['ci-2', ['admin', 'metrics']],
    ]);
    expect(notes).toHaveLength(2);
  });
  it('is no authenticator at all for an open feed (anonymous reads, no token): nothing to check on the read path', () => {
    expect(authenticatorFor(cfg({})).auth).toBeUndefined();
    expect(authenticatorFor(cfg({ access: { anonymous: false } })).auth).toBeDefined();
  });
  it('refuses a certificate mapping to no token, a token nothing can use, and one secret under two names', () => {
    const problems = (access: Record<string, unknown>): string[] => {
      try {
        validateConfig({ access }, {}, 'test');
        return [];
      } catch (err) {
        return String((err as Error).message).split('\n');
      }
    };
    expect(problems({ certificates: [{ subject: 'CN=x', token: 'nobody' }] }).join('\n')).toMatch(/no access token is named nobody/);
    expect(problems({ tokens: [{ name: 'x', permissions: ['read'] }] }).join('\n')).toMatch(/no sha256 and no client certificate/);
    expect(problems({ tokens: [{ name: 'x', sha256: sha('s'), permissions: ['read'] }, { name: 'y', sha256: sha('s'), permissions: ['push'] }] }).join('\n')).toMatch(/same SHA-256/);
    expect(problems({ tokens: [{ name: 'x', sha256: sha('s'), permissions: ['read'], scopes: ['Bad*Pattern*'] }] }).length).toBeGreaterThan(0);
  });
});
