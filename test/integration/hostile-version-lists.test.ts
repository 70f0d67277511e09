// Issue #11 item 1, "a parse that cannot block the event loop for seconds", for large version lists: a list
// under the byte limits used to hold the event loop for seconds while it was sorted and merged (800,000 versions
// in 12 MB: 11 s without an answer to /health/live). Against the real nuproxy process at default limits: a list
// at limits.versions (100,000, shuffled: the sort does its full work) is answered, exact, while the health probe
// keeps answering; one over it is a 502 naming the limit, nothing stored; the same for a registration.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { get } from '../support/http.js';
import { whileProbing as probing } from '../support/probe.js';
import { document } from '../support/hostile/metadata.js';
import { nuproxyBehindHostile } from '../support/hostile/process.js';

const FLAT = '/v3-flatcontainer/';
const REG = '/v3/registration5-gz-semver2/';
const LIMIT = 100_000; // the default of upstreams[].limits.versions
/** Generous: a probe that waits this long means the event loop was held for seconds. */
const PROBE_CEILING_MS = 2000;

/** `n` distinct versions (releases and prereleases, mixed case), shuffled, with the order NuGet sorts them in. */
function versionList(n: number): { shuffled: string[]; sorted: string[] } {
  const sorted: string[] = [];
  for (let i = 0; sorted.length < n; i++) {
    const base = `${Math.floor(i / 1000)}.${Math.floor(i / 10) % 100}.${i % 10}`;
    sorted.push(`${base}-alpha.${i % 7}`, `${base}-Beta`, base);
  }
  sorted.length = n;
  // a list made sorted, then shuffled with a fixed seed (the test is the same on every run)
  let seed = 42;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const shuffled = [...sorted];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  // expected: sorted ascending by NuGet precedence ('alpha.0' < ... < 'Beta' < release), lowercased
  const order = (v: string): [string, number] => [v.split('-')[0]!, v.includes('-alpha') ? Number(v.split('.').pop()) : v.includes('-') ? 10 : 11];
  const expected = sorted.map((v) => ({ v, k: order(v) }));
  expected.sort((a, b) => cmpBase(a.k[0], b.k[0]) || a.k[1] - b.k[1]);
  return { shuffled, sorted: expected.map((e) => e.v.toLowerCase()) };
}

function cmpBase(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
}

describe('large version lists against the nuproxy process, default limits', () => {
  const fx = nuproxyBehindHostile('versions');

  const whileProbing = <T>(request: () => Promise<T>): ReturnType<typeof probing<T>> => probing(fx.proc.url, request);

  /** Files under the cache directory that mention `id` (a stored answer would). */
  async function storedFor(id: string): Promise<string[]> {
    const found: string[] = [];
    for (const e of await readdir(join(fx.dir, 'cache'), { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const path = join(e.parentPath, e.name);
      if (path.includes(id) || (await readFile(path)).includes(id)) found.push(path);
    }
    return found;
  }

  it(`a shuffled list of exactly limits.versions (${LIMIT}) is served sorted and exact while /health/live keeps answering`, async () => {
    const { shuffled, sorted } = versionList(LIMIT);
    fx.hostile.on(`${FLAT}many.lib/index.json`, document(JSON.stringify({ versions: shuffled })));
    const { answer, slowest, probes } = await whileProbing(() => get(`${fx.proc.url}v3/flat/many.lib/index.json`));
    console.log(`${LIMIT} versions: slowest of ${probes} health probes ${slowest.toFixed(0)} ms`);
    expect(answer.status).toBe(200);
    expect(answer.json().versions).toEqual(sorted);
    expect(probes).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(PROBE_CEILING_MS);
  });

  it('a list one over the limit, and one of 800,000 versions (12 MB, under metadataBytes): 502 naming limits.versions, nothing stored, probes answering', async () => {
    for (const [id, n] of [['over.lib', LIMIT + 1], ['huge.lib', 800_000]] as const) {
      const path = `${FLAT}${id}/index.json`;
      fx.hostile.on(path, document(JSON.stringify({ versions: versionList(n).shuffled })));
      const { answer, slowest } = await whileProbing(() => get(`${fx.proc.url}v3/flat/${id}/index.json`));
      expect(answer.status, id).toBe(502);
      expect(answer.json(), id).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining(`limits.versions (${LIMIT})`), upstream: 'hostile' });
      expect(slowest, id).toBeLessThan(PROBE_CEILING_MS);
      expect(await storedFor(id), id).toEqual([]);
      // not stored: the next request asks the upstream again, which now answers properly
      const asked = fx.hostile.hits(path);
      fx.hostile.on(path, document('{"versions":["1.0.0"]}'));
      expect((await get(`${fx.proc.url}v3/flat/${id}/index.json`)).json(), id).toEqual({ versions: ['1.0.0'] });
      expect(fx.hostile.hits(path), id).toBe(asked + 1);
    }
  });

  it('a registration with more leaves than limits.versions (inline, or across its pages): 502 naming the limit, nothing stored', async () => {
    const leaf = (id: string, v: string): Record<string, unknown> => ({ '@id': `${fx.hostile.origin}${REG}${id}/${v}.json`, catalogEntry: { id, version: v }, packageContent: `${fx.hostile.origin}${FLAT}${id}/${v}/${id}.${v}.nupkg` });
    const versions = Array.from({ length: LIMIT + 1 }, (_, i) => `1.0.${i}`);
    const page = (id: string, vs: string[]): Record<string, unknown> => ({ '@id': `${fx.hostile.origin}${REG}${id}/page/${vs[0]}/${vs[vs.length - 1]}.json`, count: vs.length, lower: vs[0], upper: vs[vs.length - 1] });
    // one index inlining every leaf; another whose two pages are fetched on their own
    fx.hostile.on(`${REG}inline.lib/index.json`, document(JSON.stringify({ count: 1, items: [{ ...page('inline.lib', versions), items: versions.map((v) => leaf('inline.lib', v)) }] })));
    const halves = [versions.slice(0, 50_001), versions.slice(50_001)];
    fx.hostile.on(`${REG}paged.lib/index.json`, document(JSON.stringify({ count: 2, items: halves.map((h) => page('paged.lib', h)) })));
    for (const h of halves) fx.hostile.on(`${REG}paged.lib/page/${h[0]}/${h[h.length - 1]}.json`, document(JSON.stringify({ ...page('paged.lib', h), items: h.map((v) => leaf('paged.lib', v)) })));
    for (const id of ['inline.lib', 'paged.lib']) {
      fx.hostile.on(`${FLAT}${id}/index.json`, document(JSON.stringify({ versions: ['1.0.0'] })));
      const r = await get(`${fx.proc.url}v3/registration/semver2/${id}/index.json`);
      expect(r.status, id).toBe(502);
      expect(r.json(), id).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining(`limits.versions (${LIMIT})`), upstream: 'hostile' });
      expect((await storedFor(`reg:hostile`)).filter((p) => p.includes(id)), id).toEqual([]);
    }
  });
});
