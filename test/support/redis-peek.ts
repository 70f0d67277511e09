// Reads what a test redis-server holds, over a raw RESP connection (no client library): for tests that prove
// nothing from a refused answer was stored.
import { createConnection } from 'node:net';

/** Sends one command and returns the parsed reply (strings, integers, arrays, null). */
export function redisCommand(port: number, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    sock.setTimeout(5000, () => sock.destroy(new Error('redis did not answer within 5 s')));
    sock.on('error', reject);
    sock.on('connect', () => sock.write(args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).reduce((s, a) => s + a, `*${args.length}\r\n`)));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const parsed = parse(buf, 0);
      if (parsed) {
        sock.end();
        if (parsed.value instanceof Error) reject(parsed.value);
        else resolve(parsed.value);
      }
    });
  });
}

/** One RESP value at `at`, or undefined while incomplete. */
function parse(buf: Buffer, at: number): { value: unknown; end: number } | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', at + 1, eol);
  switch (String.fromCharCode(buf[at]!)) {
    case '+':
      return { value: line, end: eol + 2 };
    case '-':
      return { value: new Error(line), end: eol + 2 };
    case ':':
      return { value: Number(line), end: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return undefined;
      return { value: buf.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
    }
    case '*': {
      const n = Number(line);
      const items: unknown[] = [];
      let p = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parse(buf, p);
        if (!item) return undefined;
        items.push(item.value);
        p = item.end;
      }
      return { value: items, end: p };
    }
  }
  throw new Error(`unexpected RESP type byte ${buf[at]}`);
}

/** Every key in the server (test servers are small). */
export async function redisKeys(port: number): Promise<string[]> {
  return ((await redisCommand(port, ['KEYS', '*'])) as string[]).sort();
}

/** The string values of `keys` (non-string keys come back as their type name in brackets). */
export async function redisValues(port: number, keys: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) {
    const type = (await redisCommand(port, ['TYPE', k])) as string;
    out.push(type === 'string' ? String(await redisCommand(port, ['GET', k])) : `[${type}]`);
  }
  return out;
}
