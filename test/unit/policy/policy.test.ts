// The policy engine without a server (issue #16): each rule, its exemptions, the fixed order, per-upstream
// overrides (the upstream that wins a version decides), `needs`, `active` and the fingerprint. Policies are built
// from configs validated by the real schema, as the server builds them.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { AdvisorySet } from '../../../src/policy/advisories.js';
import type { VersionFacts } from '../../../src/policy/decision.js';
import { parseOsvText } from '../../../src/policy/osv.js';
import { compilePolicy, formatDuration, upstreamOverrides } from '../../../src/policy/policy.js';

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

function policyOf(policy: unknown, upstreams?: unknown[], advisories = new AdvisorySet()) {
  const raw: Record<string, unknown> = { policy };
  raw.upstreams = upstreams ?? [
    { name: 'public', serviceIndex: 'https://public.example/v3/index.json' },
    { name: 'company', serviceIndex: 'https://company.example/v3/index.json' },
  ];
  const { config } = validateConfig(raw);
  return compilePolicy(config.policy, upstreamOverrides(config.upstreams), advisories);
}

function facts(over: Partial<VersionFacts> = {}): VersionFacts {
  return { lowerId: 'some.lib', lowerVersion: '1.2.3', upstream: 'public', published: iso(NOW - 30 * DAY), listed: true, licenseExpression: 'MIT', ...over };
}

const MAL = JSON.stringify({
  schema_version: '1.5.0',
  id: 'MAL-2024-3998',
  modified: '2024-10-24T01:01:57Z',
  summary: 'Malicious code in AlgoTrading (NuGet)',
  affected: [{ package: { ecosystem: 'NuGet', name: 'AlgoTrading', purl: 'pkg:nuget/AlgoTrading' }, versions: ['1.0.0', '3.2.57'] }],
});

describe('compilePolicy', () => {
  it('is inactive with the defaults: nothing is needed and every version is allowed', () => {
    const p = policyOf({});
    expect(p.active).toBe(false);
    expect(p.needs).toEqual({ published: false, license: false, vulnerabilities: false });
    expect(p.decide(facts({ published: iso(NOW) }), NOW)).toEqual({ allowed: true });
  });

  it('malicious (on by default) makes the policy active only once advisories are imported', () => {
    const advisories = new AdvisorySet(parseOsvText(MAL, 'MAL-2024-3998.json').advisories);
    const p = policyOf({}, undefined, advisories);
    expect(p.active).toBe(true);
    expect(p.needs).toEqual({ published: false, license: false, vulnerabilities: false });
    const d = p.decide(facts({ lowerId: 'algotrading', lowerVersion: '3.2.57' }), NOW);
    expect(d).toMatchObject({ allowed: false, rule: 'malicious' });
    expect(d.reason).toContain('MAL-2024-3998');
    expect(d.reason).toContain('Malicious code in AlgoTrading');
    expect(p.decide(facts({ lowerId: 'algotrading', lowerVersion: '2.0.0' }), NOW).allowed).toBe(true);
    expect(policyOf({ malicious: false }, undefined, advisories).active).toBe(false);
  });

  describe('minimumAge', () => {
    const p = policyOf({ minimumAge: '3d' });

    it('blocks a version younger than the age, with the date, the age and the key in the reason', () => {
      expect(p.active).toBe(true);
      expect(p.needs).toEqual({ published: true, license: false, vulnerabilities: false });
      const d = p.decide(facts({ published: iso(NOW - DAY - 3600_000) }), NOW);
      expect(d).toEqual({ allowed: false, rule: 'minimumAge', reason: 'published 2026-12-01, 1 day ago; policy.minimumAge is 3d (offered from 2026-12-04T11:00Z)' });
      expect(p.decide(facts({ published: iso(NOW - 5 * 3600_000) }), NOW).reason).toContain('5 hours ago');
    });

    it('allows a version exactly as old as the age or older, an unlisted one (1900), and one without a known date', () => {
      expect(p.decide(facts({ published: iso(NOW - 3 * DAY) }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ published: '1900-01-01T00:00:00+00:00', listed: false }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ published: '1900-01-01T00:00:00+00:00' }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ published: iso(NOW), listed: false }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ published: undefined }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ published: 'not a date' }), NOW).allowed).toBe(true);
    });

    it('exemptions by id pattern and by exact version let young versions through, and say so', () => {
      const e = policyOf({ minimumAge: '3d', exempt: { minimumAge: ['Contoso.*', 'Newtonsoft.Json@13.0.4'] } });
      const young = iso(NOW - 3600_000);
      expect(e.decide(facts({ lowerId: 'contoso.core', published: young }), NOW)).toEqual({ allowed: true, exempted: ['minimumAge'] });
      expect(e.decide(facts({ lowerId: 'newtonsoft.json', lowerVersion: '13.0.4', published: young }), NOW)).toEqual({ allowed: true, exempted: ['minimumAge'] });
      expect(e.decide(facts({ lowerId: 'newtonsoft.json', lowerVersion: '13.0.5', published: young }), NOW).rule).toBe('minimumAge');
      // an exemption for one rule is not one for another
      expect(policyOf({ minimumAge: '3d', exempt: { licenses: ['*'] } }).decide(facts({ published: young }), NOW).rule).toBe('minimumAge');
    });
  });

  describe('vulnerable', () => {
    const p = policyOf({ vulnerable: 'high' });

    it('blocks a version with an advisory at or above the severity, naming the advisory', () => {
      expect(p.needs).toEqual({ published: false, license: false, vulnerabilities: true });
      const d = p.decide(facts({ vulnerabilities: [{ severity: 1 }, { severity: 2, advisoryUrl: 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc' }] }), NOW);
      expect(d).toEqual({ allowed: false, rule: 'vulnerable', reason: 'has an advisory of severity high (https://github.com/advisories/GHSA-aaaa-bbbb-cccc); policy.vulnerable is high' });
      const two = p.decide(facts({ vulnerabilities: [{ severity: 2 }, { severity: 3, advisoryUrl: 'https://x.example/a' }] }), NOW);
      expect(two.reason).toBe('has 2 advisories at or above high, the worst critical (https://x.example/a); policy.vulnerable is high');
    });

    it('allows advisories below the severity, and none', () => {
      expect(p.decide(facts({ vulnerabilities: [{ severity: 0 }, { severity: 1 }] }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ vulnerabilities: [] }), NOW).allowed).toBe(true);
      expect(p.decide(facts(), NOW).allowed).toBe(true);
      expect(policyOf({ vulnerable: 'low' }).decide(facts({ vulnerabilities: [{ severity: 0 }] }), NOW).rule).toBe('vulnerable');
    });

    it('imported advisories with a severity count beside the upstream\'s; the fingerprint follows them', () => {
      const ghsa = {
        id: 'GHSA-aaaa-bbbb-cccc',
        modified: '2025-01-01T00:00:00Z',
        database_specific: { severity: 'CRITICAL' },
        references: [{ type: 'ADVISORY', url: 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc' }],
        affected: [{ package: { ecosystem: 'NuGet', name: 'Some.Lib' }, versions: ['1.2.3'] }],
      };
      let current = new AdvisorySet();
      const { config } = validateConfig({ policy: { vulnerable: 'high' } });
      const live = compilePolicy(config.policy, new Map(), () => current);
      const before = live.fingerprint;
      expect(live.decide(facts(), NOW).allowed).toBe(true);
      current = new AdvisorySet(parseOsvText(JSON.stringify(ghsa), 'ghsa.json').advisories);
      expect(live.fingerprint).not.toBe(before);
      expect(live.decide(facts({ vulnerabilities: [{ severity: 2 }] }), NOW).reason).toBe(
        'has 2 advisories at or above high, the worst critical (https://github.com/advisories/GHSA-aaaa-bbbb-cccc); policy.vulnerable is high',
      );
      expect(live.decide(facts({ lowerVersion: '1.2.4' }), NOW).allowed).toBe(true);
      // with the vulnerable rule off, imported vulnerability advisories block nothing (malicious reads only MAL-)
      const off = compilePolicy(validateConfig({}).config.policy, new Map(), current);
      expect(off.active).toBe(false);
      expect(off.decide(facts(), NOW).allowed).toBe(true);
    });

    it('is exempted per id or exact version', () => {
      const e = policyOf({ vulnerable: 'low', exempt: { vulnerable: ['Some.Lib@1.2.3'] } });
      expect(e.decide(facts({ vulnerabilities: [{ severity: 3 }] }), NOW)).toEqual({ allowed: true, exempted: ['vulnerable'] });
      expect(e.decide(facts({ lowerVersion: '1.2.4', vulnerabilities: [{ severity: 3 }] }), NOW).rule).toBe('vulnerable');
    });
  });

  describe('deny', () => {
    it('blocks ids, prefixes and exact versions, naming the entry', () => {
      const p = policyOf({ deny: ['Evil.*', 'Bad.Lib', 'Some.Lib@1.2.3'] });
      expect(p.active).toBe(true);
      expect(p.needs).toEqual({ published: false, license: false, vulnerabilities: false });
      expect(p.decide(facts({ lowerId: 'evil.core' }), NOW)).toEqual({ allowed: false, rule: 'deny', reason: '"Evil.*" is in policy.deny' });
      expect(p.decide(facts({ lowerId: 'bad.lib', lowerVersion: '9.0.0' }), NOW).reason).toBe('"Bad.Lib" is in policy.deny');
      expect(p.decide(facts(), NOW).reason).toBe('"Some.Lib@1.2.3" is in policy.deny');
      expect(p.decide(facts({ lowerVersion: '1.2.4' }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ lowerId: 'evilcorp' }), NOW).allowed).toBe(true);
    });

    it('an exact entry is compared normalized: "1.2.3.0" names 1.2.3', () => {
      expect(policyOf({ deny: ['Some.Lib@1.2.3.0'] }).decide(facts(), NOW).rule).toBe('deny');
    });
  });

  describe('licenses', () => {
    const p = policyOf({ licenses: { allow: ['MIT', 'Apache-2.0'] } });

    it('allows listed ids and expressions they satisfy; blocks others naming the licence', () => {
      expect(p.needs).toEqual({ published: false, license: true, vulnerabilities: false });
      expect(p.decide(facts({ licenseExpression: 'mit' }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ licenseExpression: 'GPL-3.0-only OR Apache-2.0' }), NOW).allowed).toBe(true);
      const d = p.decide(facts({ licenseExpression: 'MIT AND GPL-3.0-only' }), NOW);
      expect(d).toEqual({ allowed: false, rule: 'licenses', reason: 'licence "MIT AND GPL-3.0-only" is not allowed by policy.licenses.allow (MIT, Apache-2.0)' });
    });

    it('a package with only a licence URL, or an expression not understood, is `other`: allowed by default, blocked with other: block', () => {
      expect(p.decide(facts({ licenseExpression: undefined, licenseUrl: 'https://example.com/LICENSE.txt' }), NOW).allowed).toBe(true);
      expect(p.decide(facts({ licenseExpression: 'MIT OR' }), NOW).allowed).toBe(true);
      const strict = policyOf({ licenses: { allow: ['MIT'], other: 'block' } });
      expect(strict.decide(facts({ licenseExpression: undefined, licenseUrl: 'https://example.com/LICENSE.txt' }), NOW)).toEqual({
        allowed: false,
        rule: 'licenses',
        reason: 'has only a licence URL or file (https://example.com/LICENSE.txt); policy.licenses.other is block',
      });
      expect(strict.decide(facts({ licenseExpression: 'MIT OR' }), NOW).reason).toBe('licence expression "MIT OR" is not understood; policy.licenses.other is block');
      expect(strict.decide(facts({ licenseExpression: undefined }), NOW).reason).toBe('has no licence expression; policy.licenses.other is block');
    });

    it('with other: list, such a package is offered and listed with the reason (for /explain); a disallowed expression is still blocked', () => {
      const review = policyOf({ licenses: { allow: ['MIT'], other: 'list' } });
      expect(review.decide(facts({ licenseExpression: undefined, licenseUrl: 'https://example.com/LICENSE.txt' }), NOW)).toEqual({
        allowed: true,
        listed: ['has only a licence URL or file (https://example.com/LICENSE.txt); policy.licenses.other is list (offered)'],
      });
      expect(review.decide(facts({ licenseExpression: 'GPL-3.0-only' }), NOW)).toMatchObject({ allowed: false, rule: 'licenses' });
      expect(review.decide(facts({ licenseExpression: 'MIT' }), NOW)).toEqual({ allowed: true });
    });

    it('is exempted per id', () => {
      const e = policyOf({ licenses: { allow: ['MIT'], other: 'block' }, exempt: { licenses: ['Contoso.*'] } });
      expect(e.decide(facts({ lowerId: 'contoso.lib', licenseExpression: 'LicenseRef-Contoso' }), NOW)).toEqual({ allowed: true, exempted: ['licenses'] });
    });
  });

  it('rules are checked in order deny, malicious, vulnerable, minimumAge, licenses; exemptions of earlier rules are listed', () => {
    const advisories = new AdvisorySet(parseOsvText(MAL, 'MAL-2024-3998.json').advisories);
    const p = policyOf({ deny: ['AlgoTrading@1.0.0'], vulnerable: 'low', minimumAge: '3d', licenses: { allow: ['MIT'] }, exempt: { vulnerable: ['AlgoTrading'] } }, undefined, advisories);
    const all = { lowerId: 'algotrading', published: iso(NOW), licenseExpression: 'GPL-3.0-only', vulnerabilities: [{ severity: 3 as const }] };
    expect(p.decide(facts({ ...all, lowerVersion: '1.0.0' }), NOW).rule).toBe('deny');
    expect(p.decide(facts({ ...all, lowerVersion: '3.2.57' }), NOW).rule).toBe('malicious');
    expect(p.decide(facts({ ...all, lowerId: 'other', lowerVersion: '3.2.57' }), NOW).rule).toBe('vulnerable');
    expect(p.decide(facts({ ...all, lowerVersion: '2.0.0' }), NOW)).toMatchObject({ allowed: false, rule: 'minimumAge', exempted: ['vulnerable'] });
    expect(p.decide(facts({ ...all, lowerVersion: '2.0.0', published: iso(NOW - 9 * DAY) }), NOW)).toMatchObject({ rule: 'licenses', exempted: ['vulnerable'] });
  });

  describe('per-upstream overrides: the upstream that wins a version decides', () => {
    const p = policyOf({ minimumAge: '3d', licenses: { allow: ['MIT'] } }, [
      { name: 'public', serviceIndex: 'https://public.example/v3/index.json' },
      { name: 'company', serviceIndex: 'https://company.example/v3/index.json', policy: { minimumAge: 0, exempt: { licenses: ['*'] } } },
      { name: 'partner', serviceIndex: 'https://partner.example/v3/index.json', policy: { minimumAge: '7d' } },
    ]);
    const young = facts({ published: iso(NOW - 4 * DAY), licenseExpression: 'LicenseRef-Company' });

    it('an override replaces the keys it gives and keeps the others; the reason names the key it came from', () => {
      expect(p.decide({ ...young, upstream: 'company' }, NOW)).toEqual({ allowed: true, exempted: ['licenses'] });
      expect(p.decide({ ...young, upstream: 'public' }, NOW)).toMatchObject({ rule: 'licenses', reason: expect.stringContaining('policy.licenses.allow') });
      const partner = p.decide({ ...young, upstream: 'partner', licenseExpression: 'MIT' }, NOW);
      expect(partner).toMatchObject({ allowed: false, rule: 'minimumAge' });
      expect(partner.reason).toContain('upstreams[partner].policy.minimumAge is 7d');
      // an upstream the config does not know (or a local feed) gets the global rules
      expect(p.decide({ ...young, upstream: 'elsewhere', licenseExpression: 'MIT' }, NOW).allowed).toBe(true);
      expect(p.decide({ ...young, upstream: 'COMPANY' }, NOW).allowed).toBe(true);
    });

    it('needs and active cover every upstream\'s rules', () => {
      const onlyOverride = policyOf({}, [
        { name: 'public', serviceIndex: 'https://public.example/v3/index.json', policy: { vulnerable: 'critical' } },
      ]);
      expect(onlyOverride.active).toBe(true);
      expect(onlyOverride.needs).toEqual({ published: false, license: false, vulnerabilities: true });
      expect(onlyOverride.decide(facts({ vulnerabilities: [{ severity: 3 }] }), NOW).reason).toContain('upstreams[public].policy.vulnerable is critical');
    });
  });

  it('the fingerprint changes with the rules and with the advisories, not otherwise', () => {
    const a = policyOf({ minimumAge: '3d' });
    expect(policyOf({ minimumAge: '3d' }).fingerprint).toBe(a.fingerprint);
    expect(policyOf({ minimumAge: '4d' }).fingerprint).not.toBe(a.fingerprint);
    let current = new AdvisorySet();
    const live = policyOf({ minimumAge: '3d' }, undefined, new AdvisorySet());
    const { config } = validateConfig({ policy: { minimumAge: '3d' } });
    const watched = compilePolicy(config.policy, new Map(), () => current);
    const before = watched.fingerprint;
    expect(before).toBe(live.fingerprint);
    current = new AdvisorySet(parseOsvText(MAL, 'x.json').advisories);
    expect(watched.fingerprint).not.toBe(before);
    expect(watched.decide(facts({ lowerId: 'algotrading', lowerVersion: '1.0.0', published: iso(NOW - 9 * DAY) }), NOW).rule).toBe('malicious');
  });

  it('formats durations as config writes them', () => {
    expect([3 * DAY, 12 * 3600_000, 90 * 60_000, 30_000, 1500].map(formatDuration)).toEqual(['3d', '12h', '90m', '30s', '1500ms']);
  });
});
