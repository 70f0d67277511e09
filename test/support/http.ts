import { request as httpRequest } from 'node:http';
import { request, Agent } from 'undici';

export interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = any>(): T;
}

/** A plain GET/HEAD over a real socket, body fully read (undici does not decompress, so gzip stays visible). */
export async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET', dispatcher?: Agent): Promise<Got> {
  const res = await request(url, { method, headers, ...(dispatcher ? { dispatcher } : {}) });
  const body = Buffer.from(await res.body.arrayBuffer());
  const text = body.toString('utf8');
  return { status: res.statusCode, headers: res.headers, body, text, json: () => JSON.parse(text) };
}

/** Every string anywhere in a JSON value. */
export function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => allStrings(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => allStrings(x, out));
  return out;
}

/** What a client got for a GET over a fresh connection, whether or not the server cut it off. */
export interface Outcome {
  /** 0 when no response head arrived at all. */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body ended normally ('end'); false when the connection was cut before the end. */
  complete: boolean;
}

/**
 * A GET that never throws: a refused answer, a body cut off mid-way and a dead connection are all outcomes to
 * assert on (undici's request() rejects on a cut body, which hides how much arrived).
 */
export function getOutcome(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (o: Omit<Outcome, 'body'>): void => {
      if (settled) return;
      settled = true;
      resolve({ ...o, body: Buffer.concat(chunks) });
    };
    const req = httpRequest(url, { method, agent: false, headers }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode ?? 0, headers: res.headers, complete: res.complete }));
      res.on('error', () => finish({ status: res.statusCode ?? 0, headers: res.headers, complete: false }));
      res.on('close', () => finish({ status: res.statusCode ?? 0, headers: res.headers, complete: false }));
    });
    req.on('error', () => finish({ status: 0, headers: {}, complete: false }));
    req.end();
  });
}
