// The licence rule's expression reading (issue #16): SPDX ids joined by OR / AND, parentheses, WITH and "+",
// compared case-insensitively; anything else is "unknown" (the caller applies policy.licenses.other).
import { describe, expect, it } from 'vitest';
import { LicenseAllowList, parseLicenseExpression } from '../../../src/policy/licenses.js';

describe('licence expressions', () => {
  const allow = new LicenseAllowList(['MIT', 'Apache-2.0', 'GPL-2.0-only WITH Classpath-exception-2.0', 'LGPL-2.1-or-later OR MIT']);

  it('allows an id in the list in any case, and the list\'s own expressions as written', () => {
    expect(allow.judge('MIT')).toBe('allowed');
    expect(allow.judge('apache-2.0')).toBe('allowed');
    expect(allow.judge('  gpl-2.0-only   with classpath-exception-2.0 ')).toBe('allowed');
    expect(allow.judge('BSD-3-Clause')).toBe('blocked');
  });

  it('OR needs one allowed side, AND needs both, AND binds tighter than OR, parentheses group', () => {
    expect(allow.judge('GPL-3.0-only OR MIT')).toBe('allowed');
    expect(allow.judge('MIT AND Apache-2.0')).toBe('allowed');
    expect(allow.judge('MIT AND GPL-3.0-only')).toBe('blocked');
    expect(allow.judge('MIT OR GPL-3.0-only AND BSD-3-Clause')).toBe('allowed'); // MIT OR (GPL AND BSD)
    expect(allow.judge('BSD-3-Clause AND GPL-3.0-only OR MIT')).toBe('allowed'); // (BSD AND GPL) OR MIT
    expect(allow.judge('(GPL-3.0-only OR MIT) AND BSD-3-Clause')).toBe('blocked');
    expect(allow.judge('(GPL-3.0-only OR MIT) AND (Apache-2.0)')).toBe('allowed');
    expect(allow.judge('mit or gpl-3.0-only')).toBe('allowed'); // operators in any case
  });

  it('WITH: allowed when the whole term or its licence is; "+" is judged by its base id too', () => {
    expect(allow.judge('Apache-2.0 WITH LLVM-exception')).toBe('allowed');
    expect(allow.judge('GPL-2.0-only WITH Classpath-exception-2.0 OR BSD-3-Clause')).toBe('allowed');
    expect(allow.judge('GPL-2.0-only WITH Other-exception')).toBe('blocked');
    expect(new LicenseAllowList(['GPL-2.0']).judge('GPL-2.0+')).toBe('allowed');
  });

  it('what is not an expression is unknown, never allowed', () => {
    for (const bad of ['', 'MIT OR', 'OR MIT', '(MIT', 'MIT)', 'MIT AND AND Apache-2.0', 'MIT, Apache-2.0', 'MIT WITH', 'https://example.com/license', 'x'.repeat(600)]) {
      expect(allow.judge(bad), bad).toBe('unknown');
    }
  });

  it('bounds the nesting it reads', () => {
    expect(parseLicenseExpression(`${'('.repeat(40)}MIT${')'.repeat(40)}`)).toBeUndefined();
    expect(parseLicenseExpression(`${'('.repeat(5)}MIT${')'.repeat(5)}`)).toEqual({ kind: 'id', id: 'MIT', base: 'MIT' });
  });
});
