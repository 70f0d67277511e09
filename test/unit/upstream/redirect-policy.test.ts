import { describe, expect, it } from 'vitest';
import { DEFAULT_REDIRECT_ORIGINS } from '../../../src/config/schema.js';
import { isSpecialAddress, RedirectAllowList } from '../../../src/upstream/redirect-policy.js';

describe('RedirectAllowList', () => {
  const list = new RedirectAllowList(['https://*.blob.core.windows.net', 'http://127.0.0.1:8080', 'https://cdn.example.com', 'http://[::1]:9000', 'HTTPS://*.Example.ORG:8443']);
  const match = (u: string) => list.match(new URL(u));

  it('matches a wildcard on any subdomain, never the bare domain, a lookalike or an IP literal', () => {
    expect(match('https://acct.blob.core.windows.net/c/x.nupkg?sig=1')).toBe('wildcard');
    expect(match('https://a.b.blob.core.windows.net/')).toBe('wildcard');
    expect(match('https://blob.core.windows.net/')).toBeUndefined();
    expect(match('https://evilblob.core.windows.net/')).toBeUndefined();
    expect(match('https://acct.blob.core.windows.net.evil.org/')).toBeUndefined();
    expect(new RedirectAllowList(['http://*.0.0.1:80']).match(new URL('http://127.0.0.1/'))).toBeUndefined();
  });

  it('compares scheme and port: the same host on another port or scheme is another origin', () => {
    expect(match('http://127.0.0.1:8080/x')).toBe('exact');
    expect(match('http://127.0.0.1:8081/x')).toBeUndefined();
    expect(match('http://127.0.0.1/x')).toBeUndefined();
    expect(match('https://127.0.0.1:8080/x')).toBeUndefined();
    expect(match('http://acct.blob.core.windows.net/')).toBeUndefined();
    expect(match('https://acct.blob.core.windows.net:444/')).toBeUndefined();
    expect(match('https://cdn.example.com:443/x')).toBe('exact');
    expect(match('https://x.example.org:8443/')).toBe('wildcard');
    expect(match('https://x.example.org/')).toBeUndefined();
  });

  it('normalises hosts like the URL parser (case, IPv6 forms)', () => {
    expect(match('https://CDN.Example.COM/x')).toBe('exact');
    expect(match('http://[0:0:0:0:0:0:0:1]:9000/')).toBe('exact');
    expect(match('http://[::2]:9000/')).toBeUndefined();
  });

  it('the defaults are https wildcards on blob hosts only', () => {
    const d = new RedirectAllowList(DEFAULT_REDIRECT_ORIGINS);
    expect(d.match(new URL('https://pkg-containers.githubusercontent.com/x'))).toBe('wildcard');
    expect(d.match(new URL('https://acct.blob.core.windows.net/x'))).toBe('wildcard');
    for (const u of ['http://169.254.169.254/', 'http://localhost/', 'http://[::1]/', 'https://githubusercontent.com/', 'http://x.githubusercontent.com/']) expect(d.match(new URL(u)), u).toBeUndefined();
  });
});

describe('isSpecialAddress', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '0.0.0.0', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '100.127.255.255',
    '224.0.0.1', '255.255.255.255', '::', '::1', '0:0:0:0:0:0:0:1', 'fc00::1', 'fd12:3456::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1',
    '::ffff:169.254.169.254', '[::1]',
  ])('%s is special', (a) => expect(isSpecialAddress(a)).toBe(true));

  it.each(['8.8.8.8', '172.32.0.1', '172.15.255.255', '100.128.0.1', '192.169.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '13.107.42.14'])('%s is public', (a) => expect(isSpecialAddress(a)).toBe(false));
});
