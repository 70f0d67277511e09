// Issue #11 item 1, "a parse that cannot block the event loop for seconds", for large registration indexes: a
// ~60 MB index inlining 75,000 leaves (under limits.metadataBytes, 64 MB, and limits.versions, 100,000) used to
// hold the event loop for 2.2-2.6 s while it was rewritten, stringified to be stored, parsed again and merged
// (/health/live waited that long). Against the real nuproxy process at default limits: the index is answered,
// rewritten to the proxy's URLs, while every health probe answers; and the warm answer is the same.
import { describe, expect, it } from 'vitest';
import { get } from '../support/http.js';
import { whileProbing as probing } from '../support/probe.js';
import { document } from '../support/hostile/metadata.js';
import { nuproxyBehindHostile } from '../support/hostile/process.js';

const FLAT = '/v3-flatcontainer/';
const REG = '/v3/registration5-gz-semver2/';
const ID = 'Big.Lib';
const LID = 'big.lib';
const LEAVES = 75_000;
/** A probe that waits this long means the event loop was held for well over a second. */
const PROBE_CEILING_MS = 1500;

type Json = Record<string, unknown>;

/** A leaf shaped like nuget.org's (catalog entry with dependency groups), every URL the upstream's. */
function leaf(origin: string, v: string, lid = LID, id = ID): Json {
  const dep = (id: string): Json => ({ id, range: '[1.0.0, )', registration: `${origin}${REG}${id.toLowerCase()}/index.json` });
  return {
    '@id': `${origin}${REG}${lid}/${v}.json`,
    '@type': 'Package',
    catalogEntry: {
      '@id': `${origin}/catalog/${lid}.${v}.json`,
      '@type': 'PackageDetails',
      authors: 'Someone',
      description: 'Many versions.',
      dependencyGroups: [{ targetFramework: 'net8.0', dependencies: [dep('Dep.Two')] }],
      id,
      listed: true,
      packageContent: `${origin}${FLAT}${lid}/${v}/${lid}.${v}.nupkg`,
      published: '2024-01-02T03:04:05.678Z',
      version: v,
    },
    packageContent: `${origin}${FLAT}${lid}/${v}/${lid}.${v}.nupkg`,
    registration: `${origin}${REG}${lid}/index.json`,
  };
}

/** The index, inlining every leaf in pages of 64 as nuget.org pages them, and its size in bytes. */
function bigIndex(origin: string): { body: string; versions: string[] } {
  const versions = Array.from({ length: LEAVES }, (_, i) => `${Math.floor(i / 10_000)}.${Math.floor(i / 100) % 100}.${i % 100}`);
  const items: Json[] = [];
  for (let i = 0; i < versions.length; i += 64) {
    const vs = versions.slice(i, i + 64);
    items.push({ '@id': `${origin}${REG}${LID}/index.json#page/${vs[0]}/${vs[vs.length - 1]}`, '@type': 'catalog:CatalogPage', count: vs.length, lower: vs[0], upper: vs[vs.length - 1], parent: `${origin}${REG}${LID}/index.json`, items: vs.map((v) => leaf(origin, v)) });
  }
  return { body: JSON.stringify({ '@id': `${origin}${REG}${LID}/index.json`, '@type': ['catalog:CatalogRoot', 'PackageRegistration'], count: items.length, items }), versions };
}

describe('a large registration index against the nuproxy process, default limits', () => {
  const fx = nuproxyBehindHostile('regsize');

  const whileProbing = <T>(request: () => Promise<T>): ReturnType<typeof probing<T>> => probing(fx.proc.url, request);

  it(`a ~60 MB index of ${LEAVES} inlined leaves is served rewritten, cold and warm, while /health/live keeps answering`, async () => {
    const { body, versions } = bigIndex(fx.hostile.origin);
    expect(body.length).toBeGreaterThan(55 * 1024 * 1024);
    expect(body.length).toBeLessThan(64 * 1024 * 1024);
    fx.hostile.on(`${REG}${LID}/index.json`, document(body));
    fx.hostile.on(`${FLAT}${LID}/index.json`, document(JSON.stringify({ versions })));
    const url = `${fx.proc.url}v3/registration/semver2/${LID}/index.json`;
    for (const round of ['cold', 'warm']) {
      const { answer, slowest, probes } = await whileProbing(() => get(url));
      console.log(`${(body.length / 1024 / 1024).toFixed(1)} MB registration (${round}): slowest of ${probes} health probes ${slowest.toFixed(0)} ms`);
      expect(answer.status, round).toBe(200);
      const index = answer.json() as { count: number; items: { '@id': string; count: number; lower: string; upper: string; items?: Json[] }[] };
      const pages = Math.ceil(LEAVES / 64);
      expect(index.count, round).toBe(pages);
      expect(index.items.reduce((n, p) => n + p.count, 0), round).toBe(LEAVES);
      // over 127 leaves the proxy pages the index itself: spot-check the first, a middle and the last page
      for (const i of [0, Math.floor(pages / 2), pages - 1]) {
        const p = index.items[i]!;
        expect(p.items, round).toBeUndefined();
        expect(p['@id'], round).toBe(`${fx.proc.url}v3/registration/semver2/${LID}/page/${p.lower}/${p.upper}.json`);
        expect(p.lower, round).toBe(versions[i * 64]);
      }
      expect(answer.text.includes(fx.hostile.origin), round).toBe(false);
      expect(probes, round).toBeGreaterThan(0);
      expect(slowest, round).toBeLessThan(PROBE_CEILING_MS);
    }
    // a page of it: leaves and their URLs rewritten to the proxy
    const mid = index0(versions, Math.floor(LEAVES / 2));
    const page = (await get(`${fx.proc.url}v3/registration/semver2/${LID}/page/${mid.lower}/${mid.upper}.json`)).json() as { items: Json[] };
    expect(page.items.length).toBe(64);
    const l = page.items[5]!;
    const v = versions[mid.start + 5]!;
    expect(l['@id']).toBe(`${fx.proc.url}v3/registration/semver2/${LID}/${v}.json`);
    expect(l.packageContent).toBe(`${fx.proc.url}v3/flat/${LID}/${v}/${LID}.${v}.nupkg`);
    const ce = l.catalogEntry as { version: string; packageContent: string; dependencyGroups: { dependencies: { registration: string }[] }[] };
    expect(ce.version).toBe(v);
    expect(ce.packageContent).toBe(`${fx.proc.url}v3/flat/${LID}/${v}/${LID}.${v}.nupkg`);
    expect(ce.dependencyGroups[0]!.dependencies[0]!.registration).toBe(`${fx.proc.url}v3/registration/semver2/dep.two/index.json`);
  });

  it(`an index whose one page, fetched on its own, holds ${LEAVES} leaves: served rewritten while /health/live keeps answering`, async () => {
    const lid = 'big.page';
    const versions = Array.from({ length: LEAVES }, (_, i) => `${Math.floor(i / 10_000)}.${Math.floor(i / 100) % 100}.${i % 100}`);
    const pageUrl = `${fx.hostile.origin}${REG}${lid}/page/${versions[0]}/${versions[LEAVES - 1]}.json`;
    const bounds = { lower: versions[0], upper: versions[LEAVES - 1] };
    const page = JSON.stringify({ '@id': pageUrl, ...bounds, count: LEAVES, parent: `${fx.hostile.origin}${REG}${lid}/index.json`, items: versions.map((v) => leaf(fx.hostile.origin, v, lid, 'Big.Page')) });
    expect(page.length).toBeGreaterThan(50 * 1024 * 1024);
    expect(page.length).toBeLessThan(64 * 1024 * 1024);
    fx.hostile.on(pageUrl.slice(fx.hostile.origin.length), document(page));
    fx.hostile.on(`${REG}${lid}/index.json`, document(JSON.stringify({ '@id': `${fx.hostile.origin}${REG}${lid}/index.json`, count: 1, items: [{ '@id': pageUrl, ...bounds, count: LEAVES }] })));
    fx.hostile.on(`${FLAT}${lid}/index.json`, document(JSON.stringify({ versions })));
    const { answer, slowest, probes } = await whileProbing(() => get(`${fx.proc.url}v3/registration/semver2/${lid}/index.json`));
    console.log(`${(page.length / 1024 / 1024).toFixed(1)} MB registration page: slowest of ${probes} health probes ${slowest.toFixed(0)} ms`);
    expect(answer.status).toBe(200);
    const index = answer.json() as { count: number; items: { count: number }[] };
    expect(index.count).toBe(Math.ceil(LEAVES / 64));
    expect(index.items.reduce((n, p) => n + p.count, 0)).toBe(LEAVES);
    expect(answer.text.includes(fx.hostile.origin)).toBe(false);
    expect(probes).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(PROBE_CEILING_MS);
  });
});

/** The bounds of the 64-leaf page holding leaf `n`. */
function index0(versions: string[], n: number): { start: number; lower: string; upper: string } {
  const start = Math.floor(n / 64) * 64;
  return { start, lower: versions[start]!, upper: versions[Math.min(start + 63, versions.length - 1)]! };
}
