// The supply-chain policy's other rules through a real nuproxy (issue #16): advisories at or above a severity, the
// deny list, licences, imported malicious-package advisories, and several upstreams where the upstream that wins a
// version decides (its date, licence, and its own policy override).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { daysAgo, entry, getWithReason, listings, nupkgUrl, pkgs } from '../support/policy.js';
import { malEntry } from '../support/osv.js';
import { makeNupkg } from '../support/nupkg.js';
import { idScope } from '../../src/protocol/id-scope.js';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { importAdvisories } from '../../src/policy/advisory-store.js';
import { parseOsvValue } from '../../src/policy/osv.js';

type Json = any;

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
      // VulnerabilityInfo only (the registration of 1.1.0 names no advisory): the rule reads it too
      vulnerabilities: { 'vuln.pkg': [{ severity: 3, url: 'https://example.invalid/advisory/info', versions: '[1.1.0, 1.1.0]' }] },
    });
  });
  afterAll(async () => {
    await up?.close();
  });

  it('vulnerable: high blocks high and critical advisories (registration or VulnerabilityInfo), not low ones; an exact exemption lets one through', async () => {
    const p = await startTestProxy({ upstreams: [entry('public', up)], config: { policy: { vulnerable: 'high', exempt: { vulnerable: ['Vuln.Pkg@1.0.2'] } } } });
    try {
      const l = await listings(p, 'vuln.pkg');
      expect(l.flat).toEqual(['1.0.1', '1.0.2']);
      expect(l.hives.semver2).toEqual(['1.0.1', '1.0.2']);
      const info = await getWithReason(nupkgUrl(p, 'vuln.pkg', '1.1.0'));
      expect([info.json.rule, info.json.message]).toEqual(['vulnerable', expect.stringContaining('https://example.invalid/advisory/info')]);
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
      // autocomplete of ids: an id with nothing allowed is left out like in search
      const ac = (await get(`${p.url}v3/autocomplete?q=Pkg&take=50`)).json();
      expect(ac.data).toContain('Plain.Pkg');
      expect(ac.data).not.toContain('Evil.Pkg');
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

describe('policy: an import while the server runs', () => {
  it('applies without a restart: the next poll blocks what it names, in downloads and in new answers', async () => {
    const up = await startTestUpstream({ packages: pkgs([['Late.Evil', '1.0.0'], ['Late.Evil', '2.0.0']]) });
    const p = await startTestProxy({ upstreams: [entry('public', up)], advisoryPollMs: 100 });
    try {
      // served (and cached) before anyone knows
      expect((await get(nupkgUrl(p, 'late.evil', '1.0.0'))).status).toBe(200);
      expect((await listings(p, 'late.evil')).flat).toEqual(['1.0.0', '2.0.0']);
      const blobs = new FsBlobStore(p.cacheDir);
      await blobs.init({ sweep: false });
      await importAdvisories(blobs, parseOsvValue([malEntry('MAL-2026-1', 'Late.Evil', { affected: [{ package: { ecosystem: 'NuGet', name: 'Late.Evil' }, versions: ['1.0.0'] }] })], 'late.json'));
      let r = await getWithReason(nupkgUrl(p, 'late.evil', '1.0.0'));
      for (let i = 0; i < 100 && r.status === 200; i++) {
        await new Promise((res) => setTimeout(res, 50));
        r = await getWithReason(nupkgUrl(p, 'late.evil', '1.0.0'));
      }
      expect([r.status, r.headers['x-nuproxy-policy']]).toEqual([404, 'malicious']);
      expect(p.logs.lines.some((l) => l.msg === 'imported advisories loaded')).toBe(true);
      expect((await listings(p, 'late.evil')).flat).toEqual(['2.0.0']);
      expect((await get(nupkgUrl(p, 'late.evil', '2.0.0'))).status).toBe(200);
    } finally {
      await p.stop();
      await up.close();
    }
  });
});

describe('policy: offline, from the disk alone', () => {
  it('the licence rule reads a cached package’s nuspec when no registration can be asked', async () => {
    const up = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Disk.Lic', version: '1.0.0', license: { type: 'expression', value: 'MIT' } }),
        makeNupkg({ id: 'Disk.Lic', version: '2.0.0', license: { type: 'expression', value: 'GPL-3.0-only' } }),
        makeNupkg({ id: 'Disk.Lic', version: '3.0.0', licenseUrl: 'https://example.invalid/eula' }),
      ],
    });
    const cacheDir = await mkdtemp(join(tmpdir(), 'nuproxy-policy-offline-'));
    try {
      const online = await startTestProxy({ upstreams: [entry('public', up)], cacheDir });
      for (const v of ['1.0.0', '2.0.0', '3.0.0']) expect((await get(nupkgUrl(online, 'disk.lic', v))).status).toBe(200);
      await online.stop();
      const offline = await startTestProxy({ upstreams: [entry('public', up)], cacheDir, config: { offline: true, policy: { licenses: { allow: ['MIT'], other: 'block' } } } });
      try {
        expect((await get(`${offline.url}v3/flat/disk.lic/index.json`)).json().versions).toEqual(['1.0.0']);
        const gpl = await getWithReason(nupkgUrl(offline, 'disk.lic', '2.0.0'));
        expect([gpl.status, gpl.json.rule, gpl.json.message]).toEqual([404, 'licenses', expect.stringContaining('GPL-3.0-only')]);
        expect((await getWithReason(nupkgUrl(offline, 'disk.lic', '3.0.0'))).json.message).toContain('https://example.invalid/eula');
        expect((await get(nupkgUrl(offline, 'disk.lic', '1.0.0'))).status).toBe(200);
        expect(offline.logs.lines.filter((l) => l.level === 40)).toEqual([]); // no warning per decision offline
      } finally {
        await offline.stop();
      }
    } finally {
      await up.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('policy and a token scope together (issue #15)', () => {
  it('a scoped search drops ids outside the scope and blocked versions; its version differs from the unscoped answer', async () => {
    const up = await startTestUpstream({ packages: pkgs([['Acme.Good', '1.0.0'], ['Acme.Good', '2.0.0'], ['Acme.Bad', '1.0.0'], ['Bolt.Lib', '1.0.0']]) });
    const p = await startTestProxy({ upstreams: [entry('public', up)], config: { policy: { deny: ['Acme.Bad', 'Acme.Good@2.0.0'] } } });
    try {
      const scope = idScope(['Acme.*'])!;
      const scoped = (await p.feed.search('q=&take=20', scope))!;
      const doc = JSON.parse(scoped.body);
      const unscoped = (await p.feed.search('q=&take=20'))!;
      const all = JSON.parse(unscoped.body).data.map((h: Json) => h.id);
      expect(all).toEqual(expect.arrayContaining(['Acme.Good', 'Bolt.Lib']));
      expect(all).not.toContain('Acme.Bad');
      expect(doc.data.map((h: Json) => [h.id, h.version])).toEqual(all.filter((id: string) => id.startsWith('Acme.')).map((id: string) => [id, '1.0.0']));
      expect(scoped.version).not.toBe(unscoped.version);
      const ac = JSON.parse((await p.feed.autocomplete('id=acme.good', scope))!.body);
      expect(ac.data).toEqual(['1.0.0']);
    } finally {
      await p.stop();
      await up.close();
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

