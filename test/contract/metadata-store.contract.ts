// Conformance suite for MetadataStore: every backend runs exactly these cases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataEntry, MetadataStore } from '../../src/cache/metadata-store.js';

export interface MetadataStoreFixture {
  store: MetadataStore;
  cleanup(): Promise<void>;
}

const HOUR = 3_600_000;

/** Polls `probe` until it returns true or `timeoutMs` passes; returns the last answer. */
async function eventually(probe: () => Promise<boolean>, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export function metadataStoreContract(name: string, make: () => Promise<MetadataStoreFixture>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let fx: MetadataStoreFixture;
    let store: MetadataStore;
    let n = 0;
    // distinct keys per case, so cases never see each other's entries even on a shared backend
    const key = (s: string): string => `contract:${name}:${++n}:${s}`;

    beforeAll(async () => {
      fx = await make();
      store = fx.store;
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    it('round-trips a full entry', async () => {
      const entry: MetadataEntry = {
        body: '{"id":"Ünïcødé.Package","description":"日本語 ✓ emoji 🚀 \\u0000 quote\\" nl\\n"}\n',
        fetchedAt: 1_700_000_000_123,
        etag: 'W/"abc-123"',
        lastModified: 'Tue, 14 Nov 2023 22:13:20 GMT',
        gzip: true,
        upstream: 'nuget.org',
        links: { registration: 'https://api.nuget.org/v3/registration5-gz-semver2/x/index.json', 'päge 1': 'https://x/ü' },
      };
      const k = key('full');
      await store.set(k, entry, HOUR);
      const got = await store.get(k);
      expect(got).toEqual(entry);
    });

    it('round-trips a minimal entry without adding fields', async () => {
      const entry: MetadataEntry = { body: '', fetchedAt: 0 };
      const k = key('minimal');
      await store.set(k, entry, HOUR);
      expect(await store.get(k)).toEqual(entry);
    });

    it('answers undefined for an unknown key', async () => {
      expect(await store.get(key('never-set'))).toBeUndefined();
    });

    it('deletes', async () => {
      const k = key('del');
      await store.set(k, { body: 'x', fetchedAt: 1 }, HOUR);
      expect(await store.get(k)).toBeDefined();
      await store.delete(k);
      expect(await store.get(k)).toBeUndefined();
      await store.delete(k); // deleting an absent key is fine
      await store.delete(key('never-set'));
    });

    it('overwrites', async () => {
      const k = key('over');
      await store.set(k, { body: 'first', fetchedAt: 1, etag: '"1"', gzip: true }, HOUR);
      await store.set(k, { body: 'second', fetchedAt: 2 }, HOUR);
      expect(await store.get(k)).toEqual({ body: 'second', fetchedAt: 2 });
    });

    it('expires entries after their ttl', async () => {
      const k = key('ttl');
      const keep = key('ttl-keep');
      await store.set(k, { body: 'short', fetchedAt: 1 }, 80);
      await store.set(keep, { body: 'long', fetchedAt: 1 }, HOUR);
      const gone = await eventually(async () => (await store.get(k)) === undefined, 3_000);
      expect(gone).toBe(true);
      expect((await store.get(keep))?.body).toBe('long');
    });

    it('accepts keys with odd characters and long keys, keeping them distinct', async () => {
      const keys = [
        key('search:q=a b&c=ü'),
        key('search:q=a b&c=u'),
        key('tabs\tnew\nlines\r:"quotes"\'*?[]{}'),
        key('x'.repeat(500)),
        key('x'.repeat(499) + 'y'),
      ];
      for (const [i, k] of keys.entries()) await store.set(k, { body: `v${i}`, fetchedAt: i }, HOUR);
      for (const [i, k] of keys.entries()) expect((await store.get(k))?.body).toBe(`v${i}`);
    });

    it('stores a 2 MB body', async () => {
      const k = key('big');
      const unit = 'nuget-ü-📦-';
      const body = unit.repeat(Math.ceil((2 * 1024 * 1024) / unit.length));
      await store.set(k, { body, fetchedAt: 5 }, HOUR);
      const got = await store.get(k);
      expect(got?.body.length).toBe(body.length);
      expect(got?.body === body).toBe(true); // not toEqual: a 2 MB diff is unreadable
    });

    it('handles concurrent sets of distinct keys', async () => {
      const keys = Array.from({ length: 50 }, (_, i) => key(`conc-${i}`));
      await Promise.all(keys.map((k, i) => store.set(k, { body: `body-${i}`, fetchedAt: i }, HOUR)));
      const got = await Promise.all(keys.map((k) => store.get(k)));
      expect(got.map((e) => e?.body)).toEqual(keys.map((_, i) => `body-${i}`));
    });

    it('reports health up', () => {
      expect(store.health().state).toBe('up');
      expect(typeof store.kind).toBe('string');
    });
  });
}
