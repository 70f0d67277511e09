// Issue #11 items 1 and 2, and "JSON nested 100,000 deep gives 500": metadata from a hostile upstream (bombs,
// endless or huge documents, deep nesting, echoed credentials) against the real nuproxy process (for memory and
// liveness) and an in-process proxy with small limits (for exact boundaries, Redis and stale copies).
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCache } from '../support/cache-audit.js';
import { get } from '../support/http.js';
import { bombSizes, deepDocument, document, echoCredentials, endlessVersionList, gzipBomb, hugeContentLength, tracker, versionListOfSize } from '../support/hostile/metadata.js';
import { rssOf, startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { collectGarbage, inspectorEnv } from '../support/inspector.js';
import { freePort } from '../support/net.js';
import { redisKeys, redisValues } from '../support/redis-peek.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';

const MB = 1024 * 1024;
const FLAT = '/v3-flatcontainer/';
const REG = '/v3/registration5-gz-semver2/';

async function peakRss(pid: number): Promise<number> {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/**
 * Forces a full collection in the process (its inspector), then polls until its RSS is below `ceiling` (freed
 * buffers go back to the system in the background), at most 10 s. Returns the last RSS seen.
 */
async function rssSettlesBelow(pid: number, inspectPort: number, ceiling: number): Promise<number> {
  await collectGarbage(inspectPort);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rss = await rssOf(pid);
    if (rss < ceiling || Date.now() > deadline) return rss;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('hostile metadata against the nuproxy process, default limits', () => {
  let dir: string;
  let hostile: HostileUpstream;
  let proc: NuproxyProcess;
  let pid: number;
  let baseline: number;
  let inspectPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-hostile-meta-'));
    hostile = await startHostileUpstream();
    hostile.on(`${FLAT}good.lib/index.json`, document('{"versions":["1.0.0"]}'));
    inspectPort = await freePort();
    proc = await startNuproxy(
      dir,
      'hostile-meta',
      {
        cache: { dir: join(dir, 'cache') },
        upstreams: [{ name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0, timeouts: { connect: '2s', headers: '20s', body: '20s' } }],
      },
      [],
      inspectorEnv(inspectPort),
    );
    pid = proc.child.pid!;
    // warm: service index fetched, code paths compiled, before memory is measured
    expect((await get(`${proc.url}v3/flat/good.lib/index.json`)).status).toBe(200);
    await collectGarbage(inspectPort);
    baseline = await rssOf(pid);
  });
  afterAll(async () => {
    await proc?.stop();
    await hostile?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function alive(): Promise<void> {
    expect(proc.child.exitCode).toBeNull();
    expect((await get(`${proc.url}health/live`)).status).toBe(200);
  }

  it('a 2.6 MB gzip registration index inflating to 2.5 GB: 502 naming metadataBytes (64 MB), peak memory bounded, RSS back, nothing stored', async () => {
    const sizes = bombSizes();
    expect(sizes.wire).toBeLessThan(3 * MB);
    expect(sizes.decoded).toBeGreaterThan(2.4 * 1024 * MB);
    const sent = tracker();
    hostile.on(`${FLAT}bomb.lib/index.json`, document('{"versions":["1.0.0"]}'));
    hostile.on(`${REG}bomb.lib/index.json`, gzipBomb(sent));
    const r = await get(`${proc.url}v3/registration/semver2/bomb.lib/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('limits.metadataBytes (64 MB)'), upstream: 'hostile' });
    await sent.done;
    await alive();
    const peak = await peakRss(pid);
    const settled = await rssSettlesBelow(pid, inspectPort, baseline + 100 * MB);
    console.log(`gzip bomb: RSS before ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB, settled ${(settled / MB).toFixed(0)} MB; the bomb decodes to ${(sizes.decoded / MB).toFixed(0)} MB`);
    // the process held at most about the decoded limit, not the 2.5 GB (today: abort, 5.4 GB peak)
    expect(peak - baseline).toBeLessThan(400 * MB);
    expect(settled).toBeLessThan(baseline + 100 * MB);
    // not stored: the next request asks the upstream again, which now answers properly
    hostile.on(`${REG}bomb.lib/index.json`, document(JSON.stringify({ count: 0, items: [] })));
    const again = await get(`${proc.url}v3/registration/semver2/bomb.lib/index.json`);
    expect(again.status).toBe(200);
    expect(again.json().count).toBe(1);
    expect((await auditCache(join(dir, 'cache'))).blobs).toEqual([]);
  });

  it('endless version lists, four at once, three times: 502 naming metadataBytes, connections closed, health probes answering throughout', async () => {
    const probes: number[] = [];
    let attacking = true;
    const prober = (async () => {
      while (attacking) {
        const t = performance.now();
        const p = await get(`${proc.url}health/live`);
        expect(p.status).toBe(200);
        probes.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const sent: ReturnType<typeof tracker>[] = [];
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        [0, 1, 2, 3].map((k) => {
          const s = tracker();
          sent.push(s);
          hostile.on(`${FLAT}endless.${round}.${k}/index.json`, endlessVersionList(s));
          return get(`${proc.url}v3/flat/endless.${round}.${k}/index.json`);
        }),
      );
      for (const r of answers) {
        expect(r.status).toBe(502);
        expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('limits.metadataBytes (64 MB)'), upstream: 'hostile' });
      }
    }
    attacking = false;
    await prober;
    await Promise.all(sent.map((s) => s.done));
    // nuproxy hung up on each: the upstream did not get to finish (it never would)
    expect(sent.every((s) => s.closed)).toBe(true);
    const worst = Math.max(...probes);
    console.log(`endless version lists: ${(sent.reduce((n, s) => n + s.bytes, 0) / MB).toFixed(0)} MB sent in all before nuproxy hung up; ${probes.length} health probes, worst ${worst.toFixed(0)} ms`);
    expect(probes.length).toBeGreaterThanOrEqual(5);
    // generous ceiling (today the probes stopped for 90 s before the process died)
    expect(worst).toBeLessThan(3000);
    await alive();
    const settled = await rssSettlesBelow(pid, inspectPort, baseline + 100 * MB);
    console.log(`endless version lists: RSS before ${(baseline / MB).toFixed(0)} MB, peak ${((await peakRss(pid)) / MB).toFixed(0)} MB, settled ${(settled / MB).toFixed(0)} MB`);
    expect(settled).toBeLessThan(baseline + 100 * MB);
  });

  it('a 10 GB Content-Length: 502 naming the limit at once, without reading the body', async () => {
    const sent = tracker();
    hostile.on(`${FLAT}huge.lib/index.json`, hugeContentLength(sent));
    const r = await get(`${proc.url}v3/flat/huge.lib/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringMatching(/of 10 GB, over limits\.metadataBytes \(64 MB\)/), upstream: 'hostile' });
    await sent.done;
    expect(sent.closed).toBe(true);
    await alive();
  });

  it('a document nested 100,000 deep: 502 naming limits.jsonDepth (64), not 500 (registration) or 200 (version list)', async () => {
    const deep = `{"count":1,"items":[{"items":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
    hostile.on(`${FLAT}deep.lib/index.json`, document(deepDocument(100_000)));
    hostile.on(`${REG}deep.reg/index.json`, document(deep));
    hostile.on(`${FLAT}deep.reg/index.json`, document('{"versions":["1.0.0"]}'));
    for (const path of ['v3/flat/deep.lib/index.json', 'v3/registration/semver2/deep.reg/index.json']) {
      const r = await get(`${proc.url}${path}`);
      expect(r.status, path).toBe(502);
      expect(r.json(), path).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('limits.jsonDepth (64)'), upstream: 'hostile' });
    }
    await alive();
  });
});

describe('metadata limits at their boundaries (in-process, small limits)', () => {
  let hostile: HostileUpstream;
  let proxy: TestProxy;
  const limits = { metadataBytes: 256 * 1024, metadataCompressedBytes: 64 * 1024, jsonDepth: 16 };

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    proxy = await startTestProxy({ upstreams: [{ name: 'small', serviceIndex: hostile.serviceIndexUrl, retries: 0, limits }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await hostile?.close();
  });

  const versions = async (id: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await get(`${proxy.url}v3/flat/${id}/index.json`);
    return { status: r.status, body: r.json() };
  };

  it('a version list of exactly metadataBytes is served; one byte more is refused, with or without a Content-Length, gzip or not', async () => {
    const exact = versionListOfSize(limits.metadataBytes);
    const over = versionListOfSize(limits.metadataBytes + 1);
    expect(exact.length).toBe(limits.metadataBytes);
    hostile.on(`${FLAT}exact.lib/index.json`, document(exact));
    hostile.on(`${FLAT}exact.gz/index.json`, document(gzipSync(exact), { gzip: true }));
    expect(await versions('exact.lib')).toMatchObject({ status: 200 });
    expect(await versions('exact.gz')).toMatchObject({ status: 200 });
    const cases: [string, ReturnType<typeof document>][] = [
      ['over.cl', document(over)],
      ['over.chunked', document(over, { contentLength: false })],
      ['over.gz', document(gzipSync(over), { gzip: true })],
    ];
    for (const [id, handler] of cases) {
      hostile.on(`${FLAT}${id}/index.json`, handler);
      const r = await versions(id);
      expect(r, id).toEqual({ status: 502, body: { error: 'upstream_bad_response', message: expect.stringContaining('limits.metadataBytes (256 KB)'), upstream: 'small' } });
    }
  });

  it('a gzip body over metadataCompressedBytes is refused although it decodes within metadataBytes', async () => {
    const doc = versionListOfSize(200 * 1024, { incompressible: true });
    const gz = gzipSync(doc);
    expect(gz.length).toBeGreaterThan(limits.metadataCompressedBytes);
    hostile.on(`${FLAT}wire.cl/index.json`, document(gz, { gzip: true }));
    hostile.on(`${FLAT}wire.chunked/index.json`, document(gz, { gzip: true, contentLength: false }));
    for (const id of ['wire.cl', 'wire.chunked']) {
      expect(await versions(id), id).toEqual({ status: 502, body: { error: 'upstream_bad_response', message: expect.stringContaining('limits.metadataCompressedBytes (64 KB)'), upstream: 'small' } });
    }
  });

  it('nesting of exactly jsonDepth is served; one level more is refused', async () => {
    // the document itself is level 1
    hostile.on(`${FLAT}depth.ok/index.json`, document(`{"versions":["1.0.0"],"x":${'['.repeat(15)}${']'.repeat(15)}}`));
    hostile.on(`${FLAT}depth.over/index.json`, document(`{"versions":["1.0.0"],"x":${'['.repeat(16)}${']'.repeat(16)}}`));
    expect(await versions('depth.ok')).toEqual({ status: 200, body: { versions: ['1.0.0'] } });
    expect(await versions('depth.over')).toEqual({ status: 502, body: { error: 'upstream_bad_response', message: expect.stringContaining('limits.jsonDepth (16)'), upstream: 'small' } });
  });
});

describe('a large valid document (parsed in slices) and a secret hidden in one', () => {
  const token = 'large-doc+token/0123456789';
  let hostile: HostileUpstream;
  let proxy: TestProxy;

  /** An inlined registration index of `n` leaves (about 10 KB each, with JSON escapes). */
  function registration(id: string, n: number, secretAt?: number): { doc: string; versions: string[] } {
    const versions = Array.from({ length: n }, (_, i) => `1.0.${i}`);
    const leaves = versions.map((v, i) => ({
      '@id': `${hostile.origin}${REG}${id}/${v}.json`,
      catalogEntry: {
        '@id': `${hostile.origin}/catalog/${id}.${v}.json`,
        id,
        version: v,
        description: `Caf\\u00e9 "${i}"\n${'x'.repeat(10_000)}${i === secretAt ? token.replace(/[+/]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : ''}`,
        listed: true,
      },
      packageContent: `${hostile.origin}${FLAT}${id}/${v}/${id}.${v}.nupkg`,
    }));
    const page = { '@id': `${hostile.origin}${REG}${id}/index.json#page`, count: n, lower: versions[0], upper: versions[n - 1], items: leaves };
    // descriptions carry escapes as text: JSON.stringify would escape the backslashes, so they are put back
    return { doc: JSON.stringify({ count: 1, items: [page] }).replaceAll('\\\\', '\\'), versions };
  }

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    proxy = await startTestProxy({ upstreams: [{ name: 'large', serviceIndex: hostile.serviceIndexUrl, retries: 0, auth: { type: 'bearer', tokenEnv: 'T_TOKEN' } }], env: { T_TOKEN: token } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await hostile?.close();
  });

  it('a 2.5 MB registration index with escapes is served whole and exact', async () => {
    const { doc, versions } = registration('large.lib', 250);
    // past the 1 MB parsed at once, and past the 2 MB after which a document is built piecewise
    expect(doc.length).toBeGreaterThan(2.4 * MB);
    hostile.on(`${FLAT}large.lib/index.json`, document(JSON.stringify({ versions })));
    hostile.on(`${REG}large.lib/index.json`, document(doc));
    const index = await get(`${proxy.url}v3/registration/semver2/large.lib/index.json`);
    expect(index.status).toBe(200);
    const leaves: { catalogEntry: { version: string; description: string } }[] = [];
    for (const page of index.json().items as { '@id': string; items?: unknown[] }[]) {
      leaves.push(...((page.items ?? (await get(page['@id'])).json().items) as typeof leaves));
    }
    expect(leaves.map((l) => l.catalogEntry.version)).toEqual(versions);
    leaves.forEach((l, i) => expect(l.catalogEntry.description).toBe(`Café "${i}"\n${'x'.repeat(10_000)}`));
  });

  it('the token JSON-escaped in the 200th of 250 leaves: 502, nothing stored', async () => {
    const { doc, versions } = registration('hidden.lib', 250, 200);
    expect(doc).not.toContain(token);
    hostile.on(`${FLAT}hidden.lib/index.json`, document(JSON.stringify({ versions })));
    hostile.on(`${REG}hidden.lib/index.json`, document(doc));
    const r = await get(`${proxy.url}v3/registration/semver2/hidden.lib/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('configured secrets'), upstream: 'large' });
    expect(r.text).not.toContain(token);
  });
});

describe('echoed credentials in a metadata document', () => {
  const token = 'tok+en/with=base64+chars-0123456789';
  const password = 'pass+word/0123456789';
  let hostile: HostileUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    proxy = await startTestProxy({
      upstreams: [
        { name: 'bearer', serviceIndex: hostile.serviceIndexUrl, retries: 0, auth: { type: 'bearer', tokenEnv: 'T_TOKEN' }, include: ['bearer.*'] },
        { name: 'basic', serviceIndex: hostile.serviceIndexUrl, retries: 0, auth: { type: 'basic', username: 'me', passwordEnv: 'T_PASSWORD' }, include: ['basic.*'] },
      ],
      env: { T_TOKEN: token, T_PASSWORD: password },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await hostile?.close();
  });

  it.each([
    ['bearer', 'header'],
    ['bearer', 'value'],
    ['bearer', 'escaped'],
    ['basic', 'header'],
    ['basic', 'value'],
    ['basic', 'escaped'],
  ] as const)('%s auth echoed as the %s: 502, nothing stored, no secret in the answer', async (auth, how) => {
    const id = `${auth}.${how}`;
    hostile.on(`${FLAT}${id}/index.json`, echoCredentials(how));
    const r = await get(`${proxy.url}v3/flat/${id}/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('configured secrets'), upstream: auth });
    const seen = `${JSON.stringify(r.headers)}\n${r.text}`;
    for (const secret of [token, password, Buffer.from(`me:${password}`).toString('base64')]) expect(seen).not.toContain(secret);
    // the upstream was sent the credentials it echoed (the case is real)
    const asked = hostile.requests.filter((q) => q.path === `${FLAT}${id}/index.json`);
    expect(asked).toHaveLength(1);
    expect(String(asked[0]!.headers.authorization)).toContain(auth === 'bearer' ? token : Buffer.from(`me:${password}`).toString('base64'));
    // a refusal is not stored as an answer: the next request asks again
    hostile.on(`${FLAT}${id}/index.json`, document('{"versions":["2.0.0"]}'));
    expect((await get(`${proxy.url}v3/flat/${id}/index.json`)).json()).toEqual({ versions: ['2.0.0'] });
  });
});

describe.skipIf(redisServerPath() === undefined)('refused metadata with Redis and with a stored copy', () => {
  let redis: TestRedis;
  let hostile: HostileUpstream;
  let proxy: TestProxy;
  let now = Date.now();

  beforeAll(async () => {
    redis = await startRedis();
    hostile = await startHostileUpstream();
    proxy = await startTestProxy({
      upstreams: [{ name: 'small', serviceIndex: hostile.serviceIndexUrl, retries: 0, limits: { metadataBytes: 64 * 1024 } }],
      config: { cache: { metadata: redis.url, localTtl: 0, freshness: { versions: '1m' } } },
      clock: () => now,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await hostile?.close();
    await redis?.stop();
  });

  it('an over-limit document leaves no key in Redis, and a stored copy is served stale, not replaced', async () => {
    hostile.on(`${FLAT}too.big/index.json`, document(versionListOfSize(64 * 1024 + 1)));
    expect((await get(`${proxy.url}v3/flat/too.big/index.json`)).status).toBe(502);
    expect((await redisKeys(redis.port)).filter((k) => k.includes('too.big'))).toEqual([]);

    hostile.on(`${FLAT}kept.lib/index.json`, document('{"versions":["1.0.0"]}'));
    expect((await get(`${proxy.url}v3/flat/kept.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
    now += 120_000; // past freshness, within maxStale
    hostile.on(`${FLAT}kept.lib/index.json`, document(versionListOfSize(64 * 1024 + 1)));
    const stale = await get(`${proxy.url}v3/flat/kept.lib/index.json`);
    expect(stale.status).toBe(200);
    expect(stale.headers['x-nuproxy-cache']).toBe('stale');
    expect(stale.json()).toEqual({ versions: ['1.0.0'] });
    // what Redis holds for it is still the good copy
    const values = await redisValues(redis.port, (await redisKeys(redis.port)).filter((k) => k.includes('kept.lib')));
    expect(values.length).toBeGreaterThan(0);
    for (const v of values) expect(v).not.toContain('1.0.1-pre');
  });
});
