// OSV advisories (issue #16) as the OpenSSF malicious-packages repository writes them: what is kept (NuGet MAL-
// entries), what is left out and counted, what is refused naming the file; the AdvisorySet's version matching
// (exact versions, ECOSYSTEM ranges, "every version"), merging by advisory id, and withdrawals.
import { describe, expect, it } from 'vitest';
import { AdvisorySet } from '../../../src/policy/advisories.js';
import { MAX_OSV_FILE_BYTES, parseOsvText, parseOsvValue, toOsv } from '../../../src/policy/osv.js';
import { malEntry } from '../../support/osv.js';

const text = (v: unknown): string => JSON.stringify(v, null, 2);

describe('OSV parsing', () => {
  it('keeps a NuGet MAL- entry: id, modified, summary and the affected package (extra fields dropped)', () => {
    const p = parseOsvText(text(malEntry('MAL-2024-3998', 'AlgoTrading')), 'osv/malicious/nuget/algotrading/MAL-2024-3998.json');
    expect(p.advisories).toEqual([
      { id: 'MAL-2024-3998', modified: '2024-10-24T01:01:57Z', summary: 'Malicious code in AlgoTrading (NuGet)', affected: [{ name: 'AlgoTrading', versions: ['1.0.0', '1.0.1'], ranges: [], all: false }] },
    ]);
    expect(p.ignored).toEqual({ otherEcosystem: 0, withoutSeverity: 0, invalidId: 0 });
  });

  it('reads an array of advisories, and counts (not keeps) other ecosystems, non-MAL advisories and names NuGet cannot have', () => {
    const p = parseOsvText(
      text([
        malEntry('MAL-2024-1', 'Good.Name'),
        malEntry('MAL-2024-2', 'left-pad', { affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['1.0.0'] }] }),
        malEntry('GHSA-aaaa-bbbb-cccc', 'Newtonsoft.Json'),
        // the repository's homoglyph names (Cyrillic letters) can never be requested from a NuGet feed
        malEntry('MAL-2024-3991', '2captcһaapі'),
      ]),
      'all.json',
    );
    expect(p.advisories.map((a) => a.id)).toEqual(['MAL-2024-1']);
    expect(p.ignored).toEqual({ otherEcosystem: 1, withoutSeverity: 1, invalidId: 1 });
  });

  it('an entry with an empty id (the repository\'s new "MAL-0000-…" reports) takes its file name', () => {
    const p = parseOsvText(text(malEntry('', 'AlgoTrading')), 'nuget/algotrading/MAL-0000-ghsa-malware-cefac5f80f58d5b1.json');
    expect(p.advisories[0]!.id).toBe('MAL-0000-ghsa-malware-cefac5f80f58d5b1');
    expect(parseOsvText(text(malEntry('', 'AlgoTrading')), 'advisory.json').ignored.withoutSeverity).toBe(1);
  });

  it('ranges: ECOSYSTEM and SEMVER kept, GIT ones left out; no versions and no usable range means every version', () => {
    const p = parseOsvValue(
      [
        malEntry('MAL-1', 'Ranged', { affected: [{ package: { ecosystem: 'NuGet', name: 'Ranged' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '2.0.0' }, { fixed: '2.1.0' }] }] }] }),
        malEntry('MAL-2', 'Everything', { affected: [{ package: { ecosystem: 'NuGet', name: 'Everything' } }] }),
        malEntry('MAL-3', 'GitOnly', { affected: [{ package: { ecosystem: 'NuGet', name: 'GitOnly' }, ranges: [{ type: 'GIT', repo: 'https://example.com/r', events: [{ introduced: 'abc' }] }] }] }),
      ],
      'x.json',
    );
    expect(p.advisories.map((a) => a.affected[0])).toEqual([
      { name: 'Ranged', versions: [], ranges: [[{ introduced: '2.0.0' }, { fixed: '2.1.0' }]], all: false },
      { name: 'Everything', versions: [], ranges: [], all: true },
      { name: 'GitOnly', versions: [], ranges: [], all: true },
    ]);
  });

  it('keeps a NuGet advisory with a severity (as GitHub\'s carry it) for the vulnerable rule, with its advisory URL', () => {
    const ghsa = malEntry('GHSA-5crp-9r3c-p9vr', 'Newtonsoft.Json', {
      summary: 'Improper Handling of Exceptional Conditions in Newtonsoft.Json',
      database_specific: { severity: 'HIGH', cwe_ids: ['CWE-755'], github_reviewed: true },
      references: [{ type: 'WEB', url: 'https://example.com/x' }, { type: 'ADVISORY', url: 'https://github.com/advisories/GHSA-5crp-9r3c-p9vr' }],
      affected: [{ package: { ecosystem: 'NuGet', name: 'Newtonsoft.Json' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '13.0.1' }] }] }],
    });
    const noVersions = malEntry('GHSA-xxxx-yyyy-zzzz', 'Some.Lib', { database_specific: { severity: 'LOW' }, affected: [{ package: { ecosystem: 'NuGet', name: 'Some.Lib' } }] });
    const p = parseOsvValue([ghsa, noVersions], 'ghsa.json');
    expect(p.advisories).toEqual([
      {
        id: 'GHSA-5crp-9r3c-p9vr',
        modified: '2024-10-24T01:01:57Z',
        summary: 'Improper Handling of Exceptional Conditions in Newtonsoft.Json',
        severity: 2,
        url: 'https://github.com/advisories/GHSA-5crp-9r3c-p9vr',
        affected: [{ name: 'Newtonsoft.Json', versions: [], ranges: [[{ introduced: '0' }, { fixed: '13.0.1' }]], all: false }],
      },
    ]); // a vulnerability naming no versions is not "every version": left out
    const set = new AdvisorySet(p.advisories);
    expect(set.vulnerabilities('newtonsoft.json', '12.0.3')).toEqual([{ severity: 2, advisoryUrl: 'https://github.com/advisories/GHSA-5crp-9r3c-p9vr' }]);
    expect(set.vulnerabilities('newtonsoft.json', '13.0.1')).toEqual([]);
    expect(set.match('newtonsoft.json', '12.0.3')).toBeUndefined(); // not a malicious package
    expect([set.size, set.vulnerabilityAdvisories]).toEqual([1, 1]);
    expect(parseOsvValue(toOsv(p.advisories[0]!), 'stored').advisories).toEqual(p.advisories);
  });

  it('withdrawn entries are listed to be removed, not kept', () => {
    const p = parseOsvText(text(malEntry('MAL-2024-5', 'Was.Bad', { withdrawn: '2024-11-01T00:00:00Z' })), 'MAL-2024-5.json');
    expect(p.advisories).toEqual([]);
    expect(p.withdrawn).toEqual(['MAL-2024-5']);
  });

  it('refuses what is not an advisory file, naming the file', () => {
    expect(() => parseOsvText('{"id": "MAL-1", ', 'dir/broken.json')).toThrow(/^dir\/broken\.json: not JSON/);
    expect(() => parseOsvText('"just a string"', 'dir/s.json')).toThrow(/^dir\/s\.json: not an OSV advisory/);
    expect(() => parseOsvText(text({ name: 'nuproxy', version: '1.0.0' }), 'package.json')).toThrow(/^package\.json: not an OSV advisory/);
    expect(() => parseOsvText(text([malEntry('MAL-1', 'A'), 7]), 'arr.json')).toThrow(/^arr\.json \[1\]: not an OSV advisory/);
    expect(() => parseOsvText(text(malEntry('MAL-1', 'A', { affected: { nope: 1 } })), 'a.json')).toThrow(/"affected" is not an array/);
    expect(() =>
      parseOsvText(text(malEntry('MAL-1', 'A', { affected: [{ package: { ecosystem: 'NuGet', name: 'A' }, versions: [1, 2] }] })), 'v.json'),
    ).toThrow(/^v\.json: "versions" of A/);
    expect(() => parseOsvText(' '.repeat(MAX_OSV_FILE_BYTES + 1), 'huge.json')).toThrow(/^huge\.json: larger than/);
  });
});

describe('AdvisorySet', () => {
  const set = new AdvisorySet(
    parseOsvValue(
      [
        malEntry('MAL-2024-3998', 'AlgoTrading', { affected: [{ package: { ecosystem: 'NuGet', name: 'AlgoTrading' }, versions: ['1.0.0', '3.2.57', '1.0.0.0', 'not-a-version'] }] }),
        malEntry('MAL-2', 'Ranged', {
          affected: [{ package: { ecosystem: 'NuGet', name: 'Ranged' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '2.0.0' }, { fixed: '2.1.0' }, { introduced: '3.0.0-beta' }, { last_affected: '3.5.0' }] }] }],
        }),
        malEntry('MAL-3', 'Everything', { affected: [{ package: { ecosystem: 'NuGet', name: 'Everything' } }] }),
        malEntry('MAL-4', 'FromZero', { affected: [{ package: { ecosystem: 'NuGet', name: 'FromZero' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }] }] }),
      ],
      't.json',
    ).advisories,
  );

  it('matches exact versions normalized, by lowercase id', () => {
    expect(set.match('algotrading', '3.2.57')?.id).toBe('MAL-2024-3998');
    expect(set.match('algotrading', '1.0.0')?.summary).toBe('Malicious code in AlgoTrading (NuGet)');
    expect(set.match('algotrading', '1.0.1')).toBeUndefined();
    expect(set.match('other', '1.0.0')).toBeUndefined();
    expect([set.size, set.packageIds, set.names('ranged'), set.names('nope')]).toEqual([4, 4, true, false]);
  });

  it('evaluates ranges in NuGet version order: introduced on, fixed off, last_affected inclusive', () => {
    const hits = ['1.9.9', '2.0.0', '2.0.5', '2.1.0', '3.0.0-alpha', '3.0.0-beta', '3.0.0', '3.5.0', '3.5.1'].map((v) => set.match('ranged', v) !== undefined);
    expect(hits).toEqual([false, true, true, false, false, true, true, true, false]);
    expect(set.match('fromzero', '0.0.1')?.id).toBe('MAL-4');
    expect(set.match('everything', '99.0.0')?.id).toBe('MAL-3');
  });

  it('merges by advisory id: the newer modified wins, withdrawn ids go, changes are counted', () => {
    const updated = parseOsvValue([malEntry('MAL-3', 'Everything', { modified: '2025-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'NuGet', name: 'Everything' }, versions: ['1.0.0'] }] }), malEntry('MAL-9', 'New.One')], 'u.json');
    const older = parseOsvValue([malEntry('MAL-4', 'FromZero', { modified: '2000-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'NuGet', name: 'FromZero' }, versions: ['9.9.9'] }] })], 'o.json');
    const r = set.merge([...updated.advisories, ...older.advisories], ['MAL-2', 'MAL-404']);
    expect({ added: r.added, updated: r.updated, removed: r.removed, size: r.set.size }).toEqual({ added: 1, updated: 1, removed: 1, size: 4 });
    expect(r.set.match('everything', '2.0.0')).toBeUndefined(); // the newer entry names 1.0.0 only
    expect(r.set.match('fromzero', '0.0.1')?.id).toBe('MAL-4'); // the older import did not win
    expect(r.set.match('ranged', '2.0.0')).toBeUndefined();
    expect(set.match('ranged', '2.0.0')).toBeDefined(); // sets are immutable
    expect(r.set.revision).not.toBe(set.revision);
    expect(new AdvisorySet(set.advisories.values()).revision).toBe(set.revision);
    // times are compared as times: 10:00+02:00 is earlier than 09:00Z
    const a = parseOsvValue([malEntry('MAL-5', 'Tz', { modified: '2025-01-01T09:00:00Z', affected: [{ package: { ecosystem: 'NuGet', name: 'Tz' }, versions: ['1.0.0'] }] })], 'a').advisories;
    const b = parseOsvValue([malEntry('MAL-5', 'Tz', { modified: '2025-01-01T10:00:00+02:00', affected: [{ package: { ecosystem: 'NuGet', name: 'Tz' }, versions: ['2.0.0'] }] })], 'b').advisories;
    expect(new AdvisorySet(a).merge(b).set.match('tz', '1.0.0')?.id).toBe('MAL-5');
  });

  it('an advisory written back as OSV (the stored form) reads back the same', () => {
    for (const a of set.advisories.values()) expect(parseOsvValue(toOsv(a), 'stored').advisories).toEqual([a]);
  });
});
