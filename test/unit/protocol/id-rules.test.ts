import { describe, expect, it } from 'vitest';
import { IdRouter, matchesPattern, ownershipConflicts, patternError, type UpstreamRules } from '../../../src/protocol/id-rules.js';

const up = (name: string, rules: Partial<Omit<UpstreamRules, 'name'>> = {}): UpstreamRules => ({
  name,
  include: [],
  exclude: [],
  owns: [],
  ...rules,
});

describe('patternError', () => {
  it.each([
    'Newtonsoft.Json',
    'newtonsoft.json',
    'Contoso.*',
    'Contoso*',
    'Contoso-*',
    'Contoso_Lib',
    '*',
    'a',
    'a'.repeat(100),
    `${'a'.repeat(100)}*`,
    'Contoso..*', // a prefix is only checked for characters; it simply matches nothing valid
  ])('accepts %j', (p) => {
    expect(patternError(p)).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['Con*toso', /only once, at the end/],
    ['**', /only once, at the end/],
    ['*.Json', /only once, at the end/],
    ['Contoso.*.*', /only once, at the end/],
    [' Contoso.*', /only letters/],
    ['Contoso .Lib', /only letters/],
    ['Contoso/Lib', /only letters/],
    ['Contoso?', /only letters/],
    ['Cöntoso', /only letters/],
    ['a'.repeat(101), /not a valid package id/],
    [`${'a'.repeat(101)}*`, /too long/],
    ['a'.repeat(102), /too long/],
    ['.Contoso', /not a valid package id/],
    ['Contoso.', /not a valid package id/],
    ['Contoso..Lib', /not a valid package id/],
  ] as const)('rejects %j', (p, msg) => {
    expect(patternError(p)).toMatch(msg);
  });
});

describe('matchesPattern', () => {
  it.each([
    ['Newtonsoft.Json', 'newtonsoft.json', true],
    ['NEWTONSOFT.JSON', 'newtonsoft.json', true],
    ['Newtonsoft.Json', 'newtonsoft.json.bson', false],
    ['Newtonsoft.Json', 'newtonsoft', false],
    ['Contoso.*', 'contoso.lib', true],
    ['Contoso.*', 'contoso.internal.data', true],
    ['Contoso.*', 'contoso', false],
    ['Contoso.*', 'contosolib', false],
    ['Contoso*', 'contosolib', true],
    ['Contoso*', 'contoso', true],
    ['Contoso*', 'contoso.lib', true],
    ['contoso.*', 'mycontoso.lib', false],
    ['*', 'anything.at.all', true],
    ['Con*toso', 'contoso', false], // invalid patterns match nothing
    ['', 'x', false],
  ] as const)('%j vs %j -> %s', (p, id, want) => {
    expect(matchesPattern(p, id)).toBe(want);
  });
});

describe('ownershipConflicts', () => {
  it.each([
    ['Contoso.*', 'contoso.internal.*'],
    ['contoso.internal.*', 'Contoso.*'],
    ['Contoso.*', 'Contoso.Lib'],
    ['Contoso.Lib', 'Contoso.*'],
    ['Contoso*', 'Contoso.*'],
    ['Contoso*', 'Contoso'],
    ['*', 'Anything'],
    ['Anything.*', '*'],
    ['*', '*'],
    ['Contoso.Lib', 'CONTOSO.LIB'],
  ])('%j on one upstream and %j on another conflict', (a, b) => {
    const c = ownershipConflicts([up('company', { owns: [a] }), up('public', { owns: ['Mine.Only', b] })]);
    expect(c).toHaveLength(a === '*' ? 2 : 1); // '*' also overlaps "Mine.Only"
    const hit = c.find((x) => x.index === 1)!;
    expect(hit.upstream).toBe(1);
    expect(hit.message).toContain('"company"');
    expect(hit.message).toContain('"public"');
    expect(hit.message).toContain(JSON.stringify(a));
    expect(hit.message).toContain(JSON.stringify(b));
  });

  it.each([
    ['Contoso.*', 'Fabrikam.*'],
    ['Contoso.*', 'Contoso'], // "contoso" does not start with "contoso."
    ['Contoso.*', 'ContosoLib'],
    ['Contoso.Lib', 'Contoso.Lib2'],
    ['Contoso.Lib.*', 'Contoso.Lib'],
  ])('%j and %j do not conflict', (a, b) => {
    expect(ownershipConflicts([up('a', { owns: [a] }), up('b', { owns: [b] })])).toEqual([]);
  });

  it('allows overlapping patterns on the same upstream', () => {
    expect(ownershipConflicts([up('a', { owns: ['Contoso.*', 'Contoso.Internal.*', 'Contoso.Lib', '*'] }), up('b')])).toEqual([]);
  });

  it('reports every conflicting pair, at the later upstream, and ignores invalid patterns', () => {
    const c = ownershipConflicts([
      up('a', { owns: ['Contoso.*'] }),
      up('b', { owns: ['Con*toso', 'Contoso.Lib'] }),
      up('c', { owns: ['Contoso.Lib*'] }),
    ]);
    expect(c.map((x) => [x.upstream, x.index])).toEqual([
      [1, 1],
      [2, 0],
      [2, 0],
    ]);
    expect(c[2]!.message).toMatch(/"c".*"Contoso\.Lib\*".*"Contoso\.Lib".*"b"/);
  });
});

describe('IdRouter', () => {
  const router = new IdRouter([
    up('company', { owns: ['Contoso.*'], include: ['Contoso.*', 'Company.*'], exclude: ['Contoso.Legacy'] }),
    up('nuget.org', { exclude: ['Evil.*'] }),
    up('mirror', { include: ['Newtonsoft.*', 'Serilog'] }),
  ]);

  it.each([
    // id, allowed, owner
    ['contoso.lib', ['company'], 'company'],
    ['contoso.legacy', ['company'], 'company'], // owning implies serving: its own exclude does not apply
    ['company.tools', ['company', 'nuget.org'], undefined],
    ['newtonsoft.json', ['nuget.org', 'mirror'], undefined],
    ['serilog', ['nuget.org', 'mirror'], undefined],
    ['serilog.sinks.console', ['nuget.org'], undefined],
    ['evil.package', [], undefined],
  ] as const)('%s -> %j', (id, allowed, owner) => {
    const r = router.route(id);
    expect(r.lowerId).toBe(id);
    expect(r.allowed).toEqual(allowed);
    expect(r.owner).toBe(owner);
    expect(r.decisions.map((d) => d.upstream)).toEqual(['company', 'nuget.org', 'mirror']);
    expect(r.decisions.filter((d) => d.allowed).map((d) => d.upstream)).toEqual(allowed);
  });

  it('explains every decision', () => {
    expect(router.route('contoso.lib')).toEqual({
      lowerId: 'contoso.lib',
      owner: 'company',
      ownerPattern: 'Contoso.*',
      allowed: ['company'],
      decisions: [
        { upstream: 'company', allowed: true, reason: 'owns "Contoso.*"' },
        { upstream: 'nuget.org', allowed: false, reason: 'owned by company ("Contoso.*")' },
        { upstream: 'mirror', allowed: false, reason: 'owned by company ("Contoso.*")' },
      ],
    });
    expect(router.route('evil.package').decisions).toEqual([
      { upstream: 'company', allowed: false, reason: 'not included (include: ["Contoso.*","Company.*"])' },
      { upstream: 'nuget.org', allowed: false, reason: 'excluded by "Evil.*"' },
      { upstream: 'mirror', allowed: false, reason: 'not included (include: ["Newtonsoft.*","Serilog"])' },
    ]);
    expect(router.route('company.tools').decisions[1]).toEqual({ upstream: 'nuget.org', allowed: true, reason: 'allowed' });
  });

  it('matches case-insensitively and memoizes', () => {
    const r = router.route('Contoso.LIB');
    expect(r.lowerId).toBe('contoso.lib');
    expect(router.route('contoso.lib')).toBe(r);
    expect(Object.isFrozen(r)).toBe(true);
  });

  it('keeps the memo bounded and still answers correctly after eviction', () => {
    const r = new IdRouter([up('a', { owns: ['A.*'] }), up('b')]);
    const first = r.route('a.0');
    for (let i = 1; i <= 10_050; i++) r.route(`a.${i}`);
    const again = r.route('a.0');
    expect(again).not.toBe(first); // evicted, recomputed
    expect(again).toEqual(first);
    expect((r as unknown as { memo: Map<string, unknown> }).memo.size).toBeLessThanOrEqual(10_000);
  });

  it('with no rules every upstream serves every id, in priority order', () => {
    const r = new IdRouter([up('x'), up('y')]).route('anything');
    expect(r.allowed).toEqual(['x', 'y']);
    expect(r.owner).toBeUndefined();
    expect(r.ownerPattern).toBeUndefined();
  });

  it('with an unvalidated conflicting config, the first owner in priority order wins', () => {
    const r = new IdRouter([up('x', { owns: ['A.*'] }), up('y', { owns: ['A.B'] })]).route('a.b');
    expect(r.owner).toBe('x');
    expect(r.allowed).toEqual(['x']);
  });

  it('an owner whose include list would not match still serves the owned id', () => {
    const r = new IdRouter([up('pub'), up('priv', { owns: ['Secret.*'], include: ['Other.*'] })]).route('secret.sauce');
    expect(r.allowed).toEqual(['priv']);
    expect(r.decisions[0]).toEqual({ upstream: 'pub', allowed: false, reason: 'owned by priv ("Secret.*")' });
  });
});
