// The supply-chain policy (issue #16) in every feed answer, over real sockets: a real nuproxy (policy compiled from
// its config) in front of a real test upstream whose registration leaves carry published dates. A version too
// young is absent from the flat container, search and autocomplete (unlisted in the registration), a download of it
// is a 404 naming the rule; /explain shows each decision; a cached copy stays on disk; without policy keys nothing
// changes. The other rules and several upstreams: policy-rules.test.ts.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestUpstream, type LeafMeta, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { daysAgo, entry, getWithReason, listings, nupkgUrl, pkgs } from '../support/policy.js';
import { parseMetrics, valueOf } from '../support/metrics-text.js';

type Json = any;

describe('policy: minimum release age', () => {
  let up: TestUpstream;
  let proxy: TestProxy;
  const meta: Record<string, LeafMeta> = {
    'Young.Pkg@1.0.0': { published: daysAgo(30) },
    'Young.Pkg@1.1.0': { published: daysAgo(10) },
    'Young.Pkg@1.2.0': { published: daysAgo(1) }, // young, but exempt as an exact version
    'Young.Pkg@2.0.0': { published: daysAgo(1) },
    'Young.Pkg@0.9.0': { published: daysAgo(1) }, // unlisted: its leaf says 1900, never "new"
    'Own.Pkg@1.0.0': { published: daysAgo(0.1) }, // our own packages are exempt by pattern
    'Fresh.Only@1.0.0': { published: daysAgo(0.5) },
  };
  beforeAll(async () => {
    up = await startTestUpstream({
      packages: pkgs([['Young.Pkg', '0.9.0'], ['Young.Pkg', '1.0.0'], ['Young.Pkg', '1.1.0'], ['Young.Pkg', '1.2.0'], ['Young.Pkg', '2.0.0'], ['Own.Pkg', '1.0.0'], ['Fresh.Only', '1.0.0']]),
      unlisted: ['Young.Pkg@0.9.0'],
      leafMeta: meta,
    });
    proxy = await startTestProxy({ upstreams: [entry('public', up)], config: { policy: { minimumAge: '3d', exempt: { minimumAge: ['Own.*', 'Young.Pkg@1.2.0'] } } } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await up?.close();
  });

  it('hides a young version from the flat container, every registration hive and autocomplete', async () => {
    const l = await listings(proxy, 'young.pkg');
    expect(l.flat).toEqual(['0.9.0', '1.0.0', '1.1.0', '1.2.0']);
    const listed = ['1.0.0', '1.1.0', '1.2.0']; // 0.9.0 is unlisted upstream
    expect(l.hives).toEqual({ semver2: listed, 'gz-semver1': listed, semver1: listed });
    expect(l.autocomplete).toEqual(listed); // autocomplete lists listed versions only
    // the blocked version's leaf is kept, unlisted, with its facts (advisories stay visible to audits)
    const reg = (await get(`${proxy.url}v3/registration/semver2/young.pkg/index.json`)).json();
    const leaf = reg.items.flatMap((page: Json) => page.items).find((x: Json) => x.catalogEntry.version === '2.0.0');
    expect(leaf.catalogEntry.listed).toBe(false);
    expect((await get(`${proxy.url}v3/registration/semver2/young.pkg/2.0.0.json`)).json().listed).toBe(false);
    expect((await get(`${proxy.url}v3/registration/semver2/young.pkg/1.1.0.json`)).json().listed).toBe(true);
    // the version list names what it withholds, for the client to print (X-NuGet-Warning)
    const flat = await get(`${proxy.url}v3/flat/young.pkg/index.json`);
    expect(flat.headers['x-nuget-warning']).toMatch(/^nuproxy policy withholds 1 version of young\.pkg: 2\.0\.0 \(minimumAge\); 2\.0\.0: published .*policy\.minimumAge is 3d/);
  });

  it('search shows the newest allowed version and only allowed versions', async () => {
    const hit = (await get(`${proxy.url}v3/query?q=Young.Pkg&semVerLevel=2.0.0`)).json().data.find((h: Json) => h.id === 'Young.Pkg');
    expect(hit.version).toBe('1.2.0');
    expect(hit.versions.map((v: Json) => v.version)).toEqual(['1.0.0', '1.1.0', '1.2.0']);
  });

  it('a download of a young version is a 404 naming the rule (body, header, reason phrase), logged and counted', async () => {
    for (const url of [nupkgUrl(proxy, 'young.pkg', '2.0.0'), `${proxy.url}v3/flat/young.pkg/2.0.0/young.pkg.nuspec`]) {
      const r = await getWithReason(url);
      expect(r.status).toBe(404);
      expect(r.headers['x-nuproxy-policy']).toBe('minimumAge');
      expect(r.json).toMatchObject({ error: 'blocked_by_policy', rule: 'minimumAge' });
      expect(r.json.message).toMatch(/young\.pkg 2\.0\.0 is blocked by nuproxy policy minimumAge: published .*policy\.minimumAge is 3d/);
      expect(r.reason).toContain('blocked by nuproxy policy minimumAge');
      expect(r.headers['x-nuget-warning']).toBe(r.reason);
    }
    expect(proxy.logs.lines.some((l) => l.msg === 'download refused by policy' && l.rule === 'minimumAge' && l.version === '2.0.0' && l.level === 30)).toBe(true);
    const m = parseMetrics((await get(`${proxy.url}metrics`)).text);
    expect(valueOf(m, 'nuproxy_policy_blocks_total', { rule: 'minimumAge' })).toBeGreaterThanOrEqual(2);
    expect((await get(nupkgUrl(proxy, 'young.pkg', '1.2.0'))).status).toBe(200);
    expect(up.hits('/v3-flatcontainer/young.pkg/2.0.0/young.pkg.2.0.0.nupkg')).toBe(0); // never fetched
  });

  it('an exempt pattern lets its young versions through; an id with nothing old enough is absent', async () => {
    expect((await listings(proxy, 'own.pkg')).flat).toEqual(['1.0.0']);
    const fresh = await listings(proxy, 'fresh.only');
    expect(fresh).toEqual({ flat: [], hives: { semver2: [], 'gz-semver1': [], semver1: [] }, autocomplete: [] });
    // as absent, but saying why
    const flat = await getWithReason(`${proxy.url}v3/flat/fresh.only/index.json`);
    expect([flat.status, flat.headers['x-nuproxy-policy'], flat.json.error]).toEqual([404, 'minimumAge', 'blocked_by_policy']);
    expect(flat.json.message).toMatch(/^every version of fresh\.only is blocked by nuproxy policy/);
  });

  it('/explain shows each version’s decision, the rule, the exemption and the facts', async () => {
    const ex = (await get(`${proxy.url}explain/Young.Pkg`)).json();
    const byVersion = Object.fromEntries(ex.versions.map((v: Json) => [v.version, v]));
    expect(ex.policy).toEqual({ active: true });
    expect(byVersion['2.0.0'].policy).toMatchObject({ allowed: false, rule: 'minimumAge', facts: { published: meta['Young.Pkg@2.0.0']!.published } });
    expect(byVersion['1.2.0'].policy).toMatchObject({ allowed: true, exempted: ['minimumAge'] });
    expect(byVersion['1.0.0'].policy).toEqual({ allowed: true, facts: { published: meta['Young.Pkg@1.0.0']!.published, listed: true } });
    expect(byVersion['0.9.0'].policy).toMatchObject({ allowed: true, facts: { listed: false } });
  });
});

describe('policy: a cached package and a policy change', () => {
  it('a version cached before stays on disk and is refused after a restart with the policy, then served again without it', async () => {
    const up = await startTestUpstream({ packages: pkgs([['Cached.Pkg', '1.0.0']]), leafMeta: { 'Cached.Pkg@1.0.0': { published: daysAgo(1) } } });
    const cacheDir = await mkdtemp(join(tmpdir(), 'nuproxy-policy-'));
    try {
      const open = await startTestProxy({ upstreams: [entry('public', up)], cacheDir });
      expect((await get(nupkgUrl(open, 'cached.pkg', '1.0.0'))).status).toBe(200);
      await open.stop();
      const stored = join(cacheDir, 'packages', 'cached.pkg', '1.0.0', 'cached.pkg.1.0.0.nupkg');
      expect(existsSync(stored)).toBe(true);
      const strict = await startTestProxy({ upstreams: [entry('public', up)], cacheDir, config: { policy: { minimumAge: '7d' } } });
      const r = await getWithReason(nupkgUrl(strict, 'cached.pkg', '1.0.0'));
      await strict.stop();
      expect(r.status).toBe(404);
      expect(r.json.rule).toBe('minimumAge');
      expect(existsSync(stored)).toBe(true);
      const again = await startTestProxy({ upstreams: [entry('public', up)], cacheDir });
      const r2 = await get(nupkgUrl(again, 'cached.pkg', '1.0.0'));
      await again.stop();
      expect(r2.status).toBe(200);
    } finally {
      await up.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('policy off (no policy keys)', () => {
  it('offers every version, downloads young ones, and /explain says nothing about a policy', async () => {
    const up = await startTestUpstream({ packages: pkgs([['Off.Pkg', '1.0.0'], ['Off.Pkg', '2.0.0']]), leafMeta: { 'Off.Pkg@2.0.0': { published: daysAgo(0.1), licenseExpression: 'GPL-3.0-only' } } });
    const p = await startTestProxy({ upstreams: [entry('public', up)] });
    try {
      const l = await listings(p, 'off.pkg');
      expect(l.flat).toEqual(['1.0.0', '2.0.0']);
      expect(l.hives.semver2).toEqual(['1.0.0', '2.0.0']);
      const r = await get(nupkgUrl(p, 'off.pkg', '2.0.0'));
      expect(r.status).toBe(200);
      expect(r.headers['x-nuproxy-policy']).toBeUndefined();
      const ex = (await get(`${p.url}explain/off.pkg`)).json();
      expect(ex.policy).toBeUndefined();
      expect(ex.versions).toEqual([{ version: '1.0.0', servedBy: 'public' }, { version: '2.0.0', servedBy: 'public' }]);
      expect(up.hits('/v3/registration5-gz-semver2/off.pkg/index.json')).toBe(1); // only the registration asked for it: no facts gathered
    } finally {
      await p.stop();
      await up.close();
    }
  });
});
