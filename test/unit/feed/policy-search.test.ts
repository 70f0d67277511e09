// The policy on a merged search page and on autocomplete versions (feed/policy-search.ts), without a server: a
// real compiled policy (deny rules need no facts, so no upstream is asked) over hand-made merged documents, for the
// details the integration tests do not reach: a hit without `versions`, a kept `version` spelling (+metadata),
// totalHits, non-version strings, and the fingerprint that versions the answer.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import type { FeedContext } from '../../../src/feed/feed-context.js';
import { PolicyGate, withheldWarning } from '../../../src/feed/policy-gate.js';
import { filterAutocompleteIds, filterAutocompleteVersions, filterSearchPage } from '../../../src/feed/policy-search.js';
import { compilePolicy, upstreamOverrides } from '../../../src/policy/policy.js';
import { IdRouter } from '../../../src/protocol/id-rules.js';
import { createLogSink } from '../../support/log-sink.js';

type Json = any;

function gateFor(deny: string[]): { gate: PolicyGate; asked: string[] } {
  const { config } = validateConfig({ policy: { deny }, upstreams: [{ name: 'public', serviceIndex: 'https://public.example/v3/index.json' }] });
  const asked: string[] = [];
  // only what the gate reads of a context; with deny rules alone it never asks an upstream (asserted below)
  const ctx = {
    names: ['public'],
    router: new IdRouter([{ name: 'public', include: [], exclude: [], owns: [] }]),
    upstream: (name: string) => {
      asked.push(name);
      throw new Error('no upstream in this test');
    },
  } as unknown as FeedContext;
  return { gate: new PolicyGate(ctx, compilePolicy(config.policy, upstreamOverrides(config.upstreams)), createLogSink().logger), asked };
}

const noWinners = async (): Promise<undefined> => undefined;
const hit = (id: string, versions: string[] | undefined, version = versions?.at(-1)): Json => ({
  id,
  version,
  ...(versions ? { versions: versions.map((v) => ({ version: v, downloads: 1, '@id': `leaf/${v}` })) } : {}),
});

describe('policy on search pages', () => {
  it('keeps allowed versions, moves `version` to the newest allowed, drops hits with none, counts drops out of totalHits', async () => {
    const { gate, asked } = gateFor(['Gone.*', 'Some.Lib@2.0.0+build.7', 'Other.Lib@1.0.0']);
    const page = { '@context': { x: 1 }, totalHits: 40, data: [hit('Some.Lib', ['1.0.0', '1.5.0', '2.0.0+build.7']), hit('Gone.Lib', ['1.0.0']), hit('Kept.Lib', ['3.0.0']), hit('Other.Lib', undefined, '1.0.0')] };
    const f = await filterSearchPage(gate, page, noWinners);
    expect(f.doc).toEqual({
      '@context': { x: 1 },
      totalHits: 38,
      data: [hit('Some.Lib', ['1.0.0', '1.5.0']), hit('Kept.Lib', ['3.0.0'])],
    });
    expect(asked).toEqual([]);
    // nothing blocked on the page: the same document back, and a fingerprint of its own
    const clean = await filterSearchPage(gate, { totalHits: 1, data: [hit('Kept.Lib', ['3.0.0'])] }, noWinners);
    expect(clean.doc.data as Json[]).toEqual([hit('Kept.Lib', ['3.0.0'])]);
    expect(clean.fingerprint).not.toBe(f.fingerprint);
  });

  it('keeps the upstream spelling of `version` when that version stays allowed', async () => {
    const { gate } = gateFor(['Some.Lib@1.0.0']);
    const f = await filterSearchPage(gate, { totalHits: 1, data: [hit('Some.Lib', ['1.0.0', '2.0.0+meta'], '2.0.0+meta')] }, noWinners);
    const [only] = f.doc.data as Json[];
    expect(only.version).toBe('2.0.0+meta');
    expect(only.versions.map((v: Json) => v.version)).toEqual(['2.0.0+meta']);
  });
});

describe('policy on autocomplete versions', () => {
  it('drops blocked versions and recounts totalHits; a string that is no version is left alone', async () => {
    const { gate } = gateFor(['Some.Lib@1.5.0']);
    const f = await filterAutocompleteVersions(gate, 'some.lib', { '@context': {}, totalHits: 3, data: ['1.0.0', '1.5.0', 'not-a-version'] }, noWinners);
    expect(f.doc).toEqual({ '@context': {}, totalHits: 2, data: ['1.0.0', 'not-a-version'] });
  });
});

describe('policy on autocomplete ids', () => {
  it('drops an id whose every version is blocked, keeps one with an allowed version or an unknown list', async () => {
    const { gate } = gateFor(['Gone.*', 'Half.Lib@2.0.0']);
    const lists: Record<string, string[]> = { 'gone.lib': ['1.0.0'], 'half.lib': ['1.0.0', '2.0.0'] };
    const merged = async (id: string) => (lists[id] ? { versions: lists[id]!, winners: {} } : undefined);
    const f = await filterAutocompleteIds(gate, { totalHits: 10, data: ['Gone.Lib', 'Half.Lib', 'Unknown.Lib'] }, merged);
    expect(f.doc).toEqual({ totalHits: 9, data: ['Half.Lib', 'Unknown.Lib'] });
  });
});

describe('the warning line of a version list', () => {
  it('names the count, the newest blocked versions with their rules, and why the newest is blocked', async () => {
    const { gate } = gateFor(['Some.Lib@1.1.0', 'Some.Lib@1.2.0-beta']);
    const versions = ['1.0.0', '1.1.0', '1.2.0-beta'];
    const d = await gate.decideAll('some.lib', versions, undefined, 'versions');
    const line = withheldWarning('some.lib', d, versions)!;
    expect(line).toBe('nuproxy policy withholds 2 versions of some.lib: 1.2.0-beta (deny), 1.1.0 (deny); 1.2.0-beta: "Some.Lib@1.2.0-beta" is in policy.deny');
    expect(withheldWarning('some.lib', await gate.decideAll('some.lib', ['1.0.0'], undefined, 'versions'), ['1.0.0'])).toBeUndefined();
  });
});
