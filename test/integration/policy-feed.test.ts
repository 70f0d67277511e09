// The supply-chain policy (issue #16) in every feed answer, over real sockets: a real nuproxy (policy compiled from
// its config) in front of real test upstreams whose registration leaves carry published dates, licences and
// advisories. A blocked version is absent from the flat container, registration, search and autocomplete, and a
// download of it is a 404 naming the rule; /explain shows each decision; without policy keys nothing changes.
import { request as httpRequest } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type LeafMeta, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { parseMetrics, valueOf } from '../support/metrics-text.js';
import { malEntry } from '../support/osv.js';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { importAdvisories } from '../../src/policy/advisory-store.js';
import { parseOsvValue } from '../../src/policy/osv.js';

type Json = any;
const DAY = 86_400_000;
const daysAgo = (n: number): string => new Date(Date.now() - n * DAY).toISOString();
const timeouts = { connect: '2s', headers: '5s', body: '5s' };
const entry = (name: string, u: TestUpstream, extra: Record<string, unknown> = {}) => ({ name, serviceIndex: u.serviceIndexUrl, retries: 0, timeouts, ...extra });
const pkgs = (list: [string, string][]) => list.map(([id, version]) => makeNupkg({ id, version }));

/**
 * What every listing offers of an id: the flat container, each registration hive's LISTED leaves (a blocked
 * version's leaf stays, unlisted: `dotnet list package --vulnerable` reads advisories there), autocomplete.
 */
async function listings(p: TestProxy, lowerId: string): Promise<{ flat: string[]; hives: Record<string, string[]>; autocomplete: string[] }> {
  const flat = await get(`${p.url}v3/flat/${lowerId}/index.json`);
  const hives: Record<string, string[]> = {};
  for (const hive of ['semver2', 'gz-semver1', 'semver1']) {
    const r = await get(`${p.url}v3/registration/${hive}/${lowerId}/index.json`, { 'accept-encoding': 'identity' });
    if (r.status === 404) {
      hives[hive] = [];
      continue;
    }
    expect(r.status, r.text).toBe(200);
    const doc = r.json();
    const leaves: Json[] = doc.items.flatMap((page: Json) => page.items ?? []);
    for (const page of doc.items) expect(page.count).toBe((page.items ?? []).length);
    hives[hive] = leaves.filter((l) => l.catalogEntry.listed !== false).map((l) => String(l.catalogEntry.version).toLowerCase());
  }
  const ac = await get(`${p.url}v3/autocomplete?id=${lowerId}&prerelease=true&semVerLevel=2.0.0`);
  return { flat: flat.status === 200 ? flat.json().versions : [], hives, autocomplete: ac.json().data.map((v: string) => v.toLowerCase()) };
}

/** A GET that reports the reason phrase too (what the NuGet client prints for a failed download). */
function getWithReason(url: string): Promise<{ status: number; reason: string; headers: Record<string, unknown>; json: Json }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: Json;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          json = undefined; // a package, not an error body
        }
        resolve({ status: res.statusCode!, reason: res.statusMessage ?? '', headers: res.headers, json });
      });
    })
      .on('error', reject)
      .end();
  });
}

const nupkgUrl = (p: TestProxy, id: string, v: string) => `${p.url}v3/flat/${id}/${v}/${id}.${v}.nupkg`;

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

describe('policy: advisories, deny list, licences', () => {
  let up: TestUpstream;
  const adv = (severity: string) => ({ vulnerabilities: [{ advisoryUrl: `https://example.invalid/advisory/${severity}`, severity }] });
  beforeAll(async () => {
    up = await startTestUpstream({
      packages: pkgs([
        ['Vuln.Pkg', '1.0.0'], ['Vuln.Pkg', '1.0.1'], ['Vuln.Pkg', '1.0.2'], ['Vuln.Pkg', '1.1.0'],
        ['Evil.Pkg', '1.0.0'], ['Evil.Tools', '2.0.0'], ['Plain.Pkg', '1.0.0'], ['Plain.Pkg', '1.1.0'],
        ['Lic.Pkg', '1.0.0'], ['Lic.Pkg', '1.1.0'], ['Lic.Pkg', '2.0.0'], ['Lic.Pkg', '3.0.0'],
      ]),
      leafMeta: {
        'Vuln.Pkg@1.0.0': adv('2'), 'Vuln.Pkg@1.0.1': adv('0'), 'Vuln.Pkg@1.0.2': adv('3'),
        'Lic.Pkg@1.0.0': { licenseExpression: 'MIT' },
        'Lic.Pkg@1.1.0': { licenseExpression: 'MIT OR GPL-3.0-only' },
        'Lic.Pkg@2.0.0': { licenseExpression: 'GPL-3.0-only' },
        'Lic.Pkg@3.0.0': { licenseUrl: 'https://example.invalid/license.txt' },
      },
    });
  });
  afterAll(async () => {
    await up?.close();
  });

  it('vulnerable: high blocks high and critical advisories, not low ones; an exact exemption lets one through', async () => {
    const p = await startTestProxy({ upstreams: [entry('public', up)], config: { policy: { vulnerable: 'high', exempt: { vulnerable: ['Vuln.Pkg@1.0.2'] } } } });
    try {
      const l = await listings(p, 'vuln.pkg');
      expect(l.flat).toEqual(['1.0.1', '1.0.2', '1.1.0']);
      expect(l.hives.semver2).toEqual(['1.0.1', '1.0.2', '1.1.0']);
      const r = await getWithReason(nupkgUrl(p, 'vuln.pkg', '1.0.0'));
      expect(r.headers['x-nuproxy-policy']).toBe('vulnerable');
      expect(r.json.message).toMatch(/advisory of severity high/);
    } finally {
      await p.stop();
    }
  });

  it('deny: an id pattern removes the whole id everywhere, an exact version only that version', async () => {
    const p = await startTestProxy({ upstreams: [entry('public', up)], config: { policy: { deny: ['Evil.*', 'Plain.Pkg@1.1.0'] } } });
    try {
      expect((await get(`${p.url}v3/flat/evil.pkg/index.json`)).status).toBe(404);
      expect((await listings(p, 'evil.tools')).hives.semver2).toEqual([]); // nothing listed
      expect((await listings(p, 'plain.pkg')).flat).toEqual(['1.0.0']);
      const search = (await get(`${p.url}v3/query?q=Pkg&take=50`)).json();
      const ids = search.data.map((h: Json) => h.id);
      expect(ids).toContain('Plain.Pkg');
      expect(ids).not.toContain('Evil.Pkg');
      expect(search.data.find((h: Json) => h.id === 'Plain.Pkg').version).toBe('1.0.0');
      const r = await getWithReason(nupkgUrl(p, 'evil.pkg', '1.0.0'));
      expect([r.status, r.headers['x-nuproxy-policy'], r.json.rule]).toEqual([404, 'deny', 'deny']);
    } finally {
      await p.stop();
    }
  });

  it('licences: allowed expressions (and an OR with one allowed id) pass; others and URL-only ones are blocked when other is block', async () => {
    const p = await startTestProxy({ upstreams: [entry('public', up)], config: { policy: { licenses: { allow: ['MIT', 'Apache-2.0'], other: 'block' } } } });
    try {
      expect((await listings(p, 'lic.pkg')).flat).toEqual(['1.0.0', '1.1.0']);
      const r = await getWithReason(nupkgUrl(p, 'lic.pkg', '3.0.0'));
      expect([r.status, r.json.rule]).toEqual([404, 'licenses']);
      const ex = (await get(`${p.url}explain/lic.pkg`)).json();
      expect(ex.versions.find((v: Json) => v.version === '2.0.0').policy).toMatchObject({ allowed: false, rule: 'licenses', facts: { licenseExpression: 'GPL-3.0-only' } });
    } finally {
      await p.stop();
    }
  });
});

describe('policy: imported malicious-package advisories', () => {
  it('an advisory imported into the cache blocks the versions it names (malicious is on by default), nothing else', async () => {
    const up = await startTestUpstream({ packages: pkgs([['Algo.Trading', '1.0.0'], ['Algo.Trading', '1.0.1'], ['Algo.Trading', '2.0.0'], ['Evil.Logger', '3.0.0']]) });
    const cacheDir = await mkdtemp(join(tmpdir(), 'nuproxy-policy-mal-'));
    const blobs = new FsBlobStore(cacheDir);
    await blobs.init({ sweep: false });
    await importAdvisories(blobs, parseOsvValue([malEntry('MAL-2024-3998', 'Algo.Trading'), malEntry('MAL-2025-7', 'Evil.Logger', { affected: [{ package: { ecosystem: 'NuGet', name: 'Evil.Logger' } }] })], 'mal.json'));
    const p = await startTestProxy({ upstreams: [entry('public', up)], cacheDir });
    try {
      expect((await listings(p, 'algo.trading')).flat).toEqual(['2.0.0']);
      const r = await getWithReason(nupkgUrl(p, 'algo.trading', '1.0.1'));
      expect([r.status, r.headers['x-nuproxy-policy']]).toEqual([404, 'malicious']);
      expect(r.json.message).toContain('MAL-2024-3998');
      // an entry with no versions or ranges names every version: the id is answered as absent, saying why
      const flat = await getWithReason(`${p.url}v3/flat/evil.logger/index.json`);
      expect([flat.status, flat.json.rule]).toEqual([404, 'malicious']);
      expect((await get(`${p.url}v3/query?q=Evil.Logger`)).json().data).toEqual([]);
      expect((await get(`${p.url}v3/query?q=Algo.Trading`)).json().data[0].versions.map((v: Json) => v.version)).toEqual(['2.0.0']);
    } finally {
      await p.stop();
      await up.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('policy: several upstreams (the winning upstream decides)', () => {
  let company: TestUpstream;
  let pub: TestUpstream;
  beforeAll(async () => {
    company = await startTestUpstream({
      packages: pkgs([['Shared.Pkg', '1.0.0'], ['Shared.Pkg', '2.0.0'], ['Shared.Lic', '1.0.0']]),
      leafMeta: { 'Shared.Pkg@1.0.0': { published: daysAgo(30) }, 'Shared.Pkg@2.0.0': { published: daysAgo(1) }, 'Shared.Lic@1.0.0': { licenseExpression: 'MIT' } },
    });
    pub = await startTestUpstream({
      packages: pkgs([['Shared.Pkg', '1.0.0'], ['Shared.Pkg', '2.0.0'], ['Shared.Pkg', '3.0.0'], ['Shared.Lic', '1.0.0']]),
      leafMeta: {
        'Shared.Pkg@1.0.0': { published: daysAgo(1) },
        'Shared.Pkg@2.0.0': { published: daysAgo(30) },
        'Shared.Pkg@3.0.0': { published: daysAgo(1) },
        'Shared.Lic@1.0.0': { licenseExpression: 'GPL-3.0-only' },
      },
    });
  });
  afterAll(async () => {
    await company?.close();
    await pub?.close();
  });

  it("the winner's published date and licence decide, not another upstream's", async () => {
    const p = await startTestProxy({
      upstreams: [entry('company', company), entry('public', pub)],
      config: { policy: { minimumAge: '3d', licenses: { allow: ['MIT'], other: 'allow' } } },
    });
    try {
      // 1.0.0 and 2.0.0 are won by company (priority): its dates say 30 days and 1 day; 3.0.0 only public has
      expect((await listings(p, 'shared.pkg')).flat).toEqual(['1.0.0']);
      expect((await listings(p, 'shared.lic')).flat).toEqual(['1.0.0']); // company's MIT, not public's GPL
      const ex = (await get(`${p.url}explain/shared.pkg`)).json();
      expect(ex.versions.map((v: Json) => [v.version, v.servedBy, v.policy.allowed])).toEqual([['1.0.0', 'company', true], ['2.0.0', 'company', false], ['3.0.0', 'public', false]]);
    } finally {
      await p.stop();
    }
  });

  it("an upstream's override applies to the versions it wins", async () => {
    const p = await startTestProxy({
      upstreams: [entry('company', company, { policy: { minimumAge: 0 } }), entry('public', pub)],
      config: { policy: { minimumAge: '3d' } },
    });
    try {
      expect((await listings(p, 'shared.pkg')).flat).toEqual(['1.0.0', '2.0.0']); // company's young 2.0.0 passes; public's 3.0.0 does not
      expect((await getWithReason(nupkgUrl(p, 'shared.pkg', '3.0.0'))).json.message).toContain('policy.minimumAge is 3d');
    } finally {
      await p.stop();
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
