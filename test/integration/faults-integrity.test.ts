// Fault injection from the test upstream (real sockets) for package files and for metadata: after every fault the
// whole cache dir is re-hashed (blob = sidecar SHA-512, every .nupkg a complete zip, nothing left in .tmp), the
// client got an error status or a correct answer (never a complete-looking wrong body), and the same request
// succeeds once the fault is cleared. Metadata stored before a fault keeps being served, marked stale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type Fault, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { auditCache, waitForEmptyTmp } from '../support/cache-audit.js';

const FAULTS: { name: string; fault: Fault; nupkgFault?: Fault }[] = [
  { name: 'reset-mid-body', fault: { kind: 'reset-mid-body' } },
  { name: 'short-body', fault: { kind: 'short-body' } },
  { name: 'long-body', fault: { kind: 'long-body' } },
  { name: 'stall', fault: { kind: 'stall', ms: 2500 } },
  { name: 'stall-body', fault: { kind: 'stall-body', afterBytes: 10, ms: 2500 }, nupkgFault: { kind: 'stall-body', afterBytes: 64 * 1024, ms: 2500 } },
  { name: 'status-500', fault: { kind: 'status', status: 500 } },
  { name: 'html', fault: { kind: 'html' } },
  { name: 'invalid-json', fault: { kind: 'invalid-json' } },
];

/** Statuses a fault may turn into when nothing is cached: the upstream's failure, never "absent" or a client error. */
const ERROR_STATUSES = [502, 504];
/** The fault kinds whose failure is known before the proxy answers, so the client must get a status. */
const EXPECTED_STATUS: Record<string, number> = { stall: 504, 'status-500': 502, html: 502 };

type Outcome =
  | { kind: 'response'; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }
  | { kind: 'cut'; status: number | undefined; received: number; error: string };

/** A GET that reports a transfer cut off mid-body (the proxy's way to refuse a body it cannot vouch for). */
async function fetchOutcome(url: string): Promise<Outcome> {
  let status: number | undefined;
  let received = 0;
  try {
    const res = await request(url, { method: 'GET', headersTimeout: 20_000, bodyTimeout: 20_000 });
    status = res.statusCode;
    const chunks: Buffer[] = [];
    for await (const c of res.body) {
      chunks.push(c as Buffer);
      received += (c as Buffer).length;
    }
    const body = Buffer.concat(chunks);
    const declared = res.headers['content-length'];
    if (typeof declared === 'string' && Number(declared) !== body.length) {
      return { kind: 'cut', status, received, error: `body ${body.length} bytes, Content-Length ${declared}` };
    }
    return { kind: 'response', status: res.statusCode, headers: res.headers, body };
  } catch (err) {
    return { kind: 'cut', status, received, error: (err as Error).message };
  }
}

function describeOutcome(o: Outcome): string {
  return o.kind === 'cut'
    ? `cut after ${o.received} bytes (status ${o.status}): ${o.error}`
    : `${o.status} ${o.body.subarray(0, 200).toString('utf8')}`;
}

const pkgVersion = (i: number): string => `1.0.${i}`;
const metaId = (i: number): string => `Meta.F${i}`;
const pagedId = (i: number): string => `Paged.F${i}`;
const PAGED_VERSIONS = 130; // more than the 127 leaves nuget.org (and nuproxy) inline: separate page documents

describe('upstream faults never corrupt the cache', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const nupkgs = new Map<string, Buffer>(); // lower version of Fault.Pkg -> bytes
  const nuspecs = new Map<string, Buffer>(); // lower version of Fault.Pkg -> the upstream's .nuspec bytes

  /** Problems an earlier step already failed on: each later step asserts it added none (the last test: none at all). */
  const reported = new Set<string>();
  const audit = async (context: string, opts: { all?: boolean } = {}): Promise<string[]> => {
    const left = await waitForEmptyTmp(proxy.cacheDir);
    const a = await auditCache(proxy.cacheDir);
    const fresh = opts.all ? a.problems : a.problems.filter((p) => !reported.has(p));
    for (const p of a.problems) reported.add(p);
    expect(fresh, `${context}: cache problems`).toEqual([]);
    expect(left, `${context}: temp files left in .tmp`).toEqual([]);
    return a.blobs;
  };

  beforeAll(async () => {
    const packages: Uint8Array[] = [];
    FAULTS.forEach((_, i) => {
      const bytes = makeNupkg({ id: 'Fault.Pkg', version: pkgVersion(i), padBytes: 256 * 1024 });
      nupkgs.set(pkgVersion(i), Buffer.from(bytes));
      packages.push(bytes);
      for (const v of ['1.0.0', '1.1.0', '2.0.0-beta.1']) packages.push(makeNupkg({ id: metaId(i), version: v, description: `metadata fault ${i}` }));
      for (let n = 0; n < PAGED_VERSIONS; n++) packages.push(makeNupkg({ id: pagedId(i), version: `1.0.${n}` }));
    });
    upstream = await startTestUpstream({ packages });
    for (const v of nupkgs.keys()) {
      const r = await get(`${upstream.origin}/v3-flatcontainer/fault.pkg/${v}/fault.pkg.nuspec`);
      expect(r.status).toBe(200);
      nuspecs.set(v, r.body);
    }
    proxy = await startTestProxy({
      upstreams: [
        {
          name: 'faulty',
          serviceIndex: upstream.serviceIndexUrl,
          retries: 0,
          timeouts: { connect: '1s', headers: '500ms', body: '500ms' },
          circuitBreaker: { failures: 1000 },
        },
      ],
      // every metadata request goes to the upstream (a stored copy past its freshness is what "stale" means)
      config: { cache: { freshness: { versions: '1ms', registration: '1ms', search: '1ms', autocomplete: '1ms' } } },
    });
    expect((await get(proxy.index)).status).toBe(200);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  describe.each(FAULTS.map((f, i) => ({ ...f, i })))('package files: $name', ({ name, fault, nupkgFault, i }) => {
    const v = pkgVersion(i);
    const files = [
      { file: 'nuspec', path: `fault.pkg/${v}/fault.pkg.nuspec`, bytes: () => nuspecs.get(v)!, fault },
      { file: 'nupkg', path: `fault.pkg/${v}/fault.pkg.${v}.nupkg`, bytes: () => nupkgs.get(v)!, fault: nupkgFault ?? fault },
    ];
    // the nuspec first: once the .nupkg is stored, the proxy keeps the nuspec from inside it
    it.each(files)(`$file: an error or the right bytes, a sound cache, then a clean retry (${name})`, async ({ path, bytes, fault: f }) => {
      const upstreamPath = `/v3-flatcontainer/${path}`;
      upstream.setFault(upstreamPath, f);
      const hitsBefore = upstream.hits(upstreamPath);
      const o = await fetchOutcome(`${proxy.url}v3/flat/${path}`);
      expect(upstream.hits(upstreamPath), 'the fault was served').toBe(hitsBefore + 1);
      // soft: the cache audit below still runs (and reports what a wrong answer left behind)
      if (o.kind === 'response') {
        if (o.status === 200) expect.soft(o.body.equals(bytes()), `a 200 must carry the upstream's exact bytes: ${describeOutcome(o)}`).toBe(true);
        else expect.soft(ERROR_STATUSES, describeOutcome(o)).toContain(o.status);
        if (EXPECTED_STATUS[name] !== undefined) expect.soft(o.status, describeOutcome(o)).toBe(EXPECTED_STATUS[name]);
        if (o.status !== 200) expect.soft(JSON.parse(o.body.toString('utf8'))).toMatchObject({ upstream: 'faulty' });
      } else {
        // cut off mid-body: never the whole body (the last byte is held back until the file checks out)
        expect.soft(EXPECTED_STATUS[name], `${name} should have been answered with a status: ${describeOutcome(o)}`).toBeUndefined();
        expect.soft(o.received).toBeLessThan(bytes().length);
      }
      const blobs = await audit(`after ${name} on ${path}`);
      if (!(o.kind === 'response' && o.status === 200)) expect(blobs, 'a failed download stored nothing').not.toContain(`packages/${path}`);

      upstream.setFault(upstreamPath, undefined);
      const ok = await fetchOutcome(`${proxy.url}v3/flat/${path}`);
      expect(ok.kind === 'response' && ok.status, describeOutcome(ok)).toBe(200);
      expect(ok.kind === 'response' && ok.body.equals(bytes()), 'the retry returns the upstream bytes').toBe(true);
      const after = await audit(`after the retry of ${path}`);
      expect(after).toContain(`packages/${path}`);
      // and from the cache now, byte for byte
      const hit = await get(`${proxy.url}v3/flat/${path}`);
      expect(hit.headers['x-nuproxy-cache']).toBe('hit');
      expect(hit.body.equals(bytes())).toBe(true);
    });
  });

  interface MetaCase {
    what: string;
    /** Upstream paths the first (cold) fault applies to. */
    faults: (i: number) => RegExp[];
    /**
     * Upstream paths faulted while a stored copy exists. The upstream's content changes first (a new version), so
     * it answers 200 rather than 304 to the proxy's revalidation, and that 200 is what the fault mangles. For the
     * registration the id's version list is faulted too: the stored registration is then served as it was.
     */
    staleFaults: (i: number) => RegExp[];
    /** Proxy URLs (relative to its root) the client asks, for the upstream's current version list. */
    urls: (i: number, versions: string[]) => string[];
    /** Checks a correct answer against the upstream's current version list. */
    check: (i: number, url: string, json: any, versions: string[]) => void;
  }

  const regVersions = (leaves: any[]): string[] => leaves.map((l) => l.catalogEntry.version as string);
  const flatPath = (id: string): RegExp => new RegExp(`^/v3-flatcontainer/${id.toLowerCase()}/index\\.json$`);
  const regIndexPath = (id: string): RegExp => new RegExp(`^/v3/registration5-[^/]+/${id.toLowerCase()}/index\\.json$`);
  const regPagePath = (id: string): RegExp => new RegExp(`^/v3/registration5-[^/]+/${id.toLowerCase()}/page/`);
  const chunks = (versions: string[]): string[][] => Array.from({ length: Math.ceil(versions.length / 64) }, (_, k) => versions.slice(k * 64, k * 64 + 64));

  const META: MetaCase[] = [
    {
      what: 'version list',
      faults: (i) => [flatPath(metaId(i))],
      staleFaults: (i) => [flatPath(metaId(i))],
      urls: (i) => [`v3/flat/${metaId(i).toLowerCase()}/index.json`],
      check: (_i, _u, json, versions) => expect(json).toEqual({ versions }),
    },
    {
      what: 'registration index',
      faults: (i) => [regIndexPath(metaId(i))],
      staleFaults: (i) => [regIndexPath(metaId(i)), flatPath(metaId(i))],
      urls: (i) => [`v3/registration/semver2/${metaId(i).toLowerCase()}/index.json`],
      check: (i, _u, json, versions) => {
        expect(json.count).toBe(1);
        expect(json.items[0].count).toBe(versions.length);
        expect(regVersions(json.items[0].items)).toEqual(versions);
        expect(json.items[0].items[0].catalogEntry.id).toBe(metaId(i));
      },
    },
    {
      what: 'registration pages',
      faults: (i) => [regPagePath(pagedId(i))],
      staleFaults: (i) => [regPagePath(pagedId(i)), flatPath(pagedId(i))],
      urls: (i, versions) => {
        const lower = pagedId(i).toLowerCase();
        const pages = chunks(versions);
        return [
          `v3/registration/semver2/${lower}/index.json`,
          `v3/registration/semver2/${lower}/page/${pages[0]![0]}/${pages[0]!.at(-1)}.json`,
          `v3/registration/semver2/${lower}/page/${pages.at(-1)![0]}/${pages.at(-1)!.at(-1)}.json`,
        ];
      },
      check: (_i, url, json, versions) => {
        const pages = chunks(versions);
        if (url.endsWith('/index.json')) {
          expect(json.count).toBe(pages.length);
          expect((json.items as any[]).map((p) => [p.lower, p.upper, p.count, p.items === undefined])).toEqual(pages.map((c) => [c[0], c.at(-1), c.length, true]));
        } else {
          const page = url.includes(`/page/${pages[0]![0]}/${pages[0]!.at(-1)}.json`) ? pages[0]! : pages.at(-1)!;
          expect(json.count).toBe(page.length);
          expect(regVersions(json.items)).toEqual(page);
        }
      },
    },
    {
      what: 'search',
      faults: () => [/^\/query$/],
      staleFaults: () => [/^\/query$/],
      urls: (i) => [`v3/query?q=${metaId(i).toLowerCase()}&prerelease=true&semVerLevel=2.0.0`],
      check: (i, _u, json, versions) => {
        expect(json.totalHits).toBe(1);
        expect(json.data[0].id).toBe(metaId(i));
        expect((json.data[0].versions as any[]).map((x) => x.version)).toEqual(versions);
      },
    },
  ];

  /** What the upstream lists for an id now (asked directly, never through a fault). */
  const upstreamVersions = async (id: string): Promise<string[]> => {
    const r = await get(`${upstream.origin}/v3-flatcontainer/${id.toLowerCase()}/index.json`);
    expect(r.status).toBe(200);
    return r.json().versions as string[];
  };
  const setFaults = (matches: RegExp[], fault: Fault | undefined): void => matches.forEach((m) => upstream.setFault(m, fault));
  let added = 0;

  describe.each(META)('metadata: $what', (m) => {
    it.each(FAULTS.map((f, i) => ({ ...f, i })))('$name: 502/504 cold, the right JSON after, the stored copy during a second fault', async ({ name, fault, i }) => {
      const id = m.what === 'registration pages' ? pagedId(i) : metaId(i);
      const before = await upstreamVersions(id);
      const urls = m.urls(i, before);

      // cold: nothing stored, nothing on disk for this id: the client gets the failure
      const cold = m.faults(i);
      setFaults(cold, fault);
      for (const u of urls) {
        const hitsBefore = cold.reduce((n, x) => n + upstream.hits(x), 0);
        const o = await fetchOutcome(`${proxy.url}${u}`);
        expect.soft(o.kind, `${u}: ${describeOutcome(o)}`).toBe('response');
        if (o.kind !== 'response') continue;
        expect.soft(ERROR_STATUSES, `${u}: ${describeOutcome(o)}`).toContain(o.status);
        if (EXPECTED_STATUS[name] !== undefined) expect.soft(o.status, `${u}: ${describeOutcome(o)}`).toBe(EXPECTED_STATUS[name]);
        if (o.status !== 200) expect.soft(JSON.parse(o.body.toString('utf8'))).toMatchObject({ upstream: 'faulty' });
        expect.soft(cold.reduce((n, x) => n + upstream.hits(x), 0), `${u}: the fault was served`).toBeGreaterThan(hitsBefore);
      }
      await audit(`after ${name} on the ${m.what} (cold)`);

      // cleared: the right answer (the failure was not stored as an answer)
      setFaults(cold, undefined);
      const good = new Map<string, string>();
      for (const u of urls) {
        const r = await get(`${proxy.url}${u}`);
        expect(r.status, `${u}: ${r.text.slice(0, 300)}`).toBe(200);
        m.check(i, u, r.json(), before);
        good.set(u, r.text);
      }
      await audit(`after the retry of the ${m.what}`);

      // stored, past its freshness, and the upstream has something new: a second fault serves the stored copy
      upstream.addPackage(makeNupkg({ id, version: `3.0.${added++}` }));
      const after = await upstreamVersions(id);
      expect(after.length).toBe(before.length + 1);
      const stale = m.staleFaults(i);
      setFaults(stale, fault);
      for (const u of urls) {
        const hitsBefore = stale.reduce((n, x) => n + upstream.hits(x), 0);
        const r = await get(`${proxy.url}${u}`);
        expect.soft(r.status, `${u} during ${name}: ${r.text.slice(0, 300)}`).toBe(200);
        expect.soft(r.headers['x-nuproxy-cache'], `${u}: x-nuproxy-cache`).toBe('stale');
        expect.soft(r.text, `${u}: the stored answer, as it was`).toBe(good.get(u));
        expect.soft(stale.reduce((n, x) => n + upstream.hits(x), 0), `${u}: the fault was served`).toBeGreaterThan(hitsBefore);
      }
      await audit(`after ${name} on the ${m.what} (stored)`);

      // cleared again: the upstream's new answer
      setFaults(stale, undefined);
      for (const u of m.urls(i, after)) {
        const r = await get(`${proxy.url}${u}`);
        expect(r.status, `${u}: ${r.text.slice(0, 300)}`).toBe(200);
        expect(r.headers['x-nuproxy-cache']).not.toBe('stale');
        m.check(i, u, r.json(), after);
      }
    });
  });

  it('the cache holds exactly the package files that were served whole, each intact', async () => {
    const blobs = await audit('at the end', { all: true });
    const expected = [...nupkgs.keys()].flatMap((v) => [`packages/fault.pkg/${v}/fault.pkg.${v}.nupkg`, `packages/fault.pkg/${v}/fault.pkg.nuspec`]);
    expect(blobs).toEqual(expected.sort());
  });
});
