import { describe, expect, it } from 'vitest';
import { AnswerMemo } from '../../../src/feed/answer-memo.js';

describe('AnswerMemo', () => {
  const setup = (maxAgeMs = Infinity): { memo: AnswerMemo; clock: { t: number } } => {
    const clock = { t: 1_000 };
    return { memo: new AnswerMemo(() => clock.t, maxAgeMs), clock };
  };

  it('keeps an answer until the first of its documents goes stale, not a millisecond longer', () => {
    const { memo, clock } = setup();
    memo.set('a.lib', 'flat', 'answer', 1_500, memo.stamp());
    expect(memo.get('a.lib', 'flat')).toBe('answer');
    clock.t = 1_499;
    expect(memo.get('a.lib', 'flat')).toBe('answer');
    clock.t = 1_500; // the documents' own freshness test: age < maxAge
    expect(memo.get('a.lib', 'flat')).toBeUndefined();
    clock.t = 1_000; // gone for good, even if the clock went back
    expect(memo.get('a.lib', 'flat')).toBeUndefined();
  });

  it('keeps nothing whose documents are already stale (or say nothing about freshness)', () => {
    const { memo } = setup();
    memo.set('a.lib', 'flat', 'answer', 1_000, memo.stamp());
    memo.set('b.lib', 'flat', 'answer', 0, memo.stamp());
    expect(memo.get('a.lib', 'flat')).toBeUndefined();
    expect(memo.get('b.lib', 'flat')).toBeUndefined();
  });

  it('bounds the keeping time by maxAgeMs, and keeps nothing when it is 0', () => {
    const { memo, clock } = setup(200);
    memo.set('a.lib', 'flat', 'answer', 60_000, memo.stamp());
    clock.t = 1_199;
    expect(memo.get('a.lib', 'flat')).toBe('answer');
    clock.t = 1_200;
    expect(memo.get('a.lib', 'flat')).toBeUndefined();
    const off = setup(0);
    expect(off.memo.enabled).toBe(false);
    off.memo.set('a.lib', 'flat', 'answer', 60_000, off.memo.stamp());
    expect(off.memo.get('a.lib', 'flat')).toBeUndefined();
  });

  it("forgets every answer of an id when one of the id's documents changes, and only that id", () => {
    const { memo } = setup();
    memo.set('a.lib', 'flat', 'versions', 9_999, memo.stamp());
    memo.set('a.lib', 'semver2', 'registration', 9_999, memo.stamp());
    memo.set('b.lib', 'flat', 'other', 9_999, memo.stamp());
    memo.forget('a.lib');
    expect(memo.get('a.lib', 'flat')).toBeUndefined();
    expect(memo.get('a.lib', 'semver2')).toBeUndefined();
    expect(memo.get('b.lib', 'flat')).toBe('other');
  });

  it('does not keep an answer built while a change happened (it may hold the document the change replaced)', () => {
    const { memo } = setup();
    const stamp = memo.stamp(); // the answer starts being built
    memo.forget('a.lib'); // a push lands meanwhile
    memo.set('a.lib', 'flat', 'built from the old list', 9_999, stamp);
    expect(memo.get('a.lib', 'flat')).toBeUndefined();
    memo.set('a.lib', 'flat', 'built after', 9_999, memo.stamp());
    expect(memo.get('a.lib', 'flat')).toBe('built after');
  });
});
