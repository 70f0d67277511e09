import { describe, expect, it } from 'vitest';
import { planEviction, type StoredEntry } from '../../../src/feed/evict-plan.js';
import { parseUsage, refOfKey } from '../../../src/feed/usage-state.js';
import { pinMatcher } from '../../../src/feed/evictor.js';
import { validateConfig } from '../../../src/config/load.js';

const DAY = 86_400_000;
const NOW = 1_000 * DAY;

function pkg(id: string, version: string, bytes: number, usedDaysAgo: number | undefined, extra: Partial<StoredEntry> = {}): StoredEntry {
  return { lowerId: id, lowerVersion: version, bytes, lastUsedMs: usedDaysAgo === undefined ? undefined : NOW - usedDaysAgo * DAY, committedMs: NOW - 500 * DAY, pinned: false, ...extra };
}

const removed = (plan: ReturnType<typeof planEviction>): string[] => plan.remove.map((r) => `${r.entry.lowerId}@${r.entry.lowerVersion}:${r.reason}`);

describe('eviction planner', () => {
  it('removes nothing without rules, or under the cap', () => {
    const entries = [pkg('a', '1.0.0', 100, 1), pkg('b', '1.0.0', 100, 2)];
    expect(planEviction(entries, { maxSize: 0, evictTo: 0.9 }, { now: NOW, usageKnown: true }).remove).toEqual([]);
    const under = planEviction(entries, { maxSize: 200, evictTo: 0.5 }, { now: NOW, usageKnown: true });
    expect(under.remove).toEqual([]);
    expect(under).toMatchObject({ total: 200, after: 200, freed: 0, packages: 2 });
  });

  it('over the cap: least recently used first, down to the low-water mark and no further', () => {
    const entries = [pkg('hot', '1.0.0', 100, 0), pkg('cold', '1.0.0', 100, 30), pkg('warm', '1.0.0', 100, 5), pkg('tepid', '1.0.0', 100, 10)];
    const plan = planEviction(entries, { maxSize: 350, evictTo: 0.6 }, { now: NOW, usageKnown: true });
    // 400 > 350: down to 210 means removing two (cold, then tepid), leaving 200
    expect(removed(plan)).toEqual(['cold@1.0.0:size', 'tepid@1.0.0:size']);
    expect(plan).toMatchObject({ freed: 200, after: 200, target: 210 });
  });

  it('a package with no recorded use goes by its commit time', () => {
    const entries = [pkg('used', '1.0.0', 100, 400), pkg('never', '1.0.0', 100, undefined, { committedMs: NOW - 450 * DAY })];
    expect(removed(planEviction(entries, { maxSize: 150, evictTo: 0.9 }, { now: NOW, usageKnown: true }))).toEqual(['never@1.0.0:size']);
  });

  it('retention: unused for N days', () => {
    const entries = [pkg('a', '1.0.0', 10, 40), pkg('b', '1.0.0', 10, 29), pkg('c', '1.0.0', 10, 31)];
    const plan = planEviction(entries, { maxSize: 0, evictTo: 0.9, unusedForMs: 30 * DAY }, { now: NOW, usageKnown: true });
    expect(removed(plan).sort()).toEqual(['a@1.0.0:unused', 'c@1.0.0:unused']);
    expect(plan.freed).toBe(20);
  });

  it('retention: only the newest K versions per id, by NuGet version order (not string order)', () => {
    const entries = ['1.9.0', '1.10.0', '2.0.0-beta', '2.0.0', '1.2.0'].map((v) => pkg('lib', v, 10, 0));
    entries.push(pkg('other', '1.0.0', 10, 0));
    const plan = planEviction(entries, { maxSize: 0, evictTo: 0.9, keepVersions: 2 }, { now: NOW, usageKnown: true });
    // newest two: 2.0.0, 2.0.0-beta; 1.10.0 > 1.9.0 > 1.2.0 go
    expect(removed(plan).sort()).toEqual(['lib@1.10.0:versions', 'lib@1.2.0:versions', 'lib@1.9.0:versions']);
  });

  it('retention runs before the size rule, and each package is named once', () => {
    const entries = [pkg('lib', '1.0.0', 100, 50), pkg('lib', '2.0.0', 100, 0), pkg('x', '1.0.0', 100, 20), pkg('y', '1.0.0', 100, 1)];
    const plan = planEviction(entries, { maxSize: 250, evictTo: 0.8, keepVersions: 1, unusedForMs: 40 * DAY }, { now: NOW, usageKnown: true });
    expect(removed(plan)).toEqual(['lib@1.0.0:unused', 'x@1.0.0:size']);
    expect(plan.after).toBe(200);
  });

  it('pinned packages are never removed by any rule; busy ones are left for later', () => {
    const entries = [
      pkg('pinned', '1.0.0', 100, 900, { pinned: true }),
      pkg('pinned', '0.1.0', 100, 900, { pinned: true }),
      pkg('busy', '1.0.0', 100, 800, { busy: true }),
      pkg('free', '1.0.0', 100, 700),
    ];
    const plan = planEviction(entries, { maxSize: 100, evictTo: 0.5, unusedForMs: DAY, keepVersions: 1 }, { now: NOW, usageKnown: true });
    expect(removed(plan)).toEqual(['free@1.0.0:unused']);
    expect(plan.keptPinned).toBeGreaterThanOrEqual(2);
    expect(plan.keptBusy).toBeGreaterThanOrEqual(1);
    expect(plan.after).toBe(300); // over the cap still: the rules name nothing else
  });

  it('safety (BaGetter #241): usage that could not be read never makes everything unused', () => {
    const entries = Array.from({ length: 50 }, (_, i) => pkg(`p${i}`, '1.0.0', 10, i));
    const plan = planEviction(entries, { maxSize: 0, evictTo: 0.9, unusedForMs: DAY }, { now: NOW, usageKnown: false });
    expect(plan.remove).toEqual([]);
    expect(plan.notes.join()).toMatch(/usage state could not be read/);
    // the size rule still works, by commit times, and only down to the mark
    const capped = planEviction(entries, { maxSize: 400, evictTo: 0.9, unusedForMs: DAY }, { now: NOW, usageKnown: false });
    expect(capped.after).toBeLessThanOrEqual(360);
    expect(capped.after).toBeGreaterThan(340);
    expect(capped.remove.every((r) => r.reason === 'size')).toBe(true);
  });

  it('a last use in the future counts as now, and a bad rule value removes nothing', () => {
    const entries = [pkg('a', '1.0.0', 10, -1000), pkg('b', '1.0.0', 10, 5)];
    expect(removed(planEviction(entries, { maxSize: 0, evictTo: 0.9, unusedForMs: 2 * DAY }, { now: NOW, usageKnown: true }))).toEqual(['b@1.0.0:unused']);
    expect(planEviction(entries, { maxSize: 0, evictTo: 0.9, unusedForMs: 0 }, { now: NOW, usageKnown: true }).remove).toEqual([]);
    expect(planEviction(entries, { maxSize: 0, evictTo: 0.9, keepVersions: 0 }, { now: NOW, usageKnown: true }).remove).toEqual([]);
  });

  it('never plans more than the entries it was given, and frees what it says', () => {
    const entries = Array.from({ length: 200 }, (_, i) => pkg(`p${i % 7}`, `1.0.${i}`, 1 + (i % 13), i % 17));
    const plan = planEviction(entries, { maxSize: 300, evictTo: 0.9, keepVersions: 20, unusedForMs: 15 * DAY }, { now: NOW, usageKnown: true });
    const set = new Set(plan.remove.map((r) => r.entry));
    expect(set.size).toBe(plan.remove.length);
    expect(plan.freed).toBe(plan.remove.reduce((n, r) => n + r.entry.bytes, 0));
    expect(plan.after).toBe(plan.total - plan.freed);
    expect(plan.after).toBeLessThanOrEqual(270);
  });
});

describe('eviction state', () => {
  it('maps blob keys to packages', () => {
    expect(refOfKey('packages/newtonsoft.json/13.0.1/newtonsoft.json.13.0.1.nupkg')).toBe('newtonsoft.json/13.0.1');
    expect(refOfKey('packages/x')).toBeUndefined();
    expect(refOfKey('vulnerabilities/index.json')).toBeUndefined();
  });

  it('accepts a valid usage document and refuses anything else whole', () => {
    expect(parseUsage({ v: 1, since: 5, used: { 'a/1.0.0': 10 } })?.used.get('a/1.0.0')).toBe(10);
    for (const bad of [null, [], { v: 2, since: 1, used: {} }, { v: 1, used: {} }, { v: 1, since: 1, used: { 'a/1.0.0': 'x' } }, { v: 1, since: 1, used: { '../x': 1 } }, { v: 1, since: 1, used: [] }]) {
      expect(parseUsage(bad)).toBeUndefined();
    }
  });

  it('pins match config patterns and exact pinned versions', () => {
    const pinned = pinMatcher(['contoso.*', 'exact.id'], new Set(['lib/1.0.0']));
    expect(pinned('contoso.core', 'contoso.core/1.0.0')).toBe(true);
    expect(pinned('exact.id', 'exact.id/2.0.0')).toBe(true);
    expect(pinned('lib', 'lib/1.0.0')).toBe(true);
    expect(pinned('lib', 'lib/2.0.0')).toBe(false);
  });

  it('config: sizes, the low-water mark and the rules are validated at start-up', () => {
    const c = validateConfig({ cache: { maxSize: '50GB', retention: { unusedFor: '30d', keepVersions: 3 }, pins: ['Foo.*'] } }).config.cache;
    expect(c).toMatchObject({ maxSize: 50 * 1024 ** 3, evictTo: 0.9, evictEvery: 60_000, retention: { unusedFor: 30 * DAY, keepVersions: 3 }, pins: ['Foo.*'], evictOffline: false });
    expect(validateConfig({}).config.cache.maxSize).toBe(0);
    for (const bad of [{ maxSize: 'lots' }, { evictTo: 2 }, { retention: { unusedFor: '5m' } }, { retention: { keepVersions: 0 } }, { pins: ['a*b'] }]) {
      expect(() => validateConfig({ cache: bad })).toThrow();
    }
  });
});
