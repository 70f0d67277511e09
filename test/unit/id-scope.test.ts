// A token's id scope (issue #15): which ids it allows, and the key its answers are cached under.
import { describe, expect, it } from 'vitest';
import { idScope } from '../../src/protocol/id-scope.js';
import { scopedVulnerabilityPage } from '../../src/protocol/vulnerability.js';

describe('idScope', () => {
  it('is no restriction (undefined) for an empty list or one holding "*"', () => {
    expect(idScope([])).toBeUndefined();
    expect(idScope(['*'])).toBeUndefined();
    expect(idScope(['Contoso.*', '*'])).toBeUndefined();
  });

  it('allows exact ids and prefixes, case-insensitively, and nothing else', () => {
    const s = idScope(['Contoso.*', 'Newtonsoft.Json', 'Fabrikam*'])!;
    for (const id of ['contoso.lib', 'contoso.a.b', 'newtonsoft.json', 'fabrikam', 'fabrikamlib', 'fabrikam.x']) expect(s.allows(id), id).toBe(true);
    // "Contoso.*" needs the dot: neither the bare name nor a longer word; an exact id is not a prefix
    for (const id of ['contoso', 'contosolib', 'contoso-lib', 'newtonsoft.json.bson', 'newtonsoft', 'other.lib', 'xcontoso.lib']) expect(s.allows(id), id).toBe(false);
  });

  it('is handed lowercase ids: a pattern written in any case matches them', () => {
    const s = idScope(['CONTOSO.Core'])!;
    expect(s.allows('contoso.core')).toBe(true);
    expect(s.allows('contoso.core.extra')).toBe(false);
  });

  it('has one key per pattern set: the same for any order, case or repeat, different for another set', () => {
    const a = idScope(['Contoso.*', 'Newtonsoft.Json'])!;
    expect(idScope(['newtonsoft.json', 'CONTOSO.*', 'Contoso.*'])!.key).toBe(a.key);
    expect(idScope(['Contoso.*'])!.key).not.toBe(a.key);
    expect(idScope(['Contoso*', 'Newtonsoft.Json'])!.key).not.toBe(a.key);
    expect(idScope(['Fabrikam.*'])!.key).not.toBe(idScope(['Contoso.*'])!.key);
  });

  it('names no pattern in its key (a key in a log or cache never says which ids a token sees)', () => {
    const s = idScope(['Contoso.Secret.*', 'Fabrikam.Internal'])!;
    expect(s.key).toMatch(/^scope-[0-9a-f]{16}$/);
    expect(s.key.toLowerCase()).not.toContain('contoso');
    expect(s.key.toLowerCase()).not.toContain('fabrikam');
  });

  it('refuses an invalid pattern instead of matching nothing (the config validates first)', () => {
    expect(() => idScope(['Con*toso'])).toThrow(/invalid scope pattern/);
    expect(() => idScope(['bad id'])).toThrow(/invalid scope pattern/);
    expect(() => idScope([''])).toThrow(/invalid scope pattern/);
  });
});

describe('scopedVulnerabilityPage', () => {
  const page = {
    'contoso.lib': [{ severity: 2, url: 'https://example.test/a', versions: '[1.0.0, 2.0.0)' }],
    'Contoso.Mixed': [{ severity: 1, url: 'https://example.test/b', versions: '(, 1.0.0)' }],
    'other.lib': [{ severity: 3, url: 'https://example.test/c', versions: '(, 3.0.0)' }],
  };

  it('keeps the entries of ids the scope allows, as they are, whatever the spelling of the id', () => {
    const s = idScope(['Contoso.*'])!;
    expect(scopedVulnerabilityPage(page, s.allows)).toEqual({ 'contoso.lib': page['contoso.lib'], 'Contoso.Mixed': page['Contoso.Mixed'] });
    expect(scopedVulnerabilityPage(page, idScope(['Fabrikam.*'])!.allows)).toEqual({});
  });

  it('answers an empty page for a document that is not a page', () => {
    const all = (): boolean => true;
    expect(scopedVulnerabilityPage([{ 'contoso.lib': [] }], all)).toEqual({});
    expect(scopedVulnerabilityPage(null, all)).toEqual({});
    expect(scopedVulnerabilityPage('x', all)).toEqual({});
  });
});
