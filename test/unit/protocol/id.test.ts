import { describe, it, expect } from 'vitest';
import { MAX_ID_LENGTH, isValidPackageId, lowerId } from '../../../src/protocol/id.js';

describe('isValidPackageId (§7.6)', () => {
  it.each([
    'a',
    'A',
    '1',
    '_',
    'Newtonsoft.Json',
    'Microsoft.Extensions.DependencyModel',
    'xunit.runner.visualstudio',
    'my-package',
    'My_Package.Core-2',
    'a.b-c.d',
    '__init__',
    'a'.repeat(MAX_ID_LENGTH),
  ])('accepts %j', (id) => {
    expect(isValidPackageId(id)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['too long', 'a'.repeat(MAX_ID_LENGTH + 1)],
    ['leading dot', '.a'],
    ['trailing dot', 'a.'],
    ['leading dash', '-a'],
    ['trailing dash', 'a-'],
    ['double dot', 'a..b'],
    ['dot dash', 'a.-b'],
    ['space', 'a b'],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['path traversal', '..'],
    ['plus', 'a+b'],
    ['percent-encoded', 'a%2Fb'],
    ['non-ASCII letter', 'caf\u00E9'],
    ['non-ASCII digit', 'a\u0661'],
    ['trailing newline', 'a\n'],
    ['surrounding whitespace', ' a '],
  ])('rejects %s: %j', (_name, id) => {
    expect(isValidPackageId(id)).toBe(false);
  });

  it('is 100 characters max', () => {
    expect(MAX_ID_LENGTH).toBe(100);
  });

  it('rejects non-string input defensively', () => {
    expect(isValidPackageId(undefined as unknown as string)).toBe(false);
  });
});

describe('lowerId', () => {
  it.each([
    ['Newtonsoft.Json', 'newtonsoft.json'],
    ['MICROSOFT.Extensions.DependencyModel', 'microsoft.extensions.dependencymodel'],
    ['already.lower', 'already.lower'],
    ['A_B-1', 'a_b-1'],
  ])('%s -> %s', (id, lower) => {
    expect(lowerId(id)).toBe(lower);
  });
});
