// The rules a package body obeys while it streams (src/upstream/package-body.ts), through NugetV3Upstream.openBlob
// against the hostile test upstream on real sockets, and on the guard alone where chunk boundaries must be exact
// (a real Readable fed the chunks a test chooses).
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNuproxyError, type NuproxyError } from '../../../src/errors.js';
import { guardPackageBody, type PackageBodyRules } from '../../../src/upstream/package-body.js';
import { NugetV3Upstream } from '../../../src/upstream/nuget-upstream.js';
import { SecretSet } from '../../../src/upstream/secrets.js';
import { createLogSink } from '../../support/log-sink.js';
import { startHostileUpstream, type HostileUpstream } from '../../support/hostile/server.js';
import { announces, endless, trickle, ZIP_START, type Watch } from '../../support/hostile/packages.js';

const TOKEN = 'sekrit-token-0123456789abcdef';

function rules(over: Partial<PackageBodyRules> = {}): PackageBodyRules {
  return { upstream: 'up', url: 'http://127.0.0.1/x.nupkg', file: 'nupkg', maxBytes: 1 << 30, minRate: 0, graceMs: 10_000, secrets: SecretSet.none(), ...over };
}

/** Everything the guard passes on, and how it ended. */
async function drain(chunks: Buffer[], r: PackageBodyRules): Promise<{ out: Buffer; err?: NuproxyError }> {
  const body = guardPackageBody(Readable.from(chunks, { objectMode: false }), r);
  const out: Buffer[] = [];
  try {
    for await (const c of body) out.push(Buffer.from(c));
    return { out: Buffer.concat(out) };
  } catch (err) {
    return { out: Buffer.concat(out), err: err as NuproxyError };
  }
}

const waitFor = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('package body rules, on the guard alone', () => {
  it('passes a zip start split at every byte, refuses anything else before passing a byte on', async () => {
    const zip = Buffer.concat([ZIP_START, Buffer.alloc(100, 1)]);
    for (let cut = 1; cut < 6; cut++) {
      const r = await drain([zip.subarray(0, cut), zip.subarray(cut)], rules());
      expect(r.err).toBeUndefined();
      expect(r.out.equals(zip)).toBe(true);
    }
    for (const bad of [Buffer.from('PK\x05\x06' + 'x'.repeat(40)), Buffer.from('<html>oops</html>'), Buffer.from('PK'), Buffer.alloc(0)]) {
      const r = await drain(bad.length ? [bad.subarray(0, 1), bad.subarray(1)] : [], rules());
      expect(r.err?.code, bad.toString()).toBe('UPSTREAM_BAD_RESPONSE');
      expect(r.err?.message).toMatch(/not a package \(it does not start as a zip archive\)/);
      expect(r.out.length).toBe(0);
    }
  });

  it('takes a .nuspec that starts as XML after a BOM and whitespace, refuses one that does not', async () => {
    const ok = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\r\n  <?xml version="1.0"?><package/>')]);
    expect((await drain([ok.subarray(0, 2), ok.subarray(2, 6), ok.subarray(6)], rules({ file: 'nuspec' }))).out.equals(ok)).toBe(true);
    for (const bad of ['{"json": true}', '   \n  ', 'PK\x03\x04']) {
      const r = await drain([Buffer.from(bad)], rules({ file: 'nuspec' }));
      expect(r.err?.message, bad).toMatch(/not a \.nuspec \(it does not start as XML\)/);
      expect(r.out.length).toBe(0);
    }
  });

  it('cuts a body at its size limit, naming the limit', async () => {
    const chunks = Array.from({ length: 10 }, (_, i) => (i === 0 ? Buffer.concat([ZIP_START, Buffer.alloc(1016)]) : Buffer.alloc(1024)));
    const r = await drain(chunks, rules({ maxBytes: 4096 }));
    expect(r.err?.message).toBe('upstream up sent a package larger than limits.packageBytes (4 KB)');
    expect(r.out.length).toBeLessThanOrEqual(4096);
  });

  it('never passes on a byte of a secret, wherever the chunks cut it', async () => {
    const secrets = new SecretSet([{ label: 'token', value: TOKEN }]);
    const before = Buffer.concat([ZIP_START, Buffer.alloc(5000, 0x61)]);
    const body = Buffer.concat([before, Buffer.from(TOKEN), Buffer.alloc(3000, 0x62)]);
    const start = before.length;
    for (let cut = start - 3; cut <= start + TOKEN.length + 3; cut++) {
      for (const second of [cut + 1, cut + 7, body.length]) {
        const chunks = [body.subarray(0, cut), body.subarray(cut, Math.min(second, body.length)), body.subarray(Math.min(second, body.length))].filter((c) => c.length > 0);
        const r = await drain(chunks, rules({ secrets }));
        expect(r.err?.message, `cut at ${cut}/${second}`).toMatch(/contains a configured secret/);
        expect(r.err?.message).not.toContain(TOKEN);
        expect(r.out.length, `cut at ${cut}/${second}`).toBeLessThanOrEqual(start);
        expect(r.out.equals(body.subarray(0, r.out.length))).toBe(true);
      }
    }
    // and a body without the secret passes whole, however it is cut
    const clean = Buffer.concat([before, Buffer.from(TOKEN.slice(0, -1)), Buffer.alloc(100)]);
    for (const cut of [1, 10, start + 5, clean.length - 1]) {
      const r = await drain([clean.subarray(0, cut), clean.subarray(cut)], rules({ secrets }));
      expect(r.err).toBeUndefined();
      expect(r.out.equals(clean)).toBe(true);
    }
  });
});

describe('package bodies from a hostile upstream (openBlob, real sockets)', () => {
  let hostile: HostileUpstream;
  const client = (limits: Partial<NonNullable<ConstructorParameters<typeof NugetV3Upstream>[1]['limits']>> = {}): NugetV3Upstream =>
    new NugetV3Upstream(hostile.serviceIndexUrl, {
      name: 'hostile',
      timeouts: { connect: 2000, headers: 5000, body: 10_000 },
      retries: 0,
      userAgent: 'test',
      logger: createLogSink().logger,
      limits: { metadataBytes: 1 << 26, metadataCompressedBytes: 1 << 24, jsonDepth: 64, versions: 100_000, packageBytes: 1 << 20, nuspecBytes: 1 << 16, minRate: 16 * 1024, abandonAfter: 30_000, ...limits },
    });
  const consume = async (body: AsyncIterable<Uint8Array>): Promise<{ bytes: number; err?: unknown }> => {
    let bytes = 0;
    try {
      for await (const c of body) bytes += c.length;
      return { bytes };
    } catch (err) {
      return { bytes, err };
    }
  };

  beforeAll(async () => {
    hostile = await startHostileUpstream();
  });
  afterAll(async () => {
    await hostile?.close();
  });

  it('refuses a Content-Length over the limit at once, without reading the body, and lets go of the connection', async () => {
    const w: Watch = { started: 0, closed: 0, bytes: 0 };
    hostile.on('/huge.nupkg', announces(10 * 1024 ** 3, ZIP_START, w));
    const c = client();
    const err = await c.openBlob(`${hostile.origin}/huge.nupkg`).catch((e: unknown) => e);
    expect(isNuproxyError(err, 'UPSTREAM_BAD_RESPONSE')).toBe(true);
    expect((err as Error).message).toBe('upstream hostile announced a package of 10 GB, more than limits.packageBytes (1 MB)');
    expect((err as NuproxyError).details).toMatchObject({ upstream: 'hostile', limit: 'packageBytes' });
    await waitFor(() => w.closed === 1, 'the upstream connection to close');
    // the same for a HEAD, and for a .nuspec against its own limit
    const head = await c.openBlob(`${hostile.origin}/huge.nupkg`, 'HEAD').catch((e: unknown) => e);
    expect((head as Error).message).toMatch(/more than limits\.packageBytes/);
    hostile.on('/huge.nuspec', announces(200 * 1024 ** 2, Buffer.from('<'), w));
    const nuspec = await c.openBlob(`${hostile.origin}/huge.nuspec`, 'GET', 'nuspec').catch((e: unknown) => e);
    expect((nuspec as Error).message).toBe('upstream hostile announced a .nuspec of 200 MB, more than limits.nuspecBytes (64 KB)');
    await c.close();
  });

  it('cuts a chunked body at the limit and closes the upstream connection', async () => {
    const w: Watch = { started: 0, closed: 0, bytes: 0 };
    hostile.on('/endless.nupkg', endless(ZIP_START, w));
    const c = client();
    const res = await c.openBlob(`${hostile.origin}/endless.nupkg`);
    if (res.kind !== 'ok') throw new Error('expected a body');
    const r = await consume(res.body);
    expect((r.err as Error).message).toBe('upstream hostile sent a package larger than limits.packageBytes (1 MB)');
    expect(r.bytes).toBeLessThanOrEqual(1 << 20);
    await waitFor(() => w.closed === 1, 'the upstream connection to close');
    await c.close();
  });

  it('fails a body slower than minRate once the grace is over (504-class), and closes the connection; a fast one passes', async () => {
    const w: Watch = { started: 0, closed: 0, bytes: 0 };
    hostile.on('/slow.nupkg', trickle(ZIP_START, w, 16, 50)); // ~320 bytes/s against a floor of 16 KB/s
    const c = client();
    const res = await c.openBlob(`${hostile.origin}/slow.nupkg`, 'GET', 'nupkg', { rateGraceMs: 300 });
    if (res.kind !== 'ok') throw new Error('expected a body');
    const r = await consume(res.body);
    expect(isNuproxyError(r.err, 'UPSTREAM_TIMEOUT'), String(r.err)).toBe(true);
    expect((r.err as Error).message).toBe('upstream hostile sent the package slower than limits.minRate (16 KB/s on average)');
    await waitFor(() => w.closed === 1, 'the upstream connection to close');
    // a body well above the floor is not cut, whatever the grace
    hostile.on('/fast.nupkg', (_req, res2) => {
      const bytes = Buffer.concat([ZIP_START, Buffer.alloc(512 * 1024)]);
      res2.writeHead(200, { 'content-length': String(bytes.length) });
      res2.end(bytes);
    });
    const ok = await c.openBlob(`${hostile.origin}/fast.nupkg`, 'GET', 'nupkg', { rateGraceMs: 0 });
    if (ok.kind !== 'ok') throw new Error('expected a body');
    const got = await consume(ok.body);
    expect(got.err).toBeUndefined();
    expect(got.bytes).toBe(512 * 1024 + ZIP_START.length);
    await c.close();
  });
});
