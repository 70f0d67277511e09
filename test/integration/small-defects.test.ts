// Issue #11 item 6, the small ones: a cut-off response logged as a complete 200, a full disk leaving a 0-byte
// `.meta` sidecar, a raw backslash on DELETE or explain answered with an empty 400 and no log line.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { get } from '../support/http.js';

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
