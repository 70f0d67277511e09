import { describe, expect, it } from 'vitest';
import { mergeVersionLists } from '../../../src/feed/merge-versions.js';
import { buildRegistration, leafDocument, synthesizeLeaf, LEAVES_PER_PAGE, MAX_INLINED_LEAVES } from '../../../src/feed/merge-registration.js';
import { checkFailures, combinedOutcome, fanOut } from '../../../src/feed/fan-out.js';
import { freshness } from '../../../src/feed/freshness.js';
import { BASE } from '../../../src/protocol/urls.js';
import { NuproxyError } from '../../../src/errors.js';
import { deferred } from '../../support/wait.js';

describe('mergeVersionLists', () => {
  it('unions with NuGet equality, first upstream wins, sorted by precedence', () => {
    const m = mergeVersionLists([
      { upstream: 'company', versions: ['1.0', '2.0.0-Beta', '10.0.0'] },
      { upstream: 'public', versions: ['1.0.0.0', '2.0.0-beta', '2.0.0', '9.0.0', 'garbage'] },
    ]);
    expect(m.versions).toEqual(['1.0.0', '2.0.0-beta', '2.0.0', '9.0.0', '10.0.0']);
    expect(m.winners).toEqual({ '1.0.0': 'company', '2.0.0-beta': 'company', '10.0.0': 'company', '2.0.0': 'public', '9.0.0': 'public' });
  });

  it('is empty for no lists', () => {
    expect(mergeVersionLists([])).toEqual({ versions: [], winners: {} });
  });
});

const leaf = (v: string, extra: Record<string, unknown> = {}) => ({ '@id': `x/${v}`, catalogEntry: { id: 'Pkg', version: v, ...extra }, packageContent: 'p' });

describe('buildRegistration', () => {
  it('inlines up to 127 leaves in pages of 64 with correct bounds and counts', () => {
    const versions = Array.from({ length: MAX_INLINED_LEAVES }, (_, i) => `1.0.${i}`);
    const { index, pages } = buildRegistration('semver2', 'pkg', versions.map((v) => leaf(v)).reverse());
    expect(pages.size).toBe(0);
    const items = index.items as { lower: string; upper: string; count: number; items: unknown[]; '@id': string; parent: string }[];
    expect(index.count).toBe(2);
    expect(items.map((p) => [p.lower, p.upper, p.count, p.items.length])).toEqual([
      ['1.0.0', '1.0.63', 64, 64],
      ['1.0.64', '1.0.126', 63, 63],
    ]);
    expect(items[0]!['@id']).toBe(`${BASE}v3/registration/semver2/pkg/index.json#page/1.0.0/1.0.63`);
    expect(items[0]!.parent).toBe(`${BASE}v3/registration/semver2/pkg/index.json`);
  });

  it('makes separate page documents above 127 leaves', () => {
    const versions = Array.from({ length: 130 }, (_, i) => `1.0.${i}`);
    const { index, pages, leaves } = buildRegistration('semver2', 'pkg', versions.map((v) => leaf(v)));
    const items = index.items as { '@id': string; items?: unknown; lower: string; upper: string; count: number }[];
    expect(items.every((p) => p.items === undefined)).toBe(true);
    expect(items.map((p) => p.count)).toEqual([LEAVES_PER_PAGE, LEAVES_PER_PAGE, 2]);
    expect(items[2]!['@id']).toBe(`${BASE}v3/registration/semver2/pkg/page/1.0.128/1.0.129.json`);
    expect([...pages.keys()]).toEqual(['1.0.0/1.0.63', '1.0.64/1.0.127', '1.0.128/1.0.129']);
    expect((pages.get('1.0.128/1.0.129')!.items as unknown[]).length).toBe(2);
    expect(leaves.size).toBe(130);
  });

  it('sorts by NuGet precedence, keeps bounds normalized with original case, urls lowercase', () => {
    const { index } = buildRegistration('semver2', 'pkg', [leaf('2.0.0'), leaf('1.0.0-RC.1'), leaf('1.0.0')]);
    const page = (index.items as { lower: string; upper: string; '@id': string }[])[0]!;
    expect(page.lower).toBe('1.0.0-RC.1');
    expect(page.upper).toBe('2.0.0');
    expect(page['@id']).toContain('#page/1.0.0-rc.1/2.0.0');
  });

  it('keeps index-level extras but not the upstream @id, count or items', () => {
    const { index } = buildRegistration('semver2', 'pkg', [leaf('1.0.0')], { '@context': { a: 1 }, metadata: { sponsorshipUrls: [] }, '@id': 'up', count: 9, items: [] });
    expect(index['@context']).toEqual({ a: 1 });
    expect(index.metadata).toEqual({ sponsorshipUrls: [] });
    expect(index['@id']).toBe(`${BASE}v3/registration/semver2/pkg/index.json`);
    expect(index.count).toBe(1);
  });

  it('an empty set gives an index with no pages', () => {
    expect(buildRegistration('semver2', 'pkg', []).index).toMatchObject({ count: 0, items: [] });
  });

  it('leaf documents and synthesized leaves point at the proxy', () => {
    const l = synthesizeLeaf('semver2', 'pkg', 'Pkg', '1.2.3');
    expect(l.packageContent).toBe(`${BASE}v3/flat/pkg/1.2.3/pkg.1.2.3.nupkg`);
    const doc = leafDocument('semver2', 'pkg', '1.2.3', leaf('1.2.3', { listed: false, published: '1900-01-01T00:00:00+00:00', '@id': 'https://catalog/x.json' }));
    expect(doc).toMatchObject({ listed: false, published: '1900-01-01T00:00:00+00:00', catalogEntry: 'https://catalog/x.json', registration: `${BASE}v3/registration/semver2/pkg/index.json` });
  });
});

describe('fan-out policy', () => {
  it('asks in parallel and sorts contributions', async () => {
    const started: string[] = [];
    // no ask answers before every upstream has been asked: a sequential loop would wait for 'a' forever, so the
    // first ask gives up (and the test fails) if the others do not start
    let allAsked!: () => void;
    const asked = new Promise<void>((r) => (allAsked = r));
    const notParallel = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`asked one at a time: only ${started.join(', ')} started`)), 5_000).unref());
    // and they answer in reverse order ('c' first, 'a' last): the contributions still come out in priority order
    const answered: string[] = [];
    const turn = new Map(['a', 'b', 'c'].map((u) => [u, deferred()]));
    const waitsFor: Record<string, string | undefined> = { a: 'b', b: 'c', c: undefined };
    const g = await fanOut(['a', 'b', 'c'], async (u) => {
      started.push(u);
      if (started.length === 3) allAsked();
      await Promise.race([asked, notParallel]);
      const before = waitsFor[u];
      if (before) await turn.get(before)!.promise;
      answered.push(u);
      turn.get(u)!.resolve();
      if (u === 'b') throw new NuproxyError('UPSTREAM_TIMEOUT', 'slow');
      if (u === 'c') return { upstream: u, kind: 'absent' };
      return { upstream: u, kind: 'ok', value: 1, outcome: 'hit', version: '1' };
    });
    expect(started).toEqual(['a', 'b', 'c']);
    expect(g.failed.map((f) => [f.upstream, (f.error as Error).message])).toEqual([['b', 'slow']]);
    expect(answered).toEqual(['c', 'b', 'a']);
    expect(g.ok.map((c) => c.upstream)).toEqual(['a']);
    expect(g.absent).toEqual(['c']);
    expect(g.failed.map((f) => f.upstream)).toEqual(['b']);
    expect(g.freshUntil).toBe(0); // a failure (and a contribution without freshness) makes nothing keepable
    expect(() => checkFailures(g)).not.toThrow();
    expect(() => checkFailures(g, { owner: 'b' })).toThrow(/slow/);
    expect(() => checkFailures({ ok: [], absent: ['c'], failed: g.failed, fromCache: false, freshUntil: 0 })).toThrow(/slow/);
    expect(() => checkFailures({ ok: [], absent: ['c'], failed: [], fromCache: false, freshUntil: 0 })).not.toThrow();
  });

  it('is fresh until the first of its contributions goes stale', async () => {
    const g = await fanOut(['a', 'b', 'c'], async (u) =>
      u === 'c' ? { upstream: u, kind: 'absent', outcome: 'hit', freshUntil: 300 } : { upstream: u, kind: 'ok', value: 1, outcome: 'hit', version: '1', freshUntil: u === 'a' ? 500 : 200 },
    );
    expect(g.freshUntil).toBe(200);
    expect((await fanOut([], async (u) => ({ upstream: u, kind: 'absent' }))).freshUntil).toBe(0);
  });

  it('combines outcomes', () => {
    expect(combinedOutcome(['hit', 'hit'])).toBe('hit');
    expect(combinedOutcome(['hit', 'revalidated'])).toBe('revalidated');
    expect(combinedOutcome(['stale', 'revalidated'])).toBe('stale');
    expect(combinedOutcome(['stale', 'miss'])).toBe('miss');
  });
});

describe('freshness', () => {
  it('is fresh, then stale, then expired', () => {
    expect(freshness(1000, 1500, 1000, 5000)).toBe('fresh');
    expect(freshness(1000, 2500, 1000, 5000)).toBe('stale');
    expect(freshness(1000, 7000, 1000, 5000)).toBe('expired');
  });
});
