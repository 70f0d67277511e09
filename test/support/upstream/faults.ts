// Sending responses, and mangling them on purpose (fault injection) over real sockets.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Resp } from './responses.js';

export type Fault =
  | { kind: 'status'; status: number; body?: string; contentType?: string }
  /** An empty response body (e.g. a 201 to a push) has nothing to cut: the connection dies before the head. */
  /**
   * `resetWhen`: the RST waits for it (after the bytes are written), so a test can cut the body only once the
   * proxy has started its own response; without it, a busy proxy may not have read the bytes before the RST drops them.
   */
  | { kind: 'reset-mid-body'; afterBytes?: number; resetWhen?: Promise<unknown> }
  | { kind: 'short-body' }
  | { kind: 'long-body' }
  | { kind: 'stall'; ms: number }
  | { kind: 'stall-body'; afterBytes: number; ms: number }
  | { kind: 'html' }
  | { kind: 'invalid-json' }
  | { kind: 'throttle'; bytesPerSecond: number }
  /**
   * The normal answer, held until `until` settles (or the client goes away); `arrived` runs as the request comes
   * in. Tests synchronise on what the proxy did (e.g. "both upstreams were asked") instead of on time.
   */
  | { kind: 'hold'; until: Promise<unknown>; arrived?: () => void };

export const HTML_ERROR_PAGE =
  '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>' +
  '<body><h1>Bad Gateway</h1><p>The upstream server is having a bad day.</p></body></html>';

/** Resolves after `ms`, or early (false) when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function sendResp(req: IncomingMessage, res: ServerResponse, r: Resp): void {
  if (res.destroyed) return;
  const headers: Record<string, string> = { ...r.headers };
  if (r.status !== 304) headers['content-length'] = String(r.body.length);
  if (r.reason !== undefined) res.writeHead(r.status, r.reason, headers);
  else res.writeHead(r.status, headers);
  if (req.method === 'HEAD' || r.status === 304) res.end();
  else res.end(r.body);
}

function rawHead(status: number, headers: Record<string, string>, contentLength: number): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${contentLength}\r\ndate: ${new Date().toUTCString()}\r\nconnection: close\r\n\r\n`;
  return head;
}

/** Writes raw bytes to the socket (bypassing node's HTTP framing), then runs `then` once they are flushed. */
function writeRaw(socket: Socket, head: string, body: Buffer, then: (s: Socket) => void): void {
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]), () => then(socket));
}

function resetSocket(socket: Socket): void {
  // Give the loopback a moment to deliver the bytes before the RST (SO_LINGER 0 drops unsent data).
  setTimeout(() => {
    if (socket.destroyed) return;
    if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  }, 25).unref();
}

async function writePaced(res: ServerResponse, body: Buffer, bytesPerSecond: number, signal: AbortSignal): Promise<void> {
  const tickMs = 50;
  const chunk = Math.max(1, Math.floor((bytesPerSecond * tickMs) / 1000));
  for (let off = 0; off < body.length; off += chunk) {
    if (res.destroyed || signal.aborted) return;
    const ok = res.write(body.subarray(off, off + chunk));
    if (!ok) {
      await new Promise<void>((r) => {
        const done = (): void => {
          res.off('drain', done).off('close', done);
          r();
        };
        res.once('drain', done).once('close', done);
      });
    }
    if (off + chunk < body.length && !(await sleep(tickMs, signal))) return;
  }
}

/**
 * Serves `real()` (the response that would have been sent) through a fault.
 * `signal` aborts when the client goes away or the server closes.
 */
export async function sendWithFault(
  req: IncomingMessage,
  res: ServerResponse,
  fault: Fault,
  real: () => Resp,
  signal: AbortSignal,
): Promise<void> {
  const head = req.method === 'HEAD';
  switch (fault.kind) {
    case 'status': {
      const body = Buffer.from(fault.body ?? JSON.stringify({ error: `injected status ${fault.status}` }));
      const contentType = fault.contentType ?? (fault.body === undefined ? 'application/json' : 'text/plain');
      return sendResp(req, res, { status: fault.status, headers: { 'content-type': contentType }, body });
    }
    case 'html':
      return sendResp(req, res, {
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: Buffer.from(HTML_ERROR_PAGE),
      });
    case 'invalid-json': {
      const r = real();
      const text = r.jsonText ?? '{"versions":["1.0.0","2.0.0"],"note":"truncated"}';
      const truncated = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
      return sendResp(req, res, {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(truncated),
      });
    }
    case 'stall':
      if (await sleep(fault.ms, signal)) sendResp(req, res, real());
      return;
    case 'hold': {
      fault.arrived?.();
      const gone = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      await Promise.race([fault.until.catch(() => undefined), gone]);
      if (!signal.aborted) sendResp(req, res, real());
      return;
    }
    default:
      break;
  }

  const r = real();
  const headers: Record<string, string> = { ...r.headers };
  const n = r.body.length;
  if (head) {
    // No body to mangle: a reset still kills the connection after the headers, the rest are served normally.
    if (fault.kind === 'reset-mid-body') {
      writeRaw(res.socket as Socket, rawHead(r.status, headers, n), Buffer.alloc(0), resetSocket);
      return;
    }
    return sendResp(req, res, r);
  }
  switch (fault.kind) {
    case 'reset-mid-body': {
      if (n === 0) {
        // A lost response: the request was handled, the client never hears about it.
        resetSocket(res.socket as Socket);
        return;
      }
      const after = Math.min(fault.afterBytes ?? Math.floor(n / 2), n);
      const when = fault.resetWhen;
      const reset = when ? (s: Socket): void => void when.finally(() => resetSocket(s)) : resetSocket;
      writeRaw(res.socket as Socket, rawHead(r.status, headers, n), r.body.subarray(0, after), reset);
      return;
    }
    case 'short-body':
      writeRaw(res.socket as Socket, rawHead(r.status, headers, n), r.body.subarray(0, Math.floor(n / 2)), (s) => s.end());
      return;
    case 'long-body':
      writeRaw(res.socket as Socket, rawHead(r.status, headers, Math.floor(n / 2)), r.body, (s) => s.end());
      return;
    case 'stall-body': {
      const after = Math.min(fault.afterBytes, n);
      res.writeHead(r.status, { ...headers, 'content-length': String(n) });
      res.write(r.body.subarray(0, after));
      if (!(await sleep(fault.ms, signal))) return;
      if (!res.destroyed) res.end(r.body.subarray(after));
      return;
    }
    case 'throttle':
      res.writeHead(r.status, { ...headers, 'content-length': String(n) });
      await writePaced(res, r.body, fault.bytesPerSecond, signal);
      if (!res.destroyed && !signal.aborted) res.end();
      return;
  }
}
