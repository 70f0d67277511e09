// The stored key strings are a format (Redis and the disk hold them across versions): each builder's output is
// pinned here byte for byte, and idOfKey finds the id of every key that names one.
import { describe, expect, it } from 'vitest';
import { idScope, type IdScope } from '../../../src/protocol/id-scope.js';
import { answerKey, idOfKey, keysOfId, memoKind, packageKey, QUERY_GENERATION_KEY, storeKey, vulnerabilityKey } from '../../../src/feed/cache-keys.js';

describe('cache keys', () => {
  it('builds the metadata store keys as every earlier version stored them', () => {
    expect(storeKey.serviceIndex('nuget')).toBe('svc:nuget');
    expect(storeKey.versions('nuget', 'newtonsoft.json')).toBe('flat:nuget:newtonsoft.json');
    expect(storeKey.registration('nuget', 'gz-semver1', 'newtonsoft.json')).toBe('reg:nuget:gz-semver1:newtonsoft.json');
    expect(storeKey.search('0', 'nuget', 'semver2', 'q=json&take=20')).toBe('search:0:nuget:semver2:q=json&take=20');
    expect(storeKey.autocomplete('a1b2c3', 'nuget', 'q=json')).toBe('ac:a1b2c3:nuget:q=json');
    expect(storeKey.vulnerabilityIndex('nuget')).toBe('vuln:nuget:index');
    expect(storeKey.vulnerabilityPage('nuget', 'base', '0123456789abcdef')).toBe('vuln:nuget:page:base:0123456789abcdef');
    expect(QUERY_GENERATION_KEY).toBe('gen:queries');
  });

  it('lists every stored document of an id at an upstream: its version list and its registration in each hive', () => {
    expect(keysOfId('company', 'team.lib').sort()).toEqual(['flat:company:team.lib', 'reg:company:gz-semver1:team.lib', 'reg:company:semver1:team.lib', 'reg:company:semver2:team.lib']);
  });

  it('finds the id of every key that is about one id', () => {
    for (const key of keysOfId('company', 'team.lib')) expect(idOfKey(key), key).toBe('team.lib');
    expect(idOfKey(storeKey.versions('up-0', 'a.b.c'))).toBe('a.b.c');
  });

  it('names answers and memo kinds as the HTTP layer and the render cache know them', () => {
    expect(answerKey.serviceIndex).toBe('index');
    expect(answerKey.versions('a.lib')).toBe('flat:a.lib');
    expect(answerKey.registrationIndex('semver2', 'a.lib')).toBe('reg:semver2:a.lib:index');
    expect(answerKey.registrationPage('semver2', 'a.lib', '1.0.0', '2.0.0')).toBe('reg:semver2:a.lib:page:1.0.0/2.0.0');
    expect(answerKey.registrationLeaf('semver1', 'a.lib', '1.0.0')).toBe('reg:semver1:a.lib:leaf:1.0.0');
    expect(answerKey.search('q=a')).toBe('search:q=a');
    expect(answerKey.autocomplete('q=a')).toBe('ac:q=a');
    expect(answerKey.vulnerabilityIndex).toBe('vuln:index');
    expect(answerKey.vulnerabilityPage('up0-base', 'ff')).toBe('vuln:page:up0-base:ff');
    expect(memoKind.versions).toBe('flat');
    expect(memoKind.registration('gz-semver1')).toBe('gz-semver1');
  });

  it('names a scoped answer apart from the unscoped one and from another scope (issue #15)', () => {
    const contoso = idScope(['Contoso.*'])!;
    const fabrikam = idScope(['Fabrikam.*'])!;
    const kinds = [
      (s?: IdScope) => answerKey.search('q=a', s),
      (s?: IdScope) => answerKey.autocomplete('q=a', s),
      (s?: IdScope) => answerKey.vulnerabilityPage('up0-base', 'ff', s),
    ];
    for (const key of kinds) {
      expect(key(contoso)).toContain(contoso.key);
      expect(new Set([key(), key(contoso), key(fabrikam)]).size).toBe(3);
    }
    expect(answerKey.search('q=a', contoso)).toBe(`search@${contoso.key}:q=a`);
    // no raw query makes an unscoped key equal to a scoped one: ":" right after the kind, "@" for a scope
    expect(answerKey.search(`@${contoso.key}:q=a`)).not.toBe(answerKey.search('q=a', contoso));
    expect(answerKey.search(`${contoso.key}:q=a`)).not.toBe(answerKey.search('q=a', contoso));
  });

  it('keeps the blob layout of packages and vulnerability documents', () => {
    expect(packageKey('a.lib', '1.0.0-beta', 'nupkg')).toBe('packages/a.lib/1.0.0-beta/a.lib.1.0.0-beta.nupkg');
    expect(packageKey('a.lib', '1.0.0-beta', 'nuspec')).toBe('packages/a.lib/1.0.0-beta/a.lib.nuspec');
    expect(vulnerabilityKey('index.json')).toBe('vulnerabilities/index.json');
    expect(vulnerabilityKey({ name: 'up0-base', tag: '0123456789abcdef' })).toBe('vulnerabilities/up0-base/0123456789abcdef.json');
  });
});
