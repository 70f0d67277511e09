import { describe, expect, it } from 'vitest';
import { DEFAULT_MEMORY_MB, divideMemory, MIN_MEMORY_MB, sharedBytes, type EntryShare, type MemoryShares } from '../../../src/config/memory-budget.js';
import { validateConfig } from '../../../src/config/load.js';
import { isNuproxyError } from '../../../src/errors.js';

const MB = 1024 * 1024;
const byteShares = (s: MemoryShares): number[] => Object.values(s).map((v: number | EntryShare) => (typeof v === 'number' ? v : v.bytes));

describe('divideMemory', () => {
  it('gives every cache at the default budget exactly the size it had before the budget was shared', () => {
    const s = divideMemory(DEFAULT_MEMORY_MB);
    expect(s.metadataStore).toBe(128 * MB);
    expect(s.packageTier).toBe(128 * MB);
    expect(s.renderCache).toBe(64 * MB);
    expect([s.registrations.entries, s.versionLists.entries, s.parsedDocs.entries, s.answers.entries, s.blobInfo.entries, s.routings.entries]).toEqual([500, 5000, 2000, 20_000, 10_000, 10_000]);
    expect(validateConfig({}).config.cache.memoryMaxMB).toBe(DEFAULT_MEMORY_MB);
  });

  it('never shares out more than the budget; every share is a positive whole number, counts at least 1', () => {
    const budgets = [MIN_MEMORY_MB, 16.3, 17, 33.33, 100, 128, 419.99, DEFAULT_MEMORY_MB, 420.01, 1000, 4096, 65_536, 1_048_576];
    for (const mb of budgets) {
      const s = divideMemory(mb);
      expect(sharedBytes(s), `${mb} MB`).toBeLessThanOrEqual(mb * MB);
      expect(byteShares(s).reduce((a, b) => a + b, 0), `${mb} MB`).toBeLessThanOrEqual(mb * MB);
      for (const v of byteShares(s)) {
        expect(Number.isInteger(v) && v > 0, `${mb} MB: ${v}`).toBe(true);
      }
      for (const e of Object.values(s).filter((v): v is EntryShare => typeof v !== 'number')) {
        expect(Number.isInteger(e.entries) && e.entries >= 1, `${mb} MB`).toBe(true);
        // the count rounds down: its entries at the stated size fit the byte share
        expect(e.entries * e.avgEntryBytes).toBeLessThanOrEqual(e.bytes);
        expect((e.entries + 1) * e.avgEntryBytes).toBeGreaterThan(e.bytes);
      }
    }
  });

  it('scales every share with the budget (twice the budget: twice each share, to the byte)', () => {
    const one = divideMemory(200);
    const two = divideMemory(400);
    for (const [i, v] of byteShares(two).entries()) expect(Math.abs(v - 2 * byteShares(one)[i]!)).toBeLessThanOrEqual(1);
    expect(divideMemory(DEFAULT_MEMORY_MB / 2).metadataStore).toBe(64 * MB);
  });

  it('refuses a budget too small to be useful, in the config with its key path', () => {
    expect(() => divideMemory(MIN_MEMORY_MB - 0.5)).toThrow(RangeError);
    expect(() => divideMemory(Number.NaN)).toThrow(RangeError);
    for (const bad of [8, 0, -1]) {
      try {
        validateConfig({ cache: { memoryMaxMB: bad } });
        expect.unreachable(`memoryMaxMB ${bad} was accepted`);
      } catch (err) {
        expect(isNuproxyError(err, 'CONFIG_INVALID')).toBe(true);
        expect((err as { details: { problems: string[] } }).details.problems).toEqual([expect.stringMatching(/^cache\.memoryMaxMB: must be at least 16 \(MB\)/)]);
      }
    }
    expect(validateConfig({ cache: { memoryMaxMB: MIN_MEMORY_MB } }).config.cache.memoryMaxMB).toBe(MIN_MEMORY_MB);
  });
});
