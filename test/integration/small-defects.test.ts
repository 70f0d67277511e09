// Issue #11 item 6, the small ones: a cut-off response logged as a complete 200, a full disk leaving a 0-byte
// `.meta` sidecar, a raw backslash on DELETE or explain answered with an empty 400 and no log line.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { get } from '../support/http.js';

/** Sends `head` (request line and headers, CRLF-separated, without the blank line) byte for byte; reads to close. */
async function rawRequest(baseUrl: string, head: string): Promise<{ status: number; headers: string; body: string }> {
  const u = new URL(baseUrl);
  const socket = connect(Number(u.port), u.hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(`${head}\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`, 'latin1');
  await new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  const all = Buffer.concat(chunks).toString('latin1');
  const end = all.indexOf('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(all)?.[1] ?? 0), headers: all.slice(0, end), body: all.slice(end + 4) };
}

/** Polls `find` until it returns something (bounded: fails after `ms`). */
async function until<T>(what: string, find: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = find();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** GETs `path` over a raw socket and hangs up as soon as `keep` body bytes (or more) have arrived. */
async function getAndHangUp(baseUrl: string, path: string, keep: number): Promise<number> {
  const u = new URL(baseUrl);
  const socket = connect(Number(u.port), u.hostname);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
  let head = Buffer.alloc(0);
  let body = -1;
  return new Promise((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      if (body < 0) {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        body = head.length - end - 4;
      } else body += c.length;
      if (body >= keep) {
        socket.destroy();
        resolve(body);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(body));
  });
}

const accessLines = (proxy: TestProxy, path: string): Record<string, unknown>[] => proxy.logs.lines.filter((l) => l.path === path && /^request/.test(String(l.msg)));

describe('a cut-off response is logged as aborted, with the bytes sent', () => {
  let upstream: TestUpstream | undefined;
  let proxy: TestProxy | undefined;
  afterEach(async () => {
    await proxy?.stop();
    await upstream?.close();
    proxy = undefined;
    upstream = undefined;
  });

  it('the client hangs up during a cached package (from disk): aborted, bytesSent short of the size', async () => {
    // far more than loopback socket buffers hold, so the response cannot be finished when the client leaves
    const pkg = makeNupkg({ id: 'Big.Cut', version: '1.0.0', padBytes: 24 * 1024 * 1024 });
    upstream = await startTestUpstream({ packages: [pkg] });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
    const path = '/v3/flat/big.cut/1.0.0/big.cut.1.0.0.nupkg';
    const whole = await get(`${proxy.url}${path.slice(1)}`);
    expect(whole.body.length).toBe(pkg.length);
    const first = await until('the first access line', () => accessLines(proxy!, path)[0]);
    expect(first).toMatchObject({ status: 200, cache: 'miss' });
    expect(first.aborted).toBeUndefined();
    expect(first.bytesSent).toBeUndefined();

    const received = await getAndHangUp(proxy.url, path, 64 * 1024);
    const cut = await until('the access line of the cut response', () => accessLines(proxy!, path)[1]);
    expect(cut).toMatchObject({ status: 200, cache: 'hit', aborted: true });
    expect(cut.bytesSent).toBeGreaterThanOrEqual(received);
    expect(cut.bytesSent).toBeLessThan(pkg.length);
  });

  it('the upstream dies mid-download and nuproxy cuts the streamed response: aborted, bytesSent short of the size', async () => {
    const pkg = makeNupkg({ id: 'Reset.Cut', version: '1.0.0', padBytes: 1024 * 1024 });
    upstream = await startTestUpstream({ packages: [pkg] });
    upstream.setFault(/\.nupkg$/, { kind: 'reset-mid-body', afterBytes: 256 * 1024 }, 1);
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl] });
    const path = '/v3/flat/reset.cut/1.0.0/reset.cut.1.0.0.nupkg';
    const received = await getAndHangUp(proxy.url, path, Number.MAX_SAFE_INTEGER);
    expect(received).toBeLessThan(pkg.length);
    const line = await until('the access line', () => accessLines(proxy!, path)[0]);
    expect(line).toMatchObject({ status: 200, cache: 'miss', aborted: true });
    expect(line.bytesSent).toBeGreaterThanOrEqual(received);
    expect(line.bytesSent).toBeLessThan(pkg.length);
  });
});

describe('a raw backslash (or a target the framework cannot parse) outside the read routes', () => {
  let upstream: TestUpstream | undefined;
  let proxy: TestProxy | undefined;
  afterEach(async () => {
    await proxy?.stop();
    await upstream?.close();
    proxy = undefined;
    upstream = undefined;
  });

  it.each([
    ['DELETE', '/v3/package/a\\b/1.0.0'],
    ['POST', '/v3/package/a\\b/1.0.0'],
    ['GET', '/explain/a\\b'],
    ['PUT', '/v3/package\\'],
    ['OPTIONS', '*'],
  ])('%s %s: 400 with the JSON body, and an access line', async (method, target) => {
    upstream = await startTestUpstream({ publish: { apiKey: 'k-123456789' } });
    proxy = await startTestProxy({ upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }] });
    const r = await rawRequest(proxy.url, `${method} ${target} HTTP/1.1\r\nX-NuGet-ApiKey: k-123456789`);
    expect(r.status).toBe(400);
    expect(r.headers.toLowerCase()).toContain('content-type: application/json');
    expect(JSON.parse(r.body)).toMatchObject({ error: 'bad_request', message: expect.any(String) });
    const line = await until('the access line', () => proxy!.logs.lines.find((l) => l.msg === 'request' && l.method === method));
    expect(line).toMatchObject({ path: target, status: 400, error: 'BAD_REQUEST' });
    // nothing reached the upstream
    expect(upstream.requests.filter((q) => q.method !== 'GET')).toEqual([]);
  });
});
