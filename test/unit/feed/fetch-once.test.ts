// fetchOnce's own logic over the in-process lock (every lock implementation: test/contract/fetch-lock.test.ts).
import { describe, expect, it } from 'vitest';
import { fetchOnce, MemoryFetchLock, type Release } from '../../../src/feed/fetch-lock.js';

describe('fetchOnce', () => {
  it('a caller that looked first and missed, while the holder stored and released before its lock, takes what was stored instead of fetching again', async () => {
    const lock = new MemoryFetchLock();
    const holderRelease = (await lock.lock('k', 60_000))!;
    expect(holderRelease).toBeDefined();
    let stored: string | undefined;
    let peeks = 0;
    let fetches = 0;
    const result = await fetchOnce(lock, 'k', {
      ttlMs: 60_000,
      peekFirst: true,
      peek: async () => {
        peeks++;
        const seen = stored;
        if (peeks === 1) {
          // the holder finishes right after this look: it stores, then releases, before the caller's lock
          stored = 'from the holder';
          await holderRelease();
        }
        return seen;
      },
      fetch: async (release: Release) => {
        fetches++;
        await release();
        return 'fetched again';
      },
    });
    expect(result).toBe('from the holder');
    expect(fetches).toBe(0);
    expect(peeks).toBe(2);
    // the lock it took for the second look is given back
    expect(await lock.lock('k', 1000)).toBeDefined();
  });

  it('a caller that finds nothing after taking the lock fetches, holding it', async () => {
    const lock = new MemoryFetchLock();
    let heldDuringFetch: boolean | undefined;
    const result = await fetchOnce(lock, 'k', {
      ttlMs: 60_000,
      peekFirst: true,
      peek: async () => undefined,
      fetch: async (release: Release) => {
        heldDuringFetch = (await lock.lock('k', 1000)) === undefined;
        await release();
        return 'fetched';
      },
    });
    expect(result).toBe('fetched');
    expect(heldDuringFetch).toBe(true);
  });

  it('without peekFirst, an uncontended caller fetches at once without looking', async () => {
    const lock = new MemoryFetchLock();
    let peeks = 0;
    const result = await fetchOnce(lock, 'k', {
      ttlMs: 60_000,
      peek: async () => {
        peeks++;
        return 'never';
      },
      fetch: async (release: Release) => {
        await release();
        return 'fetched';
      },
    });
    expect(result).toBe('fetched');
    expect(peeks).toBe(0);
  });

  it('a look that throws after the lock was taken gives the lock back', async () => {
    const lock = new MemoryFetchLock();
    let peeks = 0;
    await expect(
      fetchOnce(lock, 'k', {
        ttlMs: 60_000,
        peekFirst: true,
        peek: async () => {
          if (++peeks === 2) throw new Error('store unreadable');
          return undefined;
        },
        fetch: async () => 'fetched',
      }),
    ).rejects.toThrow('store unreadable');
    expect(await lock.lock('k', 1000)).toBeDefined();
  });
});
