// Helpers for the supply-chain policy tests (issue #16): what every listing of a real nuproxy offers of an id,
// a GET that reports the reason phrase, and the small builders the tests share.
import { request as httpRequest } from 'node:http';
import { expect } from 'vitest';
import { get } from './http.js';
import { makeNupkg } from './nupkg.js';
import type { TestProxy } from './proxy.js';
import type { TestUpstream } from './upstream.js';

type Json = any;
const DAY = 86_400_000;
export const daysAgo = (n: number): string => new Date(Date.now() - n * DAY).toISOString();
const timeouts = { connect: '2s', headers: '5s', body: '5s' };
/** An upstream entry for startTestProxy (no retries: failures show at once). */
export const entry = (name: string, u: TestUpstream, extra: Record<string, unknown> = {}) => ({ name, serviceIndex: u.serviceIndexUrl, retries: 0, timeouts, ...extra });
export const pkgs = (list: [string, string][]) => list.map(([id, version]) => makeNupkg({ id, version }));
export const nupkgUrl = (p: TestProxy, id: string, v: string) => `${p.url}v3/flat/${id}/${v}/${id}.${v}.nupkg`;

/**
 * What every listing offers of an id: the flat container, each registration hive's LISTED leaves (a blocked
 * version's leaf stays, unlisted: `dotnet list package --vulnerable` reads advisories there), autocomplete.
 */
export async function listings(p: TestProxy, lowerId: string): Promise<{ flat: string[]; hives: Record<string, string[]>; autocomplete: string[] }> {
  const flat = await get(`${p.url}v3/flat/${lowerId}/index.json`);
  const hives: Record<string, string[]> = {};
  for (const hive of ['semver2', 'gz-semver1', 'semver1']) {
    const r = await get(`${p.url}v3/registration/${hive}/${lowerId}/index.json`, { 'accept-encoding': 'identity' });
    if (r.status === 404) {
      hives[hive] = [];
      continue;
    }
    expect(r.status, r.text).toBe(200);
    const doc = r.json();
    const leaves: Json[] = doc.items.flatMap((page: Json) => page.items ?? []);
    for (const page of doc.items) expect(page.count).toBe((page.items ?? []).length);
    hives[hive] = leaves.filter((l) => l.catalogEntry.listed !== false).map((l) => String(l.catalogEntry.version).toLowerCase());
  }
  const ac = await get(`${p.url}v3/autocomplete?id=${lowerId}&prerelease=true&semVerLevel=2.0.0`);
  return { flat: flat.status === 200 ? flat.json().versions : [], hives, autocomplete: ac.json().data.map((v: string) => v.toLowerCase()) };
}

/** A GET that reports the reason phrase too (what the NuGet client prints for a failed download). */
export function getWithReason(url: string): Promise<{ status: number; reason: string; headers: Record<string, unknown>; json: Json }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: Json;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          json = undefined; // a package, not an error body
        }
        resolve({ status: res.statusCode!, reason: res.statusMessage ?? '', headers: res.headers, json });
      });
    })
      .on('error', reject)
      .end();
  });
}
