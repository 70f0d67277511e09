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
