import { describe, expect, it } from 'vitest';
import { REDACTED, SecretSet } from '../../../src/upstream/secrets.js';

describe('SecretSet', () => {
  const set = new SecretSet([
    { label: 'bearer', value: 'tok-0123456789abcdef' },
    { label: 'basic', value: 'hunter2hunter2', basicUser: 'build' },
    { label: 'short', value: 'zq' },
  ]);
  const basic64 = Buffer.from('build:hunter2hunter2').toString('base64');

  it('redacts every form of every secret, short ones included, from relayed text', () => {
    const text = `Authorization: Bearer tok-0123456789abcdef; Basic ${basic64}; pw=hunter2hunter2; zq`;
    const out = set.redact(text);
    expect(out).not.toContain('tok-0123456789abcdef');
    expect(out).not.toContain(basic64);
    expect(out).not.toContain('hunter2hunter2');
    expect(out).toBe(`Authorization: Bearer ${REDACTED}; Basic ${REDACTED}; pw=${REDACTED}; ${REDACTED}`);
  });

  it('redactBytes returns the same buffer when nothing is secret, a redacted copy otherwise', () => {
    const clean = Buffer.from('{"ok":true}');
    expect(set.redactBytes(clean)).toBe(clean);
    expect(set.redactBytes(Buffer.from('key tok-0123456789abcdef end')).toString()).toBe(`key ${REDACTED} end`);
  });

  it('lists short secrets as weak and does not scan bodies for them', () => {
    expect(set.weak).toEqual(['short']);
    expect(set.foundIn('a perfectly normal package body with the letters zq')).toBe(false);
    expect(set.foundIn(`xx${basic64}xx`)).toBe(true);
    expect(set.foundIn(Buffer.from(Buffer.from('tok-0123456789abcdef').toString('base64')))).toBe(true);
  });

  it('finds a secret split across chunks at every possible cut, and nothing in clean streams', () => {
    const secret = 'tok-0123456789abcdef';
    const body = Buffer.from(`${'a'.repeat(100)}${secret}${'b'.repeat(100)}`);
    for (let cut = 1; cut < body.length; cut++) {
      const s = set.scanner();
      const first = s.push(body.subarray(0, cut));
      const second = s.push(body.subarray(cut));
      expect(first || second, `cut at ${cut}`).toBe(true);
    }
    // three pieces, the secret spread over all three (the middle one shorter than the secret)
    const s3 = set.scanner();
    expect(s3.push(Buffer.from('xxtok-01'))).toBe(false);
    expect(s3.push(Buffer.from('2345'))).toBe(false);
    expect(s3.push(Buffer.from('6789abcdefyy'))).toBe(true);
    const clean = set.scanner();
    for (let i = 0; i < 50; i++) expect(clean.push(Buffer.from(`chunk ${i} tok-0123456789abcdeX `))).toBe(false);
  });

  it('an empty set finds and redacts nothing', () => {
    const none = SecretSet.none();
    expect(none.empty).toBe(true);
    expect(none.redact('anything')).toBe('anything');
    expect(none.scanner().push(Buffer.from('anything'))).toBe(false);
  });

  it('knows the percent-encoded form of a secret that has characters URLs escape', () => {
    const odd = new SecretSet([{ label: 'odd', value: 'p@ss/w0rd+key!' }]);
    const pct = encodeURIComponent('p@ss/w0rd+key!');
    expect(odd.redact(`echo?k=${pct}`)).toBe(`echo?k=${REDACTED}`);
    expect(odd.foundIn(`{"u":"/x?k=${pct}"}`)).toBe(true);
  });
});
