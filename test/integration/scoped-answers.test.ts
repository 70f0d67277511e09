// Answers for a token scoped to some ids (issue #15): search and autocomplete list only the ids its scope
// allows, with paging exact over the filtered list (skip/take, totalHits) across two upstreams and the cache;
// autocomplete versions of an id outside the scope look like those of an id nobody has; vulnerability pages keep
// only in-scope ids; and a scoped answer is never served for an unscoped request or another scope's, nor the
// reverse. Real upstream feeds on port 0; the feed is asked directly (the HTTP layer passes the principal's scope).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vulnerabilityKey } from '../../src/feed/cache-keys.js';
import type { DocAnswer } from '../../src/feed/feed.js';
import { RenderCache } from '../../src/http/render-cache.js';
import { idScope, type IdScope } from '../../src/protocol/id-scope.js';
import { render } from '../../src/protocol/urls.js';
import { get } from '../support/http.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { waitFor } from '../support/wait.js';

type Json = Record<string, any>;

const timeouts = { connect: '2s', headers: '5s', body: '5s' };
const entry = (name: string, u: TestUpstream): Record<string, unknown> => ({ name, serviceIndex: u.serviceIndexUrl, retries: 0, timeouts, circuitBreaker: { failures: 1000 } });
const EVERYTHING = /.*/;
const down = { kind: 'status', status: 500 } as const;

const SCOPE = idScope(['Acme.*', 'Core.*', 'Echo.*', 'Zed.Exact'])!;
const OTHER_SCOPE = idScope(['Bolt.*'])!;

/** `count` ids `<prefix>.00`, `<prefix>.01`, ... */
const ids = (prefix: string, count: number, from = 0): string[] => Array.from({ length: count }, (_, i) => `${prefix}.${String(i + from).padStart(2, '0')}`);
const nupkgs = (list: string[]): Uint8Array[] => list.map((id) => makeNupkg({ id, version: '1.0.0', description: `${id} library` }));

const bodyOf = (a: DocAnswer | undefined): Json => {
  expect(a, 'an answer').toBeDefined();
  return JSON.parse(a!.body) as Json;
};
const idsOf = (doc: Json): string[] => (doc.data as unknown[]).map((d) => (typeof d === 'string' ? d : (d as Json).id).toLowerCase());
const inScope = (scope: IdScope) => (id: string): boolean => scope.allows(id.toLowerCase());

// Scoped and unscoped ids interleave in id order (the upstreams list by id), so every window mixes both.
const FIRST_IDS = [...ids('Acme.Lib', 15), ...ids('Bolt.Lib', 20), ...ids('Core.Lib', 12), ...ids('Dyn.Lib', 25), ...ids('Echo.Lib', 10), 'Zed.Exact', ...ids('Zed.Other', 5), 'Acme.Shared', 'Bolt.Shared'];
const SECOND_IDS = [...ids('Acme.B', 10), ...ids('Bolt.B', 30), ...ids('Core.Lib', 12, 5), ...ids('Echo.B', 20), ...ids('Fox.Lib', 30), 'Acme.Shared', 'Bolt.Shared'];
const IN_SCOPE = [...new Set([...FIRST_IDS, ...SECOND_IDS].map((id) => id.toLowerCase()))].filter((id) => SCOPE.allows(id));
const VULNS = {
  'acme.lib.00': [{ severity: 2, url: 'https://example.test/advisories/acme', versions: '[1.0.0, 2.0.0)' }],
  'bolt.lib.00': [{ severity: 3, url: 'https://example.test/advisories/bolt', versions: '(, 2.0.0)' }],
  'zed.exact': [{ severity: 1, url: 'https://example.test/advisories/zed', versions: '(, 1.5.0)' }],
  'zed.other.00': [{ severity: 1, url: 'https://example.test/advisories/zed-other', versions: '(, 1.5.0)' }],
};

describe('scoped search and autocomplete over two upstreams', () => {
  let first: TestUpstream;
  let second: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    first = await startTestUpstream({ packages: nupkgs(FIRST_IDS), vulnerabilities: VULNS });
    second = await startTestUpstream({ packages: nupkgs(SECOND_IDS) });
    proxy = await startTestProxy({ upstreams: [entry('first', first), entry('second', second)] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await first?.close();
    await second?.close();
  });

  /** The unscoped merged list of every id (one page), filtered: what a scoped token must page through. */
  async function filteredFullList(kind: 'search' | 'autocomplete'): Promise<string[]> {
    const all = idsOf(bodyOf(await proxy.feed[kind]('q=&take=1000')));
    expect(all.length).toBeGreaterThan(IN_SCOPE.length + 100); // most ids are out of scope
    const expected = all.filter(inScope(SCOPE));
    expect([...expected].sort()).toEqual([...IN_SCOPE].sort());
    return expected;
  }

  for (const kind of ['search', 'autocomplete'] as const) {
    it(`${kind}: every skip/take page is the filtered full list's, and totalHits counts the filtered list`, async () => {
      const expected = await filteredFullList(kind);
      const whole = bodyOf(await proxy.feed[kind]('q=&take=1000', SCOPE));
      expect(idsOf(whole)).toEqual(expected);
      expect(whole.totalHits).toBe(expected.length);
      const unscopedTotal = bodyOf(await proxy.feed[kind]('q=&take=1000')).totalHits as number;
      for (const take of [7, 20, 50]) {
        for (let skip = 0; skip < expected.length + take; skip += take) {
          const page = bodyOf(await proxy.feed[kind](`q=&skip=${skip}&take=${take}`, SCOPE));
          expect(idsOf(page), `skip=${skip} take=${take}`).toEqual(expected.slice(skip, skip + take));
          // the merge's count: exact once the windows hold both upstreams' lists (skip+take > 100: the window
          // of 200); before, hits beyond the window are counted unfiltered, so never below the exact count
          if (skip + take > 100) expect(page.totalHits, `skip=${skip} take=${take}`).toBe(expected.length);
          else expect(page.totalHits).toBeGreaterThanOrEqual(expected.length);
          expect(page.totalHits).toBeLessThan(unscopedTotal);
        }
      }
    });
  }

  it('search with a term: only in-scope hits, whole entries (versions merged as unscoped)', async () => {
    const unscoped = bodyOf(await proxy.feed.search('q=shared&take=10'));
    const scoped = bodyOf(await proxy.feed.search('q=shared&take=10', SCOPE));
    expect(idsOf(unscoped)).toEqual(['acme.shared', 'bolt.shared']);
    expect(scoped.data).toEqual(unscoped.data.filter((h: Json) => SCOPE.allows(h.id.toLowerCase())));
    expect(scoped.totalHits).toBe(1);
  });

  it('autocomplete versions of an id outside the scope answer like an absent id, and no upstream is asked', async () => {
    first.resetHits();
    second.resetHits();
    const out = await proxy.feed.autocomplete('id=Bolt.Lib.00&prerelease=true', SCOPE);
    const outUpper = await proxy.feed.autocomplete('id=BOLT.LIB.00', SCOPE);
    const absent = await proxy.feed.autocomplete('id=Acme.NotThere&prerelease=true', SCOPE);
    expect(bodyOf(absent)).toEqual({ totalHits: 0, data: [] });
    expect(out!.body).toBe(absent!.body);
    expect(outUpper!.body).toBe(absent!.body);
    expect(first.hits(/bolt\.lib\.00/i) + second.hits(/bolt\.lib\.00/i)).toBe(0);
    expect(first.hits(/acme\.notthere/i)).toBe(1); // the in-scope absent id was really asked
    // the id exists: unscoped, and for a scope that has it, its versions are listed
    expect(bodyOf(await proxy.feed.autocomplete('id=Bolt.Lib.00&prerelease=true')).data).toEqual(['1.0.0']);
    expect(bodyOf(await proxy.feed.autocomplete('id=Bolt.Lib.00&prerelease=true', OTHER_SCOPE)).data).toEqual(['1.0.0']);
    expect(bodyOf(await proxy.feed.autocomplete('id=Acme.Lib.00', SCOPE)).data).toEqual(['1.0.0']);
  });

  it('vulnerability pages keep only in-scope ids; the index is the same for every scope', async () => {
    const index = await proxy.feed.vulnerabilityIndex();
    const [pageKey] = [...index!.pages.keys()];
    const [name, tag] = pageKey!.split('/') as [string, string];
    const unscoped = await proxy.feed.vulnerabilityPage(name, tag);
    const scoped = await proxy.feed.vulnerabilityPage(name, tag, SCOPE);
    expect(Object.keys(bodyOf(unscoped)).sort()).toEqual(Object.keys(VULNS).sort());
    expect(bodyOf(scoped)).toEqual({ 'acme.lib.00': VULNS['acme.lib.00'], 'zed.exact': VULNS['zed.exact'] });
    expect(bodyOf(await proxy.feed.vulnerabilityPage(name, tag, OTHER_SCOPE))).toEqual({ 'bolt.lib.00': VULNS['bolt.lib.00'] });
    expect(scoped!.key).not.toBe(unscoped!.key);
    expect(scoped!.version).not.toBe(unscoped!.version);
    // asked again: the kept filtered copy, the same answer; the unscoped page is still whole
    const again = await proxy.feed.vulnerabilityPage(name, tag, SCOPE);
    expect(again!.body).toBe(scoped!.body);
    expect(again!.version).toBe(scoped!.version);
    expect((await proxy.feed.vulnerabilityPage(name, tag))!.body).toBe(unscoped!.body);
    expect((await proxy.feed.vulnerabilities(SCOPE))!.body).toBe((await proxy.feed.vulnerabilities())!.body);
  });

  it('unscoped, scoped, unscoped again, another scope: never mixed, in the answers nor in a render cache', async () => {
    const renders = new RenderCache(8 * 1024 * 1024);
    const base = 'http://proxy.test/';
    const index = await proxy.feed.vulnerabilityIndex();
    const [name, tag] = [...index!.pages.keys()][0]!.split('/') as [string, string];
    const asks: [string, (scope?: IdScope) => Promise<DocAnswer | undefined>, (body: Json) => string[]][] = [
      ['search', (s) => proxy.feed.search('q=lib&take=40', s), idsOf],
      ['autocomplete', (s) => proxy.feed.autocomplete('q=lib&take=40', s), idsOf],
      ['autocomplete versions', (s) => proxy.feed.autocomplete('id=Bolt.Lib.01', s), (b) => b.data],
      ['vulnerability page', (s) => proxy.feed.vulnerabilityPage(name, tag, s), (b) => Object.keys(b)],
    ];
    for (const [what, ask, listed] of asks) {
      const answers: [IdScope | undefined, DocAnswer][] = [];
      for (const scope of [undefined, SCOPE, undefined, OTHER_SCOPE, SCOPE]) answers.push([scope, (await ask(scope))!]);
      const unscoped = answers[0]![1];
      for (const [scope, a] of answers) {
        const rendered = renders.get(a.key, a.version, base, () => a.body, false).body.toString('utf8');
        expect(rendered, `${what} ${scope?.key ?? 'unscoped'}`).toBe(render(a.body, base));
        if (scope === undefined) {
          expect(a.body, what).toBe(unscoped.body);
          expect(a.key).toBe(unscoped.key);
        } else {
          expect(a.key, what).not.toBe(unscoped.key);
          expect(a.version, what).not.toBe(unscoped.version);
          // what is listed is in the scope (versions count as in: they belong to the one id asked)
          if (what !== 'autocomplete versions') expect(listed(JSON.parse(a.body)).every(inScope(scope)), what).toBe(true);
        }
      }
      expect(answers[1]![1].key, what).not.toBe(answers[3]![1].key);
      expect(listed(JSON.parse(unscoped.body)).some((id) => !SCOPE.allows(id.toLowerCase())), what).toBe(true);
    }
  });
});

describe('scoped answers from the cache: an upstream without search, and every upstream down', () => {
  let full: TestUpstream;
  let flat: TestUpstream;
  let proxy: TestProxy;
  let cacheDir: string;
  const fullIds = [...ids('Acme.Full', 3), ...ids('Bolt.Full', 3)];
  const flatIds = [...ids('Acme.Flat', 4), ...ids('Bolt.Flat', 4)];
  const scope = idScope(['Acme.*'])!;

  /** Fetches a package through the proxy (unscoped HTTP), and waits until the cache holds it. */
  async function cachePackage(id: string): Promise<void> {
    const l = id.toLowerCase();
    const r = await get(`${proxy.url}v3/flat/${l}/1.0.0/${l}.1.0.0.nupkg`);
    expect(r.status, `${id}: ${r.text.slice(0, 200)}`).toBe(200);
    await waitFor(`${id} in the cache`, async () => (await proxy.feed.packages.localVersions(l, () => true)).length > 0);
  }

  beforeAll(async () => {
    full = await startTestUpstream({ packages: nupkgs(fullIds), vulnerabilities: VULNS });
    flat = await startTestUpstream({ packages: nupkgs(flatIds), search: false });
    cacheDir = await mkdtemp(join(tmpdir(), 'nuproxy-scoped-'));
    proxy = await startTestProxy({ upstreams: [entry('full', full), entry('flat', flat)], cacheDir });
    for (const id of [...flatIds, 'Acme.Full.00', 'Bolt.Full.00']) await cachePackage(id);
  });
  afterAll(async () => {
    await proxy?.stop();
    await full?.close();
    await flat?.close();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  it('merges the cached copies of the search-less upstream, filtered before they are paged', async () => {
    expect(idsOf(bodyOf(await proxy.feed.search('q=flat&take=50')))).toEqual(flatIds.map((i) => i.toLowerCase()));
    const expected = ids('acme.flat', 4);
    for (const take of [1, 3]) {
      for (let skip = 0; skip < expected.length + take; skip += take) {
        const page = bodyOf(await proxy.feed.search(`q=flat&skip=${skip}&take=${take}`, scope));
        expect(idsOf(page), `skip=${skip} take=${take}`).toEqual(expected.slice(skip, skip + take));
        expect(page.totalHits).toBe(expected.length);
      }
    }
    // autocomplete versions over the cache: an out-of-scope cached id shows none
    expect(bodyOf(await proxy.feed.autocomplete('id=Bolt.Flat.00')).data).toEqual(['1.0.0']);
    expect(bodyOf(await proxy.feed.autocomplete('id=Bolt.Flat.00', scope))).toEqual({ totalHits: 0, data: [] });
    expect(bodyOf(await proxy.feed.autocomplete('id=Acme.Flat.00', scope)).data).toEqual(['1.0.0']);
  });

  it('every upstream down: search and autocomplete from the disk alone stay scoped, paging exact', async () => {
    full.setFault(EVERYTHING, down);
    flat.setFault(EVERYTHING, down);
    try {
      // a query never asked before (nothing stored for it): only the cached packages can answer
      const unscoped = await proxy.feed.search('q=.&take=100');
      expect(unscoped!.outcome).toBe('stale');
      expect(idsOf(bodyOf(unscoped))).toEqual(['acme.flat.00', 'acme.flat.01', 'acme.flat.02', 'acme.flat.03', 'acme.full.00', 'bolt.flat.00', 'bolt.flat.01', 'bolt.flat.02', 'bolt.flat.03', 'bolt.full.00']);
      const expected = ['acme.flat.00', 'acme.flat.01', 'acme.flat.02', 'acme.flat.03', 'acme.full.00'];
      for (const kind of ['search', 'autocomplete'] as const) {
        // (a page past the end is empty: from the disk alone that is no answer, the upstreams' failure, scoped or not)
        for (let skip = 0; skip < expected.length; skip += 2) {
          const page = bodyOf(await proxy.feed[kind](`q=.&skip=${skip}&take=2`, scope));
          expect(idsOf(page), `${kind} skip=${skip}`).toEqual(expected.slice(skip, skip + 2));
          expect(page.totalHits).toBe(expected.length);
        }
      }
      // the versions of a cached id outside the scope: none, as for an id the cache does not hold
      expect(bodyOf(await proxy.feed.autocomplete('id=Bolt.Full.00', scope))).toEqual({ totalHits: 0, data: [] });
      expect(bodyOf(await proxy.feed.autocomplete('id=Acme.Full.00', scope)).data).toEqual(['1.0.0']);
    } finally {
      full.setFault(EVERYTHING, undefined);
      flat.setFault(EVERYTHING, undefined);
    }
  });

  // last: it restarts the proxy (a new process forgets its stored metadata; the disk keeps the page)
  it('keeps the whole vulnerability page on disk after a scoped request, and filters it from there when down', async () => {
    const [pageKey] = [...(await proxy.feed.vulnerabilityIndex())!.pages.keys()];
    const [name, tag] = pageKey!.split('/') as [string, string];
    const scoped = await proxy.feed.vulnerabilityPage(name, tag, scope);
    expect(bodyOf(scoped)).toEqual({ 'acme.lib.00': VULNS['acme.lib.00'] });
    const stored = await waitFor('the page on disk', () => proxy.blobs.read(vulnerabilityKey({ name, tag })).catch(() => undefined));
    expect(JSON.parse(stored.toString('utf8'))).toEqual(VULNS);

    await proxy.stop();
    full.setFault(EVERYTHING, down);
    flat.setFault(EVERYTHING, down);
    proxy = await startTestProxy({ upstreams: [entry('full', full), entry('flat', flat)], cacheDir });
    const fromDisk = await proxy.feed.vulnerabilityPage(name, tag, scope);
    expect(fromDisk!.outcome).toBe('stale');
    expect(fromDisk!.body).toBe(scoped!.body);
    expect(fromDisk!.key).toBe(scoped!.key);
    expect(bodyOf(await proxy.feed.vulnerabilityPage(name, tag, OTHER_SCOPE))).toEqual({ 'bolt.lib.00': VULNS['bolt.lib.00'] });
    expect(bodyOf(await proxy.feed.vulnerabilityPage(name, tag))).toEqual(VULNS);
  });
});
