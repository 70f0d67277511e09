// Small HTTP helpers for set-up, checks and single timed requests (not for load: wrk and load-client do that).
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';

const agent = new Agent({ keepAliveTimeout: 10_000, connections: 16, headersTimeout: 300_000, bodyTimeout: 300_000 });

export interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  ms: number;
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  const started = performance.now();
  const res = await request(url, { method: 'GET', headers, dispatcher: agent });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started };
}

/** GET that must answer one of `statuses` (default 200). */
export async function getOk(url: string, statuses: number[] = [200], headers: Record<string, string> = {}): Promise<Got> {
  const r = await get(url, headers);
  if (!statuses.includes(r.status)) {
    throw new Error(`GET ${url} answered ${r.status}: ${r.body.subarray(0, 300).toString('utf8')}`);
  }
  return r;
}

export function header(r: Got, name: string): string | undefined {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function closeHttp(): Promise<void> {
  await agent.close().catch(() => undefined);
}
