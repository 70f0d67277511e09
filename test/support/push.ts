import { request } from 'node:http';
import { randomBytes } from 'node:crypto';

/**
 * PUTs a package the way the NuGet client does (protocol notes §5.1): multipart/form-data with one part named
 * "package", Transfer-Encoding: chunked (no Content-Length). `bytes` may be a generator for huge bodies.
 * A server may answer before the body is sent (413 for an oversize push) and close the connection: the answer
 * is what this resolves with, and the failed writes after it are not an error (as the NuGet client reports it).
 */
export function pushMultipart(
  url: string,
  bytes: Uint8Array | (() => AsyncIterable<Uint8Array>),
  headers: Record<string, string> = {},
): Promise<{ status: number; statusMessage: string; headers: Record<string, string | string[] | undefined>; text: string }> {
  const boundary = `----nuproxy${randomBytes(8).toString('hex')}`;
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'PUT', headers: { 'content-type': `multipart/form-data; boundary="${boundary}"`, 'transfer-encoding': 'chunked', ...headers } },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    void (async () => {
      const write = (b: Uint8Array | string): Promise<void> =>
        new Promise((res) => {
          if (req.destroyed) return res();
          if (req.write(b)) return res();
          const done = (): void => {
            req.off('drain', done).off('close', done);
            res();
          };
          req.once('drain', done).once('close', done);
        });
      try {
        await write(`--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name=package; filename=package.nupkg; filename*=utf-8''package.nupkg\r\n\r\n`);
        if (typeof bytes === 'function') for await (const chunk of bytes()) await write(chunk);
        else await write(bytes);
        await write(`\r\n--${boundary}--\r\n`);
        req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

export async function send(url: string, method: 'DELETE' | 'POST', headers: Record<string, string> = {}): Promise<{ status: number; statusMessage: string; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}
