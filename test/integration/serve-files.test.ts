import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { rawGet } from '../support/raw-http.js';

// Files over 2 MB are read from disk through a small pool of reusable 1 MB buffers (src/http/send-file.ts):
// a buffer handed back too early would send one client another file's bytes. These tests mix files, ranges
// across chunk edges and clients that hang up mid-body, and check every byte.

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' = 'GET') {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') };
}

/** Reads the response head and `bytes` of the body on a raw socket, then hangs up. */
function readSomeThenHangUp(base: string, path: string, bytes: number): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`));
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

describe('large files from disk, read routes on the raw server', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const sizes = { 'Disk.A': 3 * 1024 * 1024 + 17, 'Disk.B': 5 * 1024 * 1024 - 3, 'Disk.C': 9 * 1024 * 1024 + 1 };
  const files = new Map<string, Buffer>();
  const pathOf = (id: string): string => `v3/flat/${id.toLowerCase()}/1.0.0/${id.toLowerCase()}.1.0.0.nupkg`;

  beforeAll(async () => {
    for (const [id, pad] of Object.entries(sizes)) files.set(id, Buffer.from(makeNupkg({ id, version: '1.0.0', padBytes: pad })));
    upstream = await startTestUpstream({ packages: [...files.values()] });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
    // fill the cache, then wait until every file is answered from disk
    for (const id of files.keys()) {
      expect((await get(proxy.url + pathOf(id))).status).toBe(200);
      for (let i = 0; i < 100; i++) {
        const r = await get(proxy.url + pathOf(id), {}, 'HEAD');
        if (r.headers['x-nuproxy-cache'] === 'hit') break;
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('gives every concurrent client exactly its own file, whole or in ranges across 1 MB edges', async () => {
    const MB = 1024 * 1024;
    type Ask = { id: string; range?: [number, number] };
    const asks: Ask[] = [];
    for (let round = 0; round < 6; round++) {
      for (const id of files.keys()) {
        asks.push({ id });
        const size = files.get(id)!.length;
        asks.push({ id, range: [MB - 5, MB + 5] });
        asks.push({ id, range: [123, Math.min(size - 1, 2 * MB + 77)] });
        asks.push({ id, range: [size - MB - 1, size - 1] });
      }
    }
    const results = await Promise.all(
      asks.map((a) => get(proxy.url + pathOf(a.id), a.range ? { range: `bytes=${a.range[0]}-${a.range[1]}` } : {})),
    );
    for (const [i, a] of asks.entries()) {
      const want = a.range ? files.get(a.id)!.subarray(a.range[0], a.range[1] + 1) : files.get(a.id)!;
      const r = results[i]!;
      expect(r.status).toBe(a.range ? 206 : 200);
      expect(r.headers['x-nuproxy-cache']).toBe('hit');
      expect(r.body.length).toBe(want.length);
      expect(r.body.equals(want)).toBe(true);
    }
  });

  it('clients that hang up mid-body leave the others and later clients correct bytes', async () => {
    const hangUps = [...files.keys()].flatMap((id) => [1000, 1024 * 1024 + 10, 2 * 1024 * 1024].map((n) => readSomeThenHangUp(proxy.url, '/' + pathOf(id), n)));
    const whole = [...files.keys()].map((id) => get(proxy.url + pathOf(id)).then((r) => ({ id, r })));
    await Promise.all(hangUps);
    for (const { id, r } of await Promise.all(whole)) expect(r.body.equals(files.get(id)!)).toBe(true);
    // afterwards: buffers back in the pool are reused by new downloads, which must still be exact
    const again = await Promise.all([...files.keys(), ...files.keys()].map((id) => get(proxy.url + pathOf(id)).then((r) => ({ id, r }))));
    for (const { id, r } of again) expect(r.body.equals(files.get(id)!)).toBe(true);
    expect((await get(`${proxy.url}health/live`)).status).toBe(200);
  });

  it('answers HEAD with the length of the body, and 304 for a matching ETag, from disk', async () => {
    const head = await get(proxy.url + pathOf('Disk.B'), {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(files.get('Disk.B')!.length));
    const etag = head.headers.etag as string;
    expect((await get(proxy.url + pathOf('Disk.B'), { 'if-none-match': etag })).status).toBe(304);
    // If-Range with another validator: the whole file, not the range
    const ifRange = await get(proxy.url + pathOf('Disk.B'), { range: 'bytes=0-9', 'if-range': '"other"' });
    expect(ifRange.status).toBe(200);
    expect(ifRange.body.equals(files.get('Disk.B')!)).toBe(true);
  });

  it('read routes: query strings ignored on package paths, encoded versions decoded, bad input is 400 JSON', async () => {
    const withQuery = await get(`${proxy.url}${pathOf('Disk.A')}?x=1`);
    expect(withQuery.status).toBe(200);
    expect(withQuery.body.equals(files.get('Disk.A')!)).toBe(true);
    const encoded = await get(`${proxy.url}v3/flat/disk.a/1.0.0%2Bmeta/disk.a.1.0.0.nupkg`);
    expect(encoded.status).toBe(200);
    expect(encoded.body.equals(files.get('Disk.A')!)).toBe(true);
    for (const bad of ['v3/flat/disk.a/not..a.version/disk.a.nupkg', 'v3/flat/bad%20id/1.0.0/x.nupkg', 'v3/flat/disk.a/1.0.0/other.1.0.0.nupkg', 'v3/registration/BAD_HIVE!/disk.a/index.json']) {
      const r = await get(proxy.url + bad);
      expect(r.status, `${bad}: ${r.text}`).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(r.text)).toMatchObject({ error: 'bad_request' });
    }
    for (const raw of ['/v3/flat/%2e%2e/1.0.0/x.nupkg', '/v3/flat/a%2fb/1.0.0/x.nupkg', '/v3/registration/semver2/..%2f/index.json']) {
      const r = await rawGet(proxy.url, raw);
      expect(r.status, raw).toBe(400);
      expect(JSON.parse(r.text)).toMatchObject({ error: 'bad_request' });
    }
  });

  it('read routes: other methods and unknown shapes get the JSON 404 of the rest of the server', async () => {
    for (const [method, path] of [
      ['POST', 'v3/index.json'],
      ['GET', 'v3/flat/disk.a/1.0.0/disk.a.1.0.0.nupkg/more'],
      ['GET', 'v3/index.json/'],
      ['GET', 'v3/registration/semver2/disk.a'],
    ] as const) {
      const r = await get(proxy.url + path, {}, method);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(JSON.parse(r.text)).toMatchObject({ error: 'not_found' });
    }
  });

  it('read routes: a GET that carries a body is answered, then the connection is closed', async () => {
    const u = new URL(proxy.url);
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(u.port), u.hostname, () =>
        s.write(`GET /v3/flat/disk.a/index.json HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: 5\r\n\r\nhelloGET /health/live HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`),
      );
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200']);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(text).toContain('"versions":["1.0.0"]');
  });
});
