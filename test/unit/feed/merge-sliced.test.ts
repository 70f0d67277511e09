// Long version lists are parsed in slices that give the event loop a turn (issue #11's leftover: a list at the
// 100,000 limit held every other request for the whole parse); short ones in one go, as before.
import { describe, expect, it } from 'vitest';
import { LARGE_VERSIONS, mergeVersionLists, mergeVersionListsSliced, runSliced } from '../../../src/feed/merge-versions.js';
import { sortVersionSteps, sortVersionStrings } from '../../../src/protocol/sort.js';

function shuffledVersions(n: number, seed = 7): string[] {
  const vs = Array.from({ length: n }, (_, i) => `${i % 9}.${(i * 13) % 1000}.${i}${i % 3 ? '' : `-Beta.${i % 50}`}`);
  let s = seed;
  for (let i = vs.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [vs[i], vs[j]] = [vs[j]!, vs[i]!];
  }
  return vs;
}

/** How many turns other work got while `run` ran (a setImmediate chain counts them). */
async function turnsDuring<T>(run: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const tick = (): void => {
    if (done) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const value = await run();
  done = true;
  return { value, turns };
}

describe('version lists parsed in slices', () => {
  const a = shuffledVersions(60_000, 1);
  const b = shuffledVersions(30_000, 2).map((v) => v.replace(/^(\d)\./, '1$1.'));

  it('a large merge gives the event loop turns and equals the merge in one go (winners included)', async () => {
    const lists = [
      { upstream: 'first', versions: a },
      { upstream: 'second', versions: [...b, ...a.slice(0, 100)] },
    ];
    const { value, turns } = await turnsDuring(() => mergeVersionListsSliced(lists));
    expect(turns).toBeGreaterThan(10);
    expect(value).toEqual(mergeVersionLists(lists));
    expect(value.winners[value.versions[0]!]).toBeDefined();
  });

  it('a short merge runs in one go: no turn given', async () => {
    const lists = [{ upstream: 'only', versions: a.slice(0, LARGE_VERSIONS) }];
    const { value, turns } = await turnsDuring(() => mergeVersionListsSliced(lists));
    expect(turns).toBe(0);
    expect(value).toEqual(mergeVersionLists(lists));
  });

  it('sortVersionSteps run in slices sorts exactly like sortVersionStrings', async () => {
    const withJunk = [...a, 'not-a-version', '1.0', '1.0.0', 'v2'];
    const { value, turns } = await turnsDuring(() => runSliced(sortVersionSteps(withJunk), withJunk.length));
    expect(turns).toBeGreaterThan(5);
    expect(value).toEqual(sortVersionStrings(withJunk));
    expect(value).toContain('1.0.0');
    expect(value).not.toContain('not-a-version');
  });
});
