import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawGet } from '../support/raw-http.js';
import { getOutcome } from '../support/http.js';

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

describe('flat container through the proxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const big = makeNupkg({ id: 'Big.Package', version: '1.0.0', padBytes: 3 * 1024 * 1024 });

  beforeAll(async () => {
    upstream = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Contoso.Lib', version: '1.0.0' }),
        makeNupkg({ id: 'Contoso.Lib', version: '1.10.0' }),
        makeNupkg({ id: 'Contoso.Lib', version: '1.2.0-Beta.1' }),
        big,
      ],
    });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('serves its own service index with every resource at its own URL', async () => {
    const r = await get(proxy.index);
    expect(r.status).toBe(200);
    const doc = JSON.parse(r.text) as { version: string; resources: { '@id': string; '@type': string }[] };
    expect(doc.version).toBe('3.0.0');
    const types = doc.resources.map((x) => x['@type']);
    expect(types).toContain('PackageBaseAddress/3.0.0');
    expect(types).toContain('RegistrationsBaseUrl/3.6.0');
    expect(types).toContain('SearchQueryService/3.0.0-beta');
    expect(types).toContain('SearchAutocompleteService/3.0.0-beta');
    expect(types.some((t) => t.startsWith('LegacyGallery') || t.startsWith('Catalog') || t.startsWith('SearchGallery'))).toBe(false);
    for (const res of doc.resources) expect(res['@id'].startsWith(proxy.url + 'v3/')).toBe(true);
    expect(r.text).not.toContain(upstream.origin);
  });

  it('normalizes ids and versions on input and lists lowercase normalized versions', async () => {
    const r = await get(`${proxy.url}v3/flat/CONTOSO.lib/index.json`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ versions: ['1.0.0', '1.2.0-beta.1', '1.10.0'] });
    const hitsBefore = upstream.hits('/v3-flatcontainer/contoso.lib/index.json');
    const again = await get(`${proxy.url}v3/flat/contoso.lib/index.json`);
    expect(again.headers['x-nuproxy-cache']).toBe('hit');
    expect(upstream.hits('/v3-flatcontainer/contoso.lib/index.json')).toBe(hitsBefore);
  });

  it('answers 404 for an id the upstream does not have', async () => {
    const r = await get(`${proxy.url}v3/flat/no.such.package/index.json`);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'not_found' });
  });

  it('serves package bytes unchanged and never asks the upstream twice', async () => {
    const url = `${proxy.url}v3/flat/Contoso.Lib/1.0/Contoso.Lib.1.0.nupkg`;
    const first = await get(url);
    expect(first.status).toBe(200);
    expect(first.body.equals(Buffer.from(makeNupkg({ id: 'Contoso.Lib', version: '1.0.0' })))).toBe(true);
    const path = '/v3-flatcontainer/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg';
    expect(upstream.hits(path)).toBe(1);
    const second = await get(`${proxy.url}v3/flat/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg`);
    expect(second.status).toBe(200);
    // 'shared' when the first download is still being moved into place: the same bytes, no second fetch
    expect(second.headers['x-nuproxy-cache']).toMatch(/^(hit|shared)$/);
    expect(second.body.equals(first.body)).toBe(true);
    expect(second.headers['content-length']).toBe(String(first.body.length));
    expect(upstream.hits(path)).toBe(1);
  });

  it('serves the .nuspec and answers HEAD on version lists', async () => {
    const r = await get(`${proxy.url}v3/flat/contoso.lib/1.10.0/contoso.lib.nuspec`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/xml/);
    expect(r.text).toMatch(/<id>Contoso\.Lib<\/id>/);
    expect((await get(`${proxy.url}v3/flat/contoso.lib/1.10.0/contoso.lib.nuspec`)).headers['x-nuproxy-cache']).toMatch(/^(hit|shared)$/);
    expect(upstream.hits('/v3-flatcontainer/contoso.lib/1.10.0/contoso.lib.nuspec')).toBe(1);
    const head = await get(`${proxy.url}v3/flat/contoso.lib/index.json`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(10);
    const headMissing = await get(`${proxy.url}v3/flat/contoso.lib/9.9.9/contoso.lib.9.9.9.nupkg`, {}, 'HEAD');
    expect(headMissing.status).toBe(404);
  });

  it('supports HEAD, ETag revalidation and byte ranges on cached packages', async () => {
    const url = `${proxy.url}v3/flat/contoso.lib/1.0.0/contoso.lib.1.0.0.nupkg`;
    const full = await get(url);
    const head = await get(url, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(full.body.length));
    const etag = full.headers.etag as string;
    expect(etag).toMatch(/^".+"$/);
    expect((await get(url, { 'if-none-match': etag })).status).toBe(304);
    const part = await get(url, { range: 'bytes=10-19' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${full.body.length}`);
    expect(part.body.equals(full.body.subarray(10, 20))).toBe(true);
    const tail = await get(url, { range: 'bytes=-5' });
    expect(tail.body.equals(full.body.subarray(full.body.length - 5))).toBe(true);
    expect((await get(url, { range: `bytes=${full.body.length}-` })).status).toBe(416);
  });

  it('makes exactly one upstream fetch for 50 concurrent misses, and all get the same bytes', async () => {
    const url = `${proxy.url}v3/flat/big.package/1.0.0/big.package.1.0.0.nupkg`;
    upstream.setFault('/v3-flatcontainer/big.package/1.0.0/big.package.1.0.0.nupkg', { kind: 'throttle', bytesPerSecond: 8 * 1024 * 1024 });
    const results = await Promise.all(Array.from({ length: 50 }, () => get(url)));
    upstream.setFault('/v3-flatcontainer/big.package/1.0.0/big.package.1.0.0.nupkg', undefined);
    expect(upstream.hits('/v3-flatcontainer/big.package/1.0.0/big.package.1.0.0.nupkg')).toBe(1);
    const expected = Buffer.from(big);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(expected.length);
      expect(r.body.equals(expected)).toBe(true);
    }
    const outcomes = results.map((r) => r.headers['x-nuproxy-cache']);
    expect(outcomes.filter((o) => o === 'miss')).toHaveLength(1);
  });

  it('leaves nothing in the cache when the upstream body is cut off, and recovers on retry', async () => {
    // over 2 MB: streamed as it arrives, so a fault found under way cuts it (one up to 2 MB is answered only once
    // verified: a 502 JSON answer, see hostile-packages.test.ts)
    const pkg = makeNupkg({ id: 'Cut.Off', version: '2.0.0', padBytes: 3 * 1024 * 1024 });
    upstream.addPackage(pkg);
    const path = '/v3-flatcontainer/cut.off/2.0.0/cut.off.2.0.0.nupkg';
    // a fault found once the body is under way cuts the connection before the last byte; an HTML page is
    // refused before the first
    // (short-body sends half of it and long-body announces half: both are decided before 2 MB have arrived, so
    // the client gets a clean 502; reset-mid-body at 2.5 MB dies while the response is under way)
    const faults = [
      [{ kind: 'reset-mid-body', afterBytes: 2.5 * 1024 * 1024 }, 'cut'],
      [{ kind: 'short-body' }, 'refused'],
      [{ kind: 'long-body' }, 'refused'],
      [{ kind: 'html' }, 'refused'],
    ] as const;
    for (const [fault, expected] of faults) {
      upstream.setFault(path, fault);
      const r = await getOutcome(`${proxy.url}v3/flat/cut.off/2.0.0/cut.off.2.0.0.nupkg`);
      upstream.setFault(path, undefined);
      if (expected === 'cut') {
        expect({ status: r.status, complete: r.complete }, fault.kind).toEqual({ status: 200, complete: false });
        expect(r.body.length, fault.kind).toBeLessThan(Number(r.headers['content-length']));
        expect(Buffer.from(pkg).subarray(0, r.body.length).equals(r.body), `${fault.kind}: a prefix of the package`).toBe(true);
      } else {
        expect(r.status, fault.kind).toBe(502);
        const body = JSON.parse(r.body.toString('utf8')) as { error: string; upstream: string };
        expect(body.upstream, fault.kind).toBe('up0');
        expect(['upstream_bad_response', 'integrity', 'upstream_unreachable'], fault.kind).toContain(body.error);
      }
      const files = await listFiles(proxy.cacheDir);
      expect(files.filter((f) => f.includes('cut.off'))).toEqual([]);
      expect(files.filter((f) => f.includes('.tmp'))).toEqual([]);
    }
    const ok = await get(`${proxy.url}v3/flat/cut.off/2.0.0/cut.off.2.0.0.nupkg`);
    expect(ok.status).toBe(200);
    expect(ok.body.equals(Buffer.from(pkg))).toBe(true);
    // the client may have its last byte a moment before the checked file is moved into place
    let stored = false;
    for (let i = 0; i < 100 && !stored; i++) {
      stored = (await listFiles(proxy.cacheDir)).some((f) => f.endsWith('cut.off.2.0.0.nupkg'));
      if (!stored) await new Promise((r) => setTimeout(r, 20));
    }
    expect(stored).toBe(true);
  });

  it.each([
    '/v3/flat/..%2F..%2Fetc/index.json',
    '/v3/flat/%2e%2e/index.json',
    '/v3/flat/../../etc/passwd',
    '/v3/flat/contoso.lib/../../index.json',
    '/v3/flat/foo%00bar/index.json',
    '/v3/flat/foo%5Cbar/index.json',
    '/v3/flat/foo/1.0.0/..%2f..%2fsecret.nupkg',
    '/v3/flat/bad%20id/index.json',
    '/v3/flat/contoso.lib/not-a-version/contoso.lib.not-a-version.nupkg',
    `/v3/flat/${'a'.repeat(101)}/index.json`,
    '/v3/flat/contoso.lib/1.0.0/other.1.0.0.nupkg',
  ])('refuses %s with 400 and a JSON body', async (path) => {
    const r = await rawGet(proxy.url, path);
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'bad_request' });
  });
});
