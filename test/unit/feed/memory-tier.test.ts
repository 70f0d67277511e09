import { describe, expect, it } from 'vitest';
import { MEMORY_TIER_BYTES, MemoryTier } from '../../../src/feed/memory-tier.js';

describe('MemoryTier', () => {
  it('keeps small files up to its byte bound, dropping the least recently used', () => {
    const tier = new MemoryTier({ maxBytes: 1000, maxFileBytes: 400 });
    for (const k of ['a', 'b', 'c']) tier.set(k, Buffer.alloc(300, k));
    expect(tier.bytes).toBe(900);
    expect(tier.get('a')?.[0]).toBe('a'.charCodeAt(0)); // a is now the most recently used
    tier.set('d', Buffer.alloc(300, 'd')); // 1200 > 1000: the least recently used (b) goes
    expect(tier.get('b')).toBeUndefined();
    for (const k of ['a', 'c', 'd']) expect(tier.get(k)).toBeDefined();
    expect(tier.bytes).toBeLessThanOrEqual(1000);
  });

  it('refuses files over its file limit, and says which sizes belong', () => {
    const tier = new MemoryTier({ maxBytes: 10_000, maxFileBytes: 400 });
    expect(tier.fits(400)).toBe(true);
    expect(tier.fits(401)).toBe(false);
    tier.set('big', Buffer.alloc(401));
    expect(tier.get('big')).toBeUndefined();
    tier.set('x', Buffer.alloc(10));
    tier.delete('x');
    expect(tier.get('x')).toBeUndefined();
  });

  it('defaults to 128 MB of files up to 2 MB', () => {
    const tier = new MemoryTier();
    expect(MEMORY_TIER_BYTES).toBe(128 * 1024 * 1024);
    expect(tier.fits(2 * 1024 * 1024)).toBe(true);
    expect(tier.fits(2 * 1024 * 1024 + 1)).toBe(false);
  });
});
