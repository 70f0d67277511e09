// The pure parts of the admin API and the dashboard (the token check is test/unit/access/): the per-id tally's bound, the overview's
// figures read from scrape text.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { IdTally } from '../../../src/http/id-tally.js';
import { figuresOf, formatBytes } from '../../../src/ui/figures.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('IdTally', () => {
  it('counts requests and bytes per id and orders the top ids', () => {
    const t = new IdTally();
    t.note('a', 10);
    t.note('b', 1000);
    t.note('a', 10);
    const top = t.top(5);
    expect(top.byRequests.map((x) => x.id)).toEqual(['a', 'b']);
    expect(top.byBytes).toEqual([
      { id: 'b', requests: 1, bytes: 1000 },
      { id: 'a', requests: 2, bytes: 20 },
    ]);
  });
  it('stays bounded under a scan of new ids, keeping the hot ones', () => {
    const t = new IdTally(100);
    for (let i = 0; i < 50; i++) t.note('hot', 1);
    for (let i = 0; i < 10_000; i++) t.note(`cold${i}`, 1);
    expect(t.size).toBeLessThanOrEqual(100);
    expect(t.top(1).byRequests[0]).toEqual({ id: 'hot', requests: 50, bytes: 50 });
  });
  it('halves the counts when every id is hot, still bounded', () => {
    const t = new IdTally(4);
    for (const id of ['a', 'b', 'c', 'd']) for (let i = 0; i < 4; i++) t.note(id, 1);
    t.note('e', 1);
    expect(t.size).toBeLessThanOrEqual(5);
    expect(t.top(1).byRequests[0]!.requests).toBe(2);
  });
});

describe('overview figures', () => {
  it('sums the families the overview shows from scrape text', () => {
    const text = [
      '# HELP nuproxy_http_requests_total Requests answered.',
      'nuproxy_http_requests_total{kind="package",status="200"} 5',
      'nuproxy_http_requests_total{kind="versions",status="404"} 2',
      'nuproxy_cache_answers_total{kind="package",outcome="hit"} 3',
      'nuproxy_cache_answers_total{kind="package",outcome="miss"} 1',
      'nuproxy_http_response_bytes_total{kind="package"} 2048',
      'nuproxy_upstream_fetched_bytes_total{upstream="a"} 512',
      'nuproxy_upstream_fetched_bytes_total{upstream="b"} 512',
      'nuproxy_other 99',
      'garbage line',
    ].join('\n');
    expect(figuresOf(text)).toEqual({ requests: 7, hits: 3, answers: 4, hitRatio: 0.75, bytesServed: 2048, bytesFetched: 1024 });
    expect(figuresOf('').hitRatio).toBeUndefined();
  });
  it('formats bytes in powers of 1024', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(10 * 1024 ** 2)).toBe('10.0 MB');
  });
});

describe('admin.tokens config', () => {
  const base = { upstreams: [{ name: 'u', serviceIndex: 'https://example.test/v3/index.json' }] };
  it('defaults to none (the admin API off) and takes [{ name, sha256 }]', () => {
    expect(validateConfig(base).config.admin.tokens).toEqual([]);
    const t = [{ name: 'ops', sha256: sha('x') }];
    expect(validateConfig({ ...base, admin: { tokens: t } }).config.admin.tokens).toEqual(t);
  });
  it('refuses a token that is not a SHA-256, a repeated name, an unknown key, with the key path', () => {
    expect(() => validateConfig({ ...base, admin: { tokens: [{ name: 'ops', sha256: 'secret-in-clear' }] } })).toThrow(/admin\.tokens\[0\]\.sha256: must be the SHA-256/);
    expect(() => validateConfig({ ...base, admin: { tokens: [{ name: 'ops', sha256: sha('a') }, { name: 'ops', sha256: sha('b') }] } })).toThrow(/admin\.tokens\[1\]\.name: admin token name ops is used twice/);
    expect(() => validateConfig({ ...base, admin: { token: 'x' } })).toThrow(/admin/);
  });
});
