// N clients downloading one URL at once, in a process of its own (not the proxy's, not the runner's event loop).
//   argv[2]: JSON { url, clients, timeoutMs, expectBytes? }
//   stdout: one JSON line { results: [{ ttfbMs, ttlbMs, bytes, status, cache?, error? }] }
// Every client has its own connection, opened before the start; all requests are written in the same tick, and
// times are from that instant. A minimal HTTP/1.1 reader on raw sockets (Content-Length bodies only): a full HTTP
// client in JavaScript reads far slower than loopback delivers, and would measure itself instead of the server.
import type { ClientResult } from './lib/load.js';
import { connect, type Socket } from 'node:net';

interface Args {
  url: string;
  clients: number;
  timeoutMs: number;
  expectBytes?: number;
}


function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function download(sock: Socket, request: Buffer, t0: number, expect: number | undefined): Promise<ClientResult> {
  const r: ClientResult = { ttfbMs: NaN, ttlbMs: NaN, bytes: 0, status: 0 };
  return new Promise((resolve) => {
    let head: Buffer | undefined = Buffer.alloc(0);
    let length = -1;
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      r.ttlbMs = performance.now() - t0;
      if (error) r.error = error;
      else if (r.status !== 200) r.error = `status ${r.status}`;
      else if (expect !== undefined && r.bytes !== expect) r.error = `got ${r.bytes} bytes, expected ${expect}`;
      sock.destroy();
      resolve(r);
    };
    sock.on('data', (chunk: Buffer) => {
      if (Number.isNaN(r.ttfbMs)) r.ttfbMs = performance.now() - t0;
      if (head !== undefined) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 65536) finish('response head too large');
          return;
        }
        const text = head.subarray(0, end).toString('latin1');
        const body = head.subarray(end + 4);
        head = undefined;
        r.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        const cache = /\r\n(?:x-nuproxy-cache|x-cache-status):\s*([^\r\n]+)/i.exec(text);
        if (cache) r.cache = cache[1]!.trim();
        if (!cl) return finish(`no content-length (status ${r.status})`);
        length = Number(cl[1]);
        r.bytes = body.length;
      } else {
        r.bytes += chunk.length;
      }
      if (length >= 0 && r.bytes >= length) finish();
    });
    sock.once('error', (err) => finish(`${err.name}: ${err.message}`));
    sock.once('close', () => finish(length >= 0 && r.bytes >= length ? undefined : `connection closed after ${r.bytes} body bytes`));
    sock.write(request);
  });
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as Args;
  const u = new URL(a.url);
  const request = Buffer.from(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: nuproxy-bench\r\nAccept: */*\r\nConnection: close\r\n\r\n`, 'latin1');
  const timer = setTimeout(() => {
    process.stderr.write(`load-client: timed out after ${a.timeoutMs} ms\n`);
    process.exit(2);
  }, a.timeoutMs);
  const sockets = await Promise.all(Array.from({ length: a.clients }, () => open(u.hostname, Number(u.port || 80))));
  const t0 = performance.now();
  const results = await Promise.all(sockets.map((s) => download(s, request, t0, a.expectBytes)));
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify({ results })}\n`);
}

main().catch((err) => {
  process.stderr.write(`load-client: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
