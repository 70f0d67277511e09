// Issue #11 item 1: metadata limits at their exact boundaries, a large valid document through the sliced parse,
// credentials echoed into documents (item 2 for metadata), and what a refusal leaves in Redis and in a stored
// copy. In-process proxies with small limits; the process-level attacks are in hostile-metadata.test.ts.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from '../support/http.js';
import { document, echoCredentials, versionListOfSize } from '../support/hostile/metadata.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { redisKeys, redisValues } from '../support/redis-peek.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';

const MB = 1024 * 1024;
const FLAT = '/v3-flatcontainer/';
const REG = '/v3/registration5-gz-semver2/';

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

  it('the credentials echoed as the Content-Encoding of a body that is not JSON: 502 naming the coding, the secret not in the answer', async () => {
    hostile.on(`${FLAT}bearer.encoding/index.json`, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': String(req.headers.authorization) });
      res.end(gzipSync('{"versions":["1.0.0"]}'));
    });
    const r = await get(`${proxy.url}v3/flat/bearer.encoding/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringMatching(/invalid JSON .*Content-Encoding (Bearer )?\[redacted\]/), upstream: 'bearer' });
    expect(`${JSON.stringify(r.headers)}${r.text}`).not.toContain(token);
  });

  it('a coding nuproxy did not ask for over a plain JSON body is read as it is (as NuGet does)', async () => {
    hostile.on(`${FLAT}bearer.utf8/index.json`, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'utf-8' });
      res.end('{"versions":["1.0.0"]}');
    });
    expect((await get(`${proxy.url}v3/flat/bearer.utf8/index.json`)).json()).toEqual({ versions: ['1.0.0'] });
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
