import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// undici 7 crashes the process when an upstream answers `Connection: close` and closes (or resets) the connection
// while the body is paused for backpressure (nodejs/undici#5360): any upstream could kill nuproxy with it. The
// guard in src/upstream/paused-end-guard.ts must keep the process alive, deliver a complete body whole, and turn a
// reset into an ordinary body error. The requests run in a child process (a crash must fail this test, not the
// test runner), through nuproxy's own UpstreamHttp of dist/.
const CHILD = new URL('../support/children/paused-end.mjs', import.meta.url).pathname;
const BODY = Buffer.alloc(64 * 1024, 0x61); // one socket read: the parser pauses exactly at the end of the data

describe('an upstream closing its side while the body is paused (undici #5360)', () => {
  let server: Server;
  let url: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => undefined);
      sock.once('data', (req) => {
        const reset = / \/reset /.test(req.toString('latin1'));
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`);
        sock.write(BODY, () => {
          if (reset) setTimeout(() => sock.resetAndDestroy(), 50);
          else sock.end();
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('keeps the process alive: a complete body arrives whole, a reset one fails as an ordinary error', async () => {
    const child = spawn(process.execPath, [CHILD, url, '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(err).not.toMatch(/AssertionError/);
    expect(code).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; path: string; status: number; bytes: number; error?: string });
    expect(lines.map((l) => `${l.kind} ${l.path}`)).toEqual(['metadata fin', 'metadata reset', 'package fin', 'package reset']);
    for (const l of lines.filter((x) => x.path === 'fin')) expect(l).toEqual({ kind: l.kind, path: 'fin', status: 200, bytes: BODY.length });
    for (const l of lines.filter((x) => x.path === 'reset')) {
      expect(l.status).toBe(200);
      expect(l.error).toBeTypeOf('string');
    }
  });
});
