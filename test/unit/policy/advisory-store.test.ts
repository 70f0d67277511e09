// The stored advisories (issue #16) in a real disk blob store: import merges by id or replaces, a corrupt
// document is never overwritten by a merge, and a watcher picks up a new import (and keeps the last good set when
// the document turns corrupt); policyFromConfig, what app.ts calls.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBlobStore } from '../../../src/app.js';
import type { BlobStore } from '../../../src/cache/blob-store.js';
import { validateConfig } from '../../../src/config/load.js';
import { ADVISORIES_KEY, importAdvisories, loadAdvisories, readAdvisories, watchAdvisories } from '../../../src/policy/advisory-store.js';
import { policyFromConfig, readsAdvisories } from '../../../src/policy/from-config.js';
import { parseOsvValue } from '../../../src/policy/osv.js';
import { malEntry } from '../../support/osv.js';

describe('advisory store', () => {
  let dir: string;
  let blobs: BlobStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-advisories-'));
    blobs = await createBlobStore(validateConfig({ cache: { dir } }));
    await blobs.init({ sweep: false });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('nothing stored reads as an empty set; an import merges by id and a replace starts over', async () => {
    expect(await readAdvisories(blobs)).toMatchObject({ state: 'absent' });
    const first = await importAdvisories(blobs, parseOsvValue([malEntry('MAL-1', 'Bad.One'), malEntry('MAL-2', 'Bad.Two')], 'a.json'));
    expect(first).toMatchObject({ read: 2, added: 2, updated: 0, removed: 0, total: 2, packageIds: 2, mode: 'merge' });
    const second = await importAdvisories(blobs, parseOsvValue([malEntry('MAL-2', 'Bad.Two'), malEntry('MAL-3', 'Bad.Three'), malEntry('MAL-1', 'Bad.One', { withdrawn: '2025-01-01T00:00:00Z' })], 'b.json'));
    expect(second).toMatchObject({ read: 2, added: 1, updated: 0, removed: 1, total: 2 });
    const set = await loadAdvisories(blobs);
    expect([...set.advisories.keys()].sort()).toEqual(['MAL-2', 'MAL-3']);
    expect(set.match('bad.three', '1.0.1')?.id).toBe('MAL-3');
    const replaced = await importAdvisories(blobs, parseOsvValue([malEntry('MAL-9', 'Bad.Nine')], 'c.json'), 'replace');
    expect(replaced).toMatchObject({ added: 1, total: 1, mode: 'replace' });
    expect([...(await loadAdvisories(blobs)).advisories.keys()]).toEqual(['MAL-9']);
  });

  it('a corrupt document: reported, never merged over, replaced on request', async () => {
    await blobs.put(ADVISORIES_KEY, Buffer.from('{"v": 1, "advisories": [{"id": 3}]}'));
    expect(await readAdvisories(blobs)).toMatchObject({ state: 'corrupt', error: expect.stringContaining('not an OSV advisory') });
    await expect(loadAdvisories(blobs)).rejects.toThrow(/state\/advisories\.json cannot be read/);
    await expect(importAdvisories(blobs, parseOsvValue(malEntry('MAL-1', 'A'), 'a.json'))).rejects.toThrow(/--replace/);
    await importAdvisories(blobs, parseOsvValue(malEntry('MAL-1', 'A'), 'a.json'), 'replace');
    expect((await loadAdvisories(blobs)).size).toBe(1);
  });

  it('a watcher loads at start, sees a new import on its next check, and keeps the last good set through a corrupt write', async () => {
    await importAdvisories(blobs, parseOsvValue(malEntry('MAL-1', 'Bad.One'), 'a.json'));
    const errors: string[] = [];
    const changes: number[] = [];
    const watch = await watchAdvisories(blobs, { every: 3_600_000, onError: (m) => errors.push(m), onChange: (s) => changes.push(s.size) });
    try {
      expect(watch.current().match('bad.one', '1.0.0')?.id).toBe('MAL-1');
      expect(await watch.check()).toBe(false); // nothing changed: only the stat was read
      await importAdvisories(blobs, parseOsvValue(malEntry('MAL-2', 'Bad.Two'), 'b.json'));
      expect(await watch.check()).toBe(true);
      expect(watch.current().match('bad.two', '1.0.0')?.id).toBe('MAL-2');
      await blobs.put(ADVISORIES_KEY, Buffer.from('not json'));
      expect(await watch.check()).toBe(false);
      expect(watch.current().size).toBe(2);
      expect(errors).toEqual([expect.stringContaining('the last good set, 2 advisories, stays in force')]);
      expect(changes).toEqual([1, 2]);
    } finally {
      watch.stop();
    }
  });
});

describe('policyFromConfig', () => {
  let dir: string;
  let blobs: BlobStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-policy-config-'));
    blobs = await createBlobStore(validateConfig({ cache: { dir } }));
    await blobs.init({ sweep: false });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads advisories only when a rule does: malicious (the default), or vulnerable anywhere', () => {
    const up = { name: 'up', serviceIndex: 'https://feed.example/v3/index.json' };
    expect(readsAdvisories(validateConfig({}).config)).toBe(true);
    expect(readsAdvisories(validateConfig({ policy: { malicious: false } }).config)).toBe(false);
    expect(readsAdvisories(validateConfig({ policy: { malicious: false, minimumAge: '3d' } }).config)).toBe(false);
    expect(readsAdvisories(validateConfig({ policy: { malicious: false, vulnerable: 'low' } }).config)).toBe(true);
    expect(readsAdvisories(validateConfig({ policy: { malicious: false }, upstreams: [{ ...up, policy: { vulnerable: 'high' } }] }).config)).toBe(true);
    expect(readsAdvisories(validateConfig({ upstreams: [{ ...up, policy: { malicious: false } }] }).config)).toBe(true); // the global one still does
  });

  it('the server\'s policy follows an import (refresh), a command\'s reads once, and a policy reading none never touches the store', async () => {
    const { config } = validateConfig({ cache: { dir } });
    const served = await policyFromConfig(config, blobs, { watch: true, every: 3_600_000 });
    try {
      const facts = { lowerId: 'bad.one', lowerVersion: '1.0.0', upstream: 'nuget.org' };
      expect(served.policy.active).toBe(false); // nothing imported yet: today's answers
      await importAdvisories(blobs, parseOsvValue(malEntry('MAL-1', 'Bad.One'), 'a.json'));
      expect(await served.refresh()).toBe(true);
      expect(served.policy.active).toBe(true);
      expect(served.policy.decide(facts, Date.now())).toMatchObject({ allowed: false, rule: 'malicious' });
      const command = await policyFromConfig(config, blobs);
      expect(command.policy.decide(facts, Date.now()).rule).toBe('malicious');

      await blobs.put(ADVISORIES_KEY, Buffer.from('corrupt'));
      const untouched = await policyFromConfig(validateConfig({ cache: { dir }, policy: { malicious: false } }).config, blobs);
      expect(untouched.policy.active).toBe(false);
      await expect(policyFromConfig(config, blobs)).rejects.toThrow(/cannot be read/);
    } finally {
      served.stop();
    }
  });
});
