// The sliced forms used for large registrations (src/feed/sliced-json.ts) must give exactly what the one-shot
// forms give: the same rewritten index and links, the same JSON text's value; and they must really yield.
import { describe, expect, it } from 'vitest';
import { rewriteRegistrationIndex, rewriteRegistrationPage } from '../../../src/protocol/registration.js';
import { LARGE_LEAVES, rewriteLargeRegistrationIndex, rewriteRegistrationPageItems, stringifyLarge } from '../../../src/feed/sliced-json.js';

type Json = Record<string, unknown>;
const UP = 'https://up.example/reg/odd.lib/';

/** An upstream index: inlined pages (some with odd leaves), an external page and a page with bad bounds. */
function index(leaves: number): Json {
  const items: Json[] = [];
  for (let i = 0; i < leaves; i += 64) {
    const vs = Array.from({ length: Math.min(64, leaves - i) }, (_, k) => `1.${i + k}.0`);
    items.push({
      '@id': `${UP}index.json#page/${vs[0]}/${vs[vs.length - 1]}`,
      lower: vs[0],
      upper: vs[vs.length - 1],
      count: vs.length,
      items: vs.map((v, k) => (k === 3 ? { broken: true } : { '@id': `${UP}${v}.json`, catalogEntry: { id: 'Odd.Lib', version: v, packageContent: `${UP}${v}.nupkg` } })),
    });
  }
  items.splice(5, 0, { '@id': `${UP}page/2.0.0/3.0.0.json`, lower: '2.0.0', upper: '3.0.0', count: 9 }, { '@id': 'x', lower: 'nope', upper: '1.0.0' });
  return { '@id': `${UP}index.json`, '@context': { x: 1 }, count: items.length, items };
}

describe('sliced rewrite and stringify of large registrations', () => {
  it('rewriteLargeRegistrationIndex gives what rewriteRegistrationIndex gives, and yields between slices', async () => {
    const doc = index(LARGE_LEAVES * 5 + 17);
    let turns = 0;
    const counter = setInterval(() => turns++, 0);
    const sliced = await rewriteLargeRegistrationIndex(doc, 'odd.lib', 'semver2');
    clearInterval(counter);
    expect(sliced).toEqual(rewriteRegistrationIndex(doc, 'odd.lib', 'semver2'));
    expect(Object.keys(sliced.links).length).toBeGreaterThan(LARGE_LEAVES * 4);
    expect(turns).toBeGreaterThan(0);
  });

  it('stringifyLarge is JSON of the same value (an empty, a short and a long member; other members kept)', async () => {
    for (const n of [0, 3, LARGE_LEAVES, LARGE_LEAVES * 3 + 1]) {
      const value = { extras: { '@context': { a: [1, 'b'] }, s: '"leaves":0' }, leaves: Array.from({ length: n }, (_, i) => ({ i, s: `v${i}\u2028"` })) };
      const text = await stringifyLarge(value, 'leaves');
      expect(JSON.parse(text), String(n)).toEqual(value);
    }
    expect(JSON.parse(await stringifyLarge({ leaves: [1, 2] }, 'leaves'))).toEqual({ leaves: [1, 2] });
    expect(JSON.parse(await stringifyLarge({ other: 1 }, 'leaves'))).toEqual({ other: 1 });
  });

  it('rewriteRegistrationPageItems gives the leaves rewriteRegistrationPage gives, and yields for a large page', async () => {
    for (const n of [0, 5, LARGE_LEAVES, LARGE_LEAVES * 4 + 3]) {
      const vs = Array.from({ length: n }, (_, k) => `2.${k}.0`);
      const page: Json = {
        '@id': `${UP}page/2.0.0/9.0.0.json`,
        lower: '2.0.0',
        upper: '9.0.0',
        count: n,
        items: vs.map((v, k) => (k === 7 ? { broken: true } : { '@id': `${UP}${v}.json`, catalogEntry: { id: 'Odd.Lib', version: v, packageContent: `${UP}${v}.nupkg` } })),
      };
      let turns = 0;
      const counter = setInterval(() => turns++, 0);
      const sliced = await rewriteRegistrationPageItems(page, 'odd.lib', 'semver2', '2.0.0', '9.0.0');
      clearInterval(counter);
      expect(sliced, String(n)).toEqual(rewriteRegistrationPage(page, 'odd.lib', 'semver2', '2.0.0', '9.0.0').doc.items);
      if (n > LARGE_LEAVES) expect(turns, String(n)).toBeGreaterThan(0);
    }
  });
});
