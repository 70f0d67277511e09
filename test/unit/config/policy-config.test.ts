// The `policy` section and upstreams[].policy (issue #16): defaults (every rule off), durations, severities, id
// patterns and "Id@version" entries checked with their key path, and overrides that stay partial.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { isNuproxyError } from '../../../src/errors.js';

function problems(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    if (isNuproxyError(err, 'CONFIG_INVALID')) return err.details.problems as string[];
    throw err;
  }
  return [];
}

const UP = { name: 'up', serviceIndex: 'https://feed.example/v3/index.json' };

describe('policy config', () => {
  it('defaults: every rule off but malicious; an upstream without policy has none', () => {
    const { config } = validateConfig({});
    expect(config.policy).toEqual({
      minimumAge: 0,
      vulnerable: 'off',
      malicious: true,
      deny: [],
      licenses: { allow: [], other: 'allow' },
      exempt: { minimumAge: [], vulnerable: [], licenses: [] },
    });
    expect(config.upstreams[0]!.policy).toBeUndefined();
  });

  it('reads durations, severities, patterns and exact versions', () => {
    const { config } = validateConfig({
      policy: { minimumAge: '3d', vulnerable: 'moderate', deny: ['Evil.*', 'Bad.Lib@1.0.0-beta.1'], licenses: { allow: ['MIT', 'MIT OR Apache-2.0'], other: 'block' }, exempt: { minimumAge: ['Contoso.*', 'Newtonsoft.Json@13.0.4'] } },
      upstreams: [{ ...UP, policy: { minimumAge: 0, exempt: { licenses: ['*'] } } }],
    });
    expect(config.policy.minimumAge).toBe(3 * 86_400_000);
    expect(config.policy.exempt).toEqual({ minimumAge: ['Contoso.*', 'Newtonsoft.Json@13.0.4'], vulnerable: [], licenses: [] });
    // an override holds only what it sets (merged over the global keys by compilePolicy)
    expect(config.upstreams[0]!.policy).toEqual({ minimumAge: 0, exempt: { licenses: ['*'] } });
  });

  it('reports every bad key with its path', () => {
    const p = problems({
      policy: {
        minimumAge: 'soon',
        vulnerable: 'severe',
        deny: ['Evil*Corp', 'Bad.Lib@not a version', 'not an id!@1.0.0'],
        licenses: { allow: ['MIT; rm -rf'], other: 'review' },
        exempt: { malicious: ['X'] },
        typo: 1,
      },
      upstreams: [{ ...UP, policy: { minimumAge: 'later', deny: ['@1.0.0'] } }],
    });
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^policy\.minimumAge: not a duration/),
        expect.stringMatching(/^policy\.vulnerable: /),
        expect.stringMatching(/^policy\.deny\[0\]: invalid pattern "Evil\*Corp"/),
        expect.stringMatching(/^policy\.deny\[1\]: invalid entry "Bad\.Lib@not a version": "not a version" is not a valid NuGet version/),
        expect.stringMatching(/^policy\.deny\[2\]: invalid entry .* is not a valid package id/),
        expect.stringMatching(/^policy\.licenses\.allow\[0\]: must be an SPDX licence id or expression/),
        expect.stringMatching(/^policy\.licenses\.other: /),
        expect.stringMatching(/^policy\.exempt: .*malicious/),
        expect.stringMatching(/^policy: .*typo/),
        expect.stringMatching(/^upstreams\[0\]\.policy\.minimumAge: not a duration/),
        expect.stringMatching(/^upstreams\[0\]\.policy\.deny\[0\]: invalid entry "@1\.0\.0"/),
      ]),
    );
    expect(p).toHaveLength(11);
  });
});
