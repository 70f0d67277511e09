// Publishing on the test upstream (protocol reference §5, §9.1): push (multipart, chunked), delete/unlist, relist,
// symbol push, API key / protocol-version / size rules, and one round trip with the real `dotnet nuget push/delete`.
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTfm, nugetConfigXml, runDotnet, skipReason } from '../support/dotnet.js';
import { makeNupkg, makeNuspecXml, readNupkg } from '../support/nupkg.js';
import {
  INVALID_KEY_MESSAGE,
  PROTOCOL_VERSION_MESSAGE,
  startTestUpstream,
  type TestUpstream,
  type TestUpstreamOptions,
} from '../support/upstream.js';
import { waitFor } from '../support/wait.js';

const KEY = 'test-api-key-0123';
const PUSH = '/api/v2/package';
const SYMBOLS = '/api/v2/symbolpackage';
const REG2 = '/v3/registration5-gz-semver2/';

interface Sent {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request with node:http. `chunked` sends the body in several writes with `Transfer-Encoding: chunked` and no
 * Content-Length (like the official client); otherwise with Content-Length.
 */
function send(
  url: string,
  method: string,
  opts: { headers?: Record<string, string>; body?: Buffer; chunked?: boolean } = {},
): Promise<Sent> {
  const u = new URL(url);
  const body = opts.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.chunked) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.chunked) {
      const piece = Math.max(1, Math.ceil(body.length / 5));
      for (let off = 0; off < body.length; off += piece) req.write(body.subarray(off, off + piece));
    } else if (body.length > 0) {
      req.write(body);
    }
    req.end();
  });
}

/** A multipart/form-data body shaped like the official client's (one part 'package', file 'package.nupkg'). */
function multipart(boundary: string, parts: Buffer[], preamble = ''): Buffer {
  const out: Buffer[] = [];
  if (preamble !== '') out.push(Buffer.from(`${preamble}\r\n`));
  parts.forEach((data, i) => {
    out.push(
      Buffer.from(
        `--${boundary}\r\n` +
          'Content-Type: application/octet-stream\r\n' +
          `Content-Disposition: form-data; name=package${i === 0 ? '' : i}; filename=package.nupkg; filename*=utf-8''package.nupkg\r\n` +
          '\r\n',
      ),
      data,
      Buffer.from('\r\n'),
    );
  });
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

const BOUNDARY = '5f2a0c1e-7d0b-4f3e-9c2a-3b1d8e6f4a70';

/** PUT the package the way the official client does: multipart, quoted boundary, chunked, X-NuGet-ApiKey. */
function push(
  up: TestUpstream,
  nupkg: Uint8Array,
  opts: { key?: string | undefined; headers?: Record<string, string>; path?: string } = {},
): Promise<Sent> {
  const key = 'key' in opts ? opts.key : KEY;
  return send(`${up.origin}${opts.path ?? `${PUSH}/`}`, 'PUT', {
    headers: {
      'content-type': `multipart/form-data; boundary="${BOUNDARY}"`,
      ...(key !== undefined ? { 'x-nuget-apikey': key } : {}),
      ...opts.headers,
    },
    body: multipart(BOUNDARY, [Buffer.from(nupkg)]),
    chunked: true,
  });
}

/** `key` null: no X-NuGet-ApiKey header at all. */
function del(up: TestUpstream, id: string, version: string, key: string | null = KEY): Promise<Sent> {
  return send(`${up.origin}${PUSH}/${id}/${version}`, 'DELETE', { headers: key !== null ? { 'x-nuget-apikey': key } : {} });
}

function relist(up: TestUpstream, id: string, version: string, key: string | null = KEY): Promise<Sent> {
  return send(`${up.origin}${PUSH}/${id}/${version}`, 'POST', { headers: key !== null ? { 'x-nuget-apikey': key } : {} });
}

async function getJson(url: string): Promise<{ status: number; doc: any }> {
  const r = await send(url, 'GET');
  if (r.status !== 200) return { status: r.status, doc: undefined };
  const raw = r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
  return { status: r.status, doc: JSON.parse(raw.toString('utf8')) };
}

async function flatVersions(up: TestUpstream, lowerId: string): Promise<string[] | undefined> {
  const r = await getJson(`${up.origin}/v3-flatcontainer/${lowerId}/index.json`);
  return r.status === 200 ? (r.doc.versions as string[]) : undefined;
}

/** Registration leaves (from the semver2 hive, pages inlined) as version -> listed. */
async function registrationListed(up: TestUpstream, lowerId: string): Promise<Record<string, boolean> | undefined> {
  const r = await getJson(`${up.origin}${REG2}${lowerId}/index.json`);
  if (r.status !== 200) return undefined;
  const out: Record<string, boolean> = {};
  for (const page of r.doc.items) for (const leaf of page.items) out[leaf.catalogEntry.version] = leaf.catalogEntry.listed;
  return out;
}

async function searchVersions(up: TestUpstream, q: string): Promise<string[]> {
  const r = await getJson(`${up.origin}/query?q=${encodeURIComponent(q)}&prerelease=true&semVerLevel=2.0.0`);
  expect(r.status).toBe(200);
  return (r.doc.data as { versions: { version: string }[] }[]).flatMap((d) => d.versions.map((v) => v.version));
}

function resources(doc: any): { '@id': string; '@type': string }[] {
  return doc.resources;
}

/** A .snupkg: a zip with the package's nuspec and a (fake) pdb. */
function makeSnupkg(id: string, version: string): Uint8Array {
  return zipSync({
    [`${id}.nuspec`]: strToU8(makeNuspecXml({ id, version })),
    [`lib/netstandard2.0/${id}.pdb`]: new Uint8Array([0x42, 0x53, 0x4a, 0x42, 1, 2, 3, 4]),
  });
}

const ups: TestUpstream[] = [];
async function upstream(opts: TestUpstreamOptions): Promise<TestUpstream> {
  const up = await startTestUpstream(opts);
  ups.push(up);
  return up;
}
afterAll(async () => {
  await Promise.all(ups.map((u) => u.close()));
});

describe('test upstream: service index with publish', () => {
  it('advertises PackagePublish/2.0.0 and SymbolPackagePublish/4.9.0 only when publish is set', async () => {
    const plain = await upstream({});
    const types = resources((await getJson(plain.serviceIndexUrl)).doc).map((r) => r['@type']);
    expect(types).not.toContain('PackagePublish/2.0.0');
    expect(types).not.toContain('SymbolPackagePublish/4.9.0');

    const up = await upstream({ publish: { apiKey: KEY } });
    const res = resources((await getJson(up.serviceIndexUrl)).doc);
    expect(res.filter((r) => r['@type'] === 'PackagePublish/2.0.0').map((r) => r['@id'])).toEqual([`${up.origin}${PUSH}`]);
    expect(res.filter((r) => r['@type'] === 'SymbolPackagePublish/4.9.0').map((r) => r['@id'])).toEqual([`${up.origin}${SYMBOLS}`]);
  });

  it('honours a custom path and symbols: false', async () => {
    const up = await upstream({ publish: { apiKey: KEY, path: '/feeds/main/upload/', symbols: false } });
    const res = resources((await getJson(up.serviceIndexUrl)).doc);
    expect(res.filter((r) => r['@type'] === 'PackagePublish/2.0.0').map((r) => r['@id'])).toEqual([`${up.origin}/feeds/main/upload`]);
    expect(res.some((r) => r['@type'] === 'SymbolPackagePublish/4.9.0')).toBe(false);

    const r = await push(up, makeNupkg({ id: 'Contoso.Custom', version: '1.0.0' }), { path: '/feeds/main/upload/' });
    expect(r.status).toBe(201);
    expect((await push(up, makeNupkg({ id: 'Contoso.Custom', version: '2.0.0' }), { path: `${PUSH}/` })).status).toBe(404);
    // No symbol endpoint at all.
    const s = await push(up, makeSnupkg('Contoso.Custom', '1.0.0'), { path: `${SYMBOLS}/` });
    expect(s.status).toBe(404);
    expect(up.symbolPushes).toEqual([]);
  });
});

describe('test upstream: push', () => {
  let up: TestUpstream;
  beforeAll(async () => {
    up = await upstream({
      packages: [makeNupkg({ id: 'Contoso.Existing', version: '1.0.0' })],
      publish: { apiKey: KEY, maxBytes: 64 * 1024 },
    });
  });

  it('accepts a chunked multipart push at {path}/ and serves the package at once everywhere', async () => {
    const nupkg = makeNupkg({ id: 'Contoso.Pushed', version: '1.0.0-beta.1', description: 'pushed' });
    expect(await flatVersions(up, 'contoso.pushed')).toBeUndefined();

    const r = await push(up, nupkg);
    expect(r.status).toBe(201);
    expect(r.body.length).toBe(0);
    expect(r.headers['x-nuget-warning']).toBeUndefined();

    expect(up.pushes).toHaveLength(1);
    const rec = up.pushes[0]!;
    expect(rec).toMatchObject({ id: 'Contoso.Pushed', version: '1.0.0-beta.1', bytes: nupkg.length });
    expect(rec.headers['transfer-encoding']).toBe('chunked');
    expect(rec.headers['content-length']).toBeUndefined();
    expect(rec.headers['x-nuget-apikey']).toBe(KEY);
    const last = up.requests[up.requests.length - 1]!;
    expect(last).toMatchObject({ method: 'PUT', path: `${PUSH}/` });

    expect(await flatVersions(up, 'contoso.pushed')).toEqual(['1.0.0-beta.1']);
    const blob = await send(`${up.origin}/v3-flatcontainer/contoso.pushed/1.0.0-beta.1/contoso.pushed.1.0.0-beta.1.nupkg`, 'GET');
    expect(blob.status).toBe(200);
    expect(Buffer.compare(blob.body, Buffer.from(nupkg))).toBe(0);
    expect(await registrationListed(up, 'contoso.pushed')).toEqual({ '1.0.0-beta.1': true });
    expect(await searchVersions(up, 'contoso.pushed')).toEqual(['1.0.0-beta.1']);
    expect(up.isListed('CONTOSO.PUSHED', '1.0.0-BETA.1')).toBe(true);
    expect(up.isListed('Contoso.Pushed', '9.9.9')).toBeUndefined();
  });

  it('accepts a raw (non-multipart) body at {path} with Content-Length', async () => {
    const nupkg = makeNupkg({ id: 'Contoso.Raw', version: '2.0.0' });
    const r = await send(`${up.origin}${PUSH}`, 'PUT', {
      headers: { 'x-nuget-apikey': KEY, 'content-type': 'application/octet-stream' },
      body: Buffer.from(nupkg),
    });
    expect(r.status).toBe(201);
    expect(await flatVersions(up, 'contoso.raw')).toEqual(['2.0.0']);
    expect(up.pushes.at(-1)).toMatchObject({ id: 'Contoso.Raw', version: '2.0.0', bytes: nupkg.length });
  });

  it('takes only the first multipart part (unquoted boundary, preamble, extra parts ignored)', async () => {
    const first = makeNupkg({ id: 'Contoso.First', version: '1.0.0' });
    const second = makeNupkg({ id: 'Contoso.Second', version: '1.0.0' });
    const r = await send(`${up.origin}${PUSH}/`, 'PUT', {
      headers: { 'x-nuget-apikey': KEY, 'content-type': 'multipart/form-data; boundary=abc123XYZ' },
      body: multipart('abc123XYZ', [Buffer.from(first), Buffer.from(second)], 'this is the preamble'),
      chunked: true,
    });
    expect(r.status).toBe(201);
    expect(await flatVersions(up, 'contoso.first')).toEqual(['1.0.0']);
    expect(await flatVersions(up, 'contoso.second')).toBeUndefined();
  });

  it('answers 403 with a JSON message for a wrong or missing API key, and changes nothing', async () => {
    const nupkg = makeNupkg({ id: 'Contoso.Denied', version: '1.0.0' });
    const before = up.pushes.length;
    for (const key of ['wrong-key', undefined]) {
      const r = await push(up, nupkg, { key });
      expect(r.status).toBe(403);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(r.body.toString('utf8'))).toEqual({ message: INVALID_KEY_MESSAGE });
      expect(r.statusMessage).toBe(INVALID_KEY_MESSAGE);
    }
    expect(up.pushes.length).toBe(before);
    expect(await flatVersions(up, 'contoso.denied')).toBeUndefined();
    expect(up.requests.filter((q) => q.method === 'PUT' && q.headers['x-nuget-apikey'] === 'wrong-key')).toHaveLength(1);
  });

  it('answers 409 when the id and version already exist (any case, any version spelling)', async () => {
    expect((await push(up, makeNupkg({ id: 'Contoso.Existing', version: '1.0.0' }))).status).toBe(409);
    const r = await push(up, makeNupkg({ id: 'CONTOSO.existing', version: '1.0' }));
    expect(r.status).toBe(409);
    expect(JSON.parse(r.body.toString('utf8')).message).toMatch(/already exists/);
    expect(await flatVersions(up, 'contoso.existing')).toEqual(['1.0.0']);
  });

  it('answers 400 for a body that is not a package or not well-formed multipart', async () => {
    expect((await push(up, Buffer.from('definitely not a zip'))).status).toBe(400);
    const noNuspec = zipSync({ 'readme.txt': strToU8('hi') });
    expect((await push(up, noNuspec)).status).toBe(400);
    const truncated = multipart(BOUNDARY, [Buffer.from(makeNupkg({ id: 'Contoso.Trunc', version: '1.0.0' }))]).subarray(0, 200);
    const r = await send(`${up.origin}${PUSH}/`, 'PUT', {
      headers: { 'x-nuget-apikey': KEY, 'content-type': `multipart/form-data; boundary="${BOUNDARY}"` },
      body: truncated,
      chunked: true,
    });
    expect(r.status).toBe(400);
    expect(await flatVersions(up, 'contoso.trunc')).toBeUndefined();
  });

  it('answers 413 when the body exceeds maxBytes (chunked, no Content-Length to go by)', async () => {
    const big = makeNupkg({ id: 'Contoso.TooBig', version: '1.0.0', padBytes: 100 * 1024 });
    const r = await push(up, big);
    expect(r.status).toBe(413);
    expect(await flatVersions(up, 'contoso.toobig')).toBeUndefined();
    const small = makeNupkg({ id: 'Contoso.TooBig', version: '1.0.1', padBytes: 32 * 1024 });
    expect((await push(up, small)).status).toBe(201);
  });

  it('records every publish attempt as it arrives: accepted, refused, unparsable, and cut off before its end', async () => {
    const from = up.publishAttempts.length;
    const ok = makeNupkg({ id: 'Contoso.Attempt', version: '1.0.0' });
    expect((await push(up, ok)).status).toBe(201);
    expect((await push(up, ok, { key: 'wrong-key' })).status).toBe(403);
    expect((await push(up, Buffer.from('not a zip'))).status).toBe(400);
    // a body that never ends: every byte of a valid push but the end of the chunked encoding, then a reset
    const body = multipart(BOUNDARY, [Buffer.from(makeNupkg({ id: 'Contoso.Cut', version: '1.0.0' }))]);
    const u = new URL(`${up.origin}${PUSH}/`);
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', agent: false, headers: { 'x-nuget-apikey': KEY, 'content-type': `multipart/form-data; boundary="${BOUNDARY}"`, 'transfer-encoding': 'chunked' } });
    req.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
    req.write(body);
    const cut = await waitFor('the whole body at the upstream', () => (up.publishAttempts[from + 3]?.bytes === body.length ? up.publishAttempts[from + 3] : undefined));
    expect(cut.body).toBe('receiving');
    req.destroy();
    await closed;
    await waitFor('the cut to be seen', () => cut.body !== 'receiving');
    expect(up.publishAttempts.slice(from).map((a) => [a.kind, a.body, a.status])).toEqual([
      ['push', 'complete', 201],
      ['push', 'complete', 403],
      ['push', 'complete', 400],
      ['push', 'cut', undefined],
    ]);
    expect(up.publishAttempts[from]!.bytes).toBeGreaterThan(ok.length);
    expect(await flatVersions(up, 'contoso.cut')).toBeUndefined();
    expect(up.pushes.map((p) => p.id)).not.toContain('Contoso.Cut');
  });

  it('does not treat GET on the publish path or unknown methods as publishing', async () => {
    expect((await send(`${up.origin}${PUSH}`, 'GET')).status).toBe(404);
    expect((await send(`${up.origin}${PUSH}/Contoso.Existing/1.0.0`, 'PUT', { headers: { 'x-nuget-apikey': KEY } })).status).toBe(404);
  });
});

describe('test upstream: protocol version rule and warnings', () => {
  it('requireProtocolHeader: 400 without X-NuGet-Protocol-Version / X-NuGet-Client-Version >= 4.1.0', async () => {
    const up = await upstream({ publish: { apiKey: KEY, requireProtocolHeader: true } });
    const pkg = (v: string): Uint8Array => makeNupkg({ id: 'Contoso.Proto', version: v });

    const none = await push(up, pkg('1.0.0'));
    expect(none.status).toBe(400);
    expect(JSON.parse(none.body.toString('utf8')).message).toBe(PROTOCOL_VERSION_MESSAGE);
    expect(none.statusMessage).toContain("A client version '4.1.0' or higher is required");
    expect((await push(up, pkg('1.0.0'), { headers: { 'x-nuget-client-version': '4.0.0' } })).status).toBe(400);
    expect((await push(up, pkg('1.0.0'), { headers: { 'x-nuget-protocol-version': '4.1.0-beta' } })).status).toBe(400);
    // X-NuGet-Protocol-Version wins over X-NuGet-Client-Version.
    const both = { 'x-nuget-protocol-version': '3.0.0', 'x-nuget-client-version': '6.12.1' };
    expect((await push(up, pkg('1.0.0'), { headers: both })).status).toBe(400);
    expect(await flatVersions(up, 'contoso.proto')).toBeUndefined();

    expect((await push(up, pkg('1.0.0'), { headers: { 'x-nuget-protocol-version': '4.1.0' } })).status).toBe(201);
    expect((await push(up, pkg('2.0.0'), { headers: { 'x-nuget-client-version': '6.12.1' } })).status).toBe(201);
    expect(await flatVersions(up, 'contoso.proto')).toEqual(['1.0.0', '2.0.0']);
    // The key is checked first.
    expect((await push(up, pkg('3.0.0'), { key: 'nope' })).status).toBe(403);
  });

  it('the rule is off by default', async () => {
    const up = await upstream({ publish: { apiKey: KEY } });
    expect((await push(up, makeNupkg({ id: 'Contoso.NoProto', version: '1.0.0' }))).status).toBe(201);
  });

  it('successful pushes carry X-NuGet-Warning when configured; failures do not', async () => {
    const warning = 'Your API key expires in 3 days.';
    const up = await upstream({ publish: { apiKey: KEY, warning } });
    const nupkg = makeNupkg({ id: 'Contoso.Warned', version: '1.0.0' });
    const ok = await push(up, nupkg);
    expect(ok.status).toBe(201);
    expect(ok.headers['x-nuget-warning']).toBe(warning);
    const dup = await push(up, nupkg);
    expect(dup.status).toBe(409);
    expect(dup.headers['x-nuget-warning']).toBeUndefined();
    const sym = await push(up, makeSnupkg('Contoso.Warned', '1.0.0'), { path: SYMBOLS });
    expect(sym.status).toBe(201);
    expect(sym.headers['x-nuget-warning']).toBe(warning);
  });
});

describe('test upstream: delete (unlist) and relist', () => {
  let up: TestUpstream;
  beforeAll(async () => {
    up = await upstream({
      packages: [
        makeNupkg({ id: 'Contoso.Lib', version: '1.0.0' }),
        makeNupkg({ id: 'Contoso.Lib', version: '1.1.0' }),
      ],
      publish: { apiKey: KEY },
    });
  });

  it('DELETE {path}/{ID}/{VERSION} (as typed) unlists: 204, registration listed:false, flat container keeps it, search drops it', async () => {
    const r = await del(up, 'CONTOSO.LIB', '1.1');
    expect(r.status).toBe(204);
    expect(r.body.length).toBe(0);
    expect(up.isListed('contoso.lib', '1.1.0')).toBe(false);
    expect(await registrationListed(up, 'contoso.lib')).toEqual({ '1.0.0': true, '1.1.0': false });
    expect(await flatVersions(up, 'contoso.lib')).toEqual(['1.0.0', '1.1.0']);
    expect((await send(`${up.origin}/v3-flatcontainer/contoso.lib/1.1.0/contoso.lib.1.1.0.nupkg`, 'GET')).status).toBe(200);
    expect(await searchVersions(up, 'contoso.lib')).toEqual(['1.0.0']);
    // Deleting again is still a success (nuget.org).
    expect((await del(up, 'Contoso.Lib', '1.1.0')).status).toBe(204);
    expect(up.requests.filter((q) => q.method === 'DELETE').map((q) => q.path)).toEqual([
      `${PUSH}/CONTOSO.LIB/1.1`,
      `${PUSH}/Contoso.Lib/1.1.0`,
    ]);
  });

  it('POST {path}/{ID}/{VERSION} relists: 200 and back in search', async () => {
    const r = await relist(up, 'contoso.lib', '1.1.0.0');
    expect(r.status).toBe(200);
    expect(up.isListed('Contoso.Lib', '1.1.0')).toBe(true);
    expect(await registrationListed(up, 'contoso.lib')).toEqual({ '1.0.0': true, '1.1.0': true });
    expect(await searchVersions(up, 'contoso.lib')).toEqual(['1.0.0', '1.1.0']);
    expect((await relist(up, 'contoso.lib', '1.1.0')).status).toBe(200); // already listed
  });

  it('404 for unknown packages, 403 for a wrong key (state unchanged)', async () => {
    expect((await del(up, 'Contoso.Lib', '9.9.9')).status).toBe(404);
    expect((await del(up, 'Contoso.Nope', '1.0.0')).status).toBe(404);
    expect((await relist(up, 'Contoso.Nope', '1.0.0')).status).toBe(404);
    const denied = await del(up, 'Contoso.Lib', '1.0.0', 'wrong');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body.toString('utf8'))).toEqual({ message: INVALID_KEY_MESSAGE });
    expect((await del(up, 'Contoso.Lib', '1.0.0', null)).status).toBe(403);
    expect((await relist(up, 'Contoso.Lib', '1.0.0', 'wrong')).status).toBe(403);
    expect(up.isListed('Contoso.Lib', '1.0.0')).toBe(true);
  });

  it("deleteMode 'delete' removes the package entirely", async () => {
    const hard = await upstream({
      packages: [makeNupkg({ id: 'Contoso.Gone', version: '1.0.0' }), makeNupkg({ id: 'Contoso.Gone', version: '2.0.0' })],
      publish: { apiKey: KEY, deleteMode: 'delete' },
    });
    expect((await del(hard, 'contoso.gone', '2.0')).status).toBe(204);
    expect(hard.isListed('Contoso.Gone', '2.0.0')).toBeUndefined();
    expect(await flatVersions(hard, 'contoso.gone')).toEqual(['1.0.0']);
    expect((await send(`${hard.origin}/v3-flatcontainer/contoso.gone/2.0.0/contoso.gone.2.0.0.nupkg`, 'GET')).status).toBe(404);
    expect(await registrationListed(hard, 'contoso.gone')).toEqual({ '1.0.0': true });
    expect((await del(hard, 'contoso.gone', '2.0.0')).status).toBe(404);
    expect((await del(hard, 'Contoso.Gone', '1.0.0')).status).toBe(204);
    expect(await flatVersions(hard, 'contoso.gone')).toBeUndefined();
    expect(await registrationListed(hard, 'contoso.gone')).toBeUndefined();
    expect(await searchVersions(hard, 'contoso.gone')).toEqual([]);
    // The version can be pushed again.
    expect((await push(hard, makeNupkg({ id: 'Contoso.Gone', version: '2.0.0' }))).status).toBe(201);
    expect(await flatVersions(hard, 'contoso.gone')).toEqual(['2.0.0']);
  });
});

describe('test upstream: symbol packages', () => {
  let up: TestUpstream;
  beforeAll(async () => {
    up = await upstream({ packages: [makeNupkg({ id: 'Contoso.Sym', version: '1.0.0' })], publish: { apiKey: KEY } });
  });

  it('accepts a .snupkg for an existing package (201, recorded; re-push allowed)', async () => {
    const snupkg = makeSnupkg('contoso.SYM', '1.0');
    for (const path of [`${SYMBOLS}/`, SYMBOLS]) {
      const r = await push(up, snupkg, { path });
      expect(r.status).toBe(201);
      expect(r.body.length).toBe(0);
    }
    expect(up.symbolPushes).toHaveLength(2);
    expect(up.symbolPushes[0]).toMatchObject({ id: 'contoso.SYM', version: '1.0', bytes: snupkg.length });
    expect(up.symbolPushes[0]!.headers['x-nuget-apikey']).toBe(KEY);
    expect(up.pushes).toEqual([]);
  });

  it('404 when the matching .nupkg is missing, 400 for garbage, 403 for a wrong key', async () => {
    const before = up.symbolPushes.length;
    expect((await push(up, makeSnupkg('Contoso.Sym', '2.0.0'), { path: SYMBOLS })).status).toBe(404);
    expect((await push(up, Buffer.from('nope'), { path: SYMBOLS })).status).toBe(400);
    expect((await push(up, makeSnupkg('Contoso.Sym', '1.0.0'), { path: SYMBOLS, key: 'bad' })).status).toBe(403);
    expect(up.symbolPushes.length).toBe(before);
  });
});

describe('test upstream: publish with feed auth and faults', () => {
  it('the feed auth option applies to publish routes too (401 before the API key is looked at)', async () => {
    const up = await upstream({ auth: { kind: 'bearer', token: 'tok' }, publish: { apiKey: KEY } });
    const nupkg = makeNupkg({ id: 'Contoso.Authed', version: '1.0.0' });
    const noAuth = await push(up, nupkg);
    expect(noAuth.status).toBe(401);
    expect(noAuth.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await push(up, nupkg, { headers: { authorization: 'Bearer tok' }, key: 'wrong' })).status).toBe(403);
    expect((await push(up, nupkg, { headers: { authorization: 'Bearer tok' } })).status).toBe(201);
    expect(up.isListed('Contoso.Authed', '1.0.0')).toBe(true);
  });

  it("a 'status' fault answers without pushing; a reset after the push leaves the package there (retry -> 409)", async () => {
    const up = await upstream({ publish: { apiKey: KEY } });
    const nupkg = makeNupkg({ id: 'Contoso.Faulty', version: '1.0.0' });

    up.setFault(`${PUSH}/`, { kind: 'status', status: 503 }, 1);
    expect((await push(up, nupkg)).status).toBe(503);
    expect(up.isListed('Contoso.Faulty', '1.0.0')).toBeUndefined();

    // The 201 has no body, so the reset loses the whole response (like a proxy/network failure after the push).
    up.setFault(`${PUSH}/`, { kind: 'reset-mid-body' }, 1);
    await expect(push(up, nupkg)).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(up.isListed('Contoso.Faulty', '1.0.0')).toBe(true);
    expect((await push(up, nupkg)).status).toBe(409);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The real client

const reason = skipReason('real `dotnet nuget push` / `dotnet nuget delete` against the test upstream');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function dotnet(args: string[], cwd: string, home: string, packagesDir: string): Promise<Run> {
  return runDotnet(args, { dir: cwd, homeDir: home, packagesDir, httpCacheDir: join(home, 'http-cache') }, { timeoutMs: 240_000 });
}

const explain = (what: string, r: Run): string => `${what} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;


describe.skipIf(reason !== undefined)('real `dotnet nuget push` / `dotnet nuget delete` against the test upstream', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'nuproxy-publish-'));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('packs a class library, pushes .nupkg + .snupkg, then deletes (unlists) it', { timeout: 300_000 }, async () => {
    const up = await upstream({ publish: { apiKey: KEY, requireProtocolHeader: true, warning: 'test upstream warning' } });
    const proj = join(root, 'proj');
    const emptySource = join(root, 'empty-source');
    const out = join(root, 'out');
    const home = join(root, 'home');
    const packagesDir = join(root, 'packages');
    const pushDir = join(root, 'push');
    await Promise.all([proj, emptySource, out, home, packagesDir, pushDir].map((d) => mkdir(d, { recursive: true })));

    const id = 'Contoso.RealPush';
    const version = '1.2.3-rc.1';
    await Promise.all([
      writeFile(
        join(proj, 'Lib.csproj'),
        [
          '<Project Sdk="Microsoft.NET.Sdk">',
          '  <PropertyGroup>',
          `    <TargetFramework>${defaultTfm()}</TargetFramework>`,
          `    <PackageId>${id}</PackageId>`,
          `    <Version>${version}</Version>`,
          '    <Authors>nuproxy-tests</Authors>',
          '    <Description>Pushed by the nuproxy test suite.</Description>',
          '    <NuGetAudit>false</NuGetAudit>',
          '    <IncludeSymbols>true</IncludeSymbols>',
          '    <SymbolPackageFormat>snupkg</SymbolPackageFormat>',
          '  </PropertyGroup>',
          '</Project>',
          '',
        ].join('\n'),
      ),
      writeFile(join(proj, 'Lib.cs'), 'namespace Contoso.RealPush;\npublic static class Answer { public static int Value => 42; }\n'),
      writeFile(join(proj, 'Directory.Build.props'), '<Project />\n'),
      writeFile(join(proj, 'Directory.Build.targets'), '<Project />\n'),
      // Packing restores: the only source is an empty local folder (a net{N}.0 library needs no packages).
      writeFile(join(proj, 'NuGet.Config'), nugetConfigXml([{ key: 'empty', value: emptySource }], false, packagesDir)),
      // push/delete: the http source must allow insecure connections. `delete` has no --configfile, it reads this
      // file from its working directory.
      writeFile(join(pushDir, 'NuGet.Config'), nugetConfigXml([{ key: 'test-upstream', value: up.serviceIndexUrl, insecure: true }], false, packagesDir)),
    ]);

    const pack = await dotnet(
      ['pack', join(proj, 'Lib.csproj'), '--configfile', join(proj, 'NuGet.Config'), '-p:NuGetAudit=false', '-o', out, '--disable-build-servers'],
      proj,
      home,
      packagesDir,
    );
    expect(pack.code, explain('dotnet pack', pack)).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual([`${id}.${version}.nupkg`, `${id}.${version}.snupkg`]);
    const nupkgPath = join(out, `${id}.${version}.nupkg`);
    expect(readNupkg(await readFile(nupkgPath))).toMatchObject({ id, version });

    const pushRun = await dotnet(
      ['nuget', 'push', nupkgPath, '--source', up.serviceIndexUrl, '--api-key', KEY, '--configfile', join(pushDir, 'NuGet.Config')],
      pushDir,
      home,
      packagesDir,
    );
    expect(pushRun.code, explain('dotnet nuget push', pushRun)).toBe(0);
    expect(pushRun.stdout).toMatch(/Your package was pushed/);
    expect(pushRun.stdout + pushRun.stderr).toContain('test upstream warning');
    expect(up.pushes.map((p) => `${p.id}@${p.version}`)).toEqual([`${id}@${version}`]);
    expect(up.symbolPushes.map((p) => `${p.id}@${p.version}`)).toEqual([`${id}@${version}`]);
    expect(up.isListed(id, version)).toBe(true);
    expect(await flatVersions(up, id.toLowerCase())).toEqual([version]);

    // What the official client sends (the proxy's pass-through must keep these): chunked, no Content-Length,
    // a quoted boundary, X-NuGet-Client-Version (which satisfies the 4.1.0 rule), never X-NuGet-Protocol-Version.
    for (const h of [up.pushes[0]!.headers, up.symbolPushes[0]!.headers]) {
      expect(String(h['user-agent'])).toMatch(/^NuGet xplat\/\d+\.\d+\.\d+ \(/);
      expect(h['x-nuget-apikey']).toBe(KEY);
      expect(String(h['content-type'])).toMatch(/^multipart\/form-data; boundary="[0-9a-f-]{36}"$/);
      expect(h['transfer-encoding']).toBe('chunked');
      expect(h['content-length']).toBeUndefined();
      expect(String(h['x-nuget-client-version'])).toMatch(/^\d+\.\d+\.\d+/);
      expect(h['x-nuget-protocol-version']).toBeUndefined();
      expect(h['x-nuget-session-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(h.authorization).toBeUndefined();
    }
    // Service index, then PUT {PackagePublish}/ and PUT {SymbolPackagePublish}/ (trailing slash appended).
    expect(up.requests.slice(0, 3).map((q) => `${q.method} ${q.path}`)).toEqual(['GET /v3/index.json', `PUT ${PUSH}/`, `PUT ${SYMBOLS}/`]);

    const again = await dotnet(
      ['nuget', 'push', nupkgPath, '--source', up.serviceIndexUrl, '--api-key', KEY, '--configfile', join(pushDir, 'NuGet.Config'), '--no-symbols'],
      pushDir,
      home,
      packagesDir,
    );
    expect(again.code, explain('dotnet nuget push (duplicate)', again)).not.toBe(0);
    expect(again.stdout + again.stderr).toMatch(/409/);
    // The client prints the reason phrase: nuget.org-style messages reach the user.
    expect(again.stdout + again.stderr).toContain('already exists and cannot be modified');

    const delRun = await dotnet(
      ['nuget', 'delete', id, version, '--source', up.serviceIndexUrl, '--api-key', KEY, '--non-interactive'],
      pushDir,
      home,
      packagesDir,
    );
    expect(delRun.code, explain('dotnet nuget delete', delRun)).toBe(0);
    expect(up.isListed(id, version)).toBe(false);
    const delReq = up.requests.filter((q) => q.method === 'DELETE');
    // {ID}/{VERSION} exactly as typed, no trailing slash, no body.
    expect(delReq.map((q) => q.path)).toEqual([`${PUSH}/${id}/${version}`]);
    expect(delReq[0]!.headers['x-nuget-apikey']).toBe(KEY);
    expect(delReq[0]!.headers['content-type']).toBeUndefined();
    expect(await flatVersions(up, id.toLowerCase())).toEqual([version]);
    expect(await registrationListed(up, id.toLowerCase())).toEqual({ [version]: false });
  });
});
