// The circuit breaker's states with a moved clock (the integration test in readme-promises.test.ts drives the
// same machine through the proxy over real sockets).
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from '../../../src/upstream/circuit-breaker.js';

function breaker(): { b: CircuitBreaker; changes: CircuitState[]; advance: (ms: number) => void } {
  let now = 1_000_000;
  const changes: CircuitState[] = [];
  const b = new CircuitBreaker('up', { failures: 2, cooldownMs: 1000, now: () => now, onChange: (s) => changes.push(s) });
  return { b, changes, advance: (ms) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after `failures` consecutive failures; a success in between starts the count again', () => {
    const { b, changes } = breaker();
    b.enter();
    b.failure(new Error('x'));
    b.success();
    b.failure(new Error('x'));
    expect(b.health().state).toBe('closed');
    b.failure(new Error('status 503'));
    expect(b.health()).toEqual({ state: 'open', consecutiveFailures: 2, lastError: 'status 503' });
    expect(() => b.enter()).toThrow(/not asked for 1s after 2 failures \(circuit open\)/);
    expect(changes).toEqual(['open']);
  });

  it('after the cooldown lets one probe through at a time; its verdict closes or re-opens', () => {
    const { b, changes, advance } = breaker();
    b.failure(new Error('x'));
    b.failure(new Error('x'));
    advance(1000);
    expect(b.health().state).toBe('half-open');
    b.enter(); // the probe
    expect(() => b.enter()).toThrow(/circuit open/); // a second one while it is out
    b.failure(new Error('still down'));
    expect(b.health().state).toBe('open');
    advance(1000);
    b.enter();
    b.success();
    expect(b.health()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('a probe the caller gave up (a push cut for its client) frees the slot without a verdict', () => {
    const { b, advance } = breaker();
    b.failure(new Error('x'));
    b.failure(new Error('x'));
    advance(1000);
    b.enter();
    b.abandoned();
    expect(b.health().state).toBe('half-open');
    expect(() => b.enter()).not.toThrow(); // the next request may probe
    b.success();
    expect(b.health().state).toBe('closed');
  });
});
