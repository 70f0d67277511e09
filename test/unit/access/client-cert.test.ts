// The subject matching behind access.certificates: which configured subject a client certificate's subject
// satisfies. The handshake and real certificates are in test/integration/mtls.test.ts.
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { certificateToken, parseSubject, subjectMatches } from '../../../src/access/client-cert.js';

describe('parseSubject', () => {
  it('reads name=value pairs in order, without the spaces around them', () => {
    expect(parseSubject('CN=build-agent,O=Contoso')).toEqual([
      { name: 'CN', value: 'build-agent' },
      { name: 'O', value: 'Contoso' },
    ]);
    expect(parseSubject('  CN = agent 1 ,  OU=ci ')).toEqual([
      { name: 'CN', value: 'agent 1' },
      { name: 'OU', value: 'ci' },
    ]);
  });

  it('keeps an "=" inside a value (only the first one splits)', () => {
    expect(parseSubject('CN=a=b')).toEqual([{ name: 'CN', value: 'a=b' }]);
  });

  it.each(['', 'CN', '=x', 'CN=', 'CN=a,,O=b', '1CN=a', 'C N=a'])('refuses %j', (s) => {
    expect(() => parseSubject(s)).toThrow(/invalid certificate subject/);
  });
});

describe('subjectMatches', () => {
  const agent = { CN: 'build-agent', O: 'Contoso', OU: ['build', 'ci'], C: 'NL' };

  it('matches when the certificate has every wanted attribute, extra attributes or not', () => {
    expect(subjectMatches(parseSubject('CN=build-agent,O=Contoso'), agent)).toBe(true);
    expect(subjectMatches(parseSubject('O=Contoso'), agent)).toBe(true);
  });

  it('needs every attribute: one missing or different is no match', () => {
    expect(subjectMatches(parseSubject('CN=build-agent,O=Fabrikam'), agent)).toBe(false);
    expect(subjectMatches(parseSubject('CN=build-agent,L=Delft'), agent)).toBe(false);
    expect(subjectMatches(parseSubject('CN=build-agent,O=Contoso'), { CN: 'build-agent' })).toBe(false);
  });

  it('compares values exactly (a prefix, or another case, is another subject)', () => {
    expect(subjectMatches(parseSubject('CN=build'), agent)).toBe(false);
    expect(subjectMatches(parseSubject('O=contoso'), agent)).toBe(false);
    expect(subjectMatches(parseSubject('CN=build-agent-2'), agent)).toBe(false);
  });

  it('compares attribute names without case ("cn" is "CN")', () => {
    expect(subjectMatches(parseSubject('cn=build-agent,o=Contoso'), agent)).toBe(true);
  });

  it('a repeated certificate attribute matches any of its values; repeated wanted ones need each', () => {
    expect(subjectMatches(parseSubject('OU=ci'), agent)).toBe(true);
    expect(subjectMatches(parseSubject('OU=build,OU=ci'), agent)).toBe(true);
    expect(subjectMatches(parseSubject('OU=build,OU=release'), agent)).toBe(false);
  });

  it('an empty certificate subject matches nothing', () => {
    expect(subjectMatches(parseSubject('CN=build-agent'), {})).toBe(false);
  });
});

describe('certificateToken', () => {
  it('refuses an invalid configured subject up front', () => {
    expect(() => certificateToken([{ subject: 'nonsense', token: 'ci' }])).toThrow(/invalid certificate subject/);
  });

  it('gives nothing for a connection that is not TLS (no certificate to trust)', () => {
    const socket = new Socket();
    try {
      expect(certificateToken([{ subject: 'CN=build-agent', token: 'ci' }])(socket)).toBeUndefined();
    } finally {
      socket.destroy();
    }
  });
});
