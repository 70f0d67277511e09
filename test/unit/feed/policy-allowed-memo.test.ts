// PolicyGate's memo of allowed downloads (allowedNow): a version allowed a moment ago is recognised without
// deciding again; a new policy revision (an advisories import) ends that at once; a blocked decision is never
// kept; the memo ends after ALLOWED_MEMO_MS (5 s).
import { describe, expect, it } from 'vitest';
import type { FeedContext } from '../../../src/feed/feed-context.js';
import { PolicyGate } from '../../../src/feed/policy-gate.js';
import type { Decision, Policy, VersionFacts } from '../../../src/policy/decision.js';
import { IdRouter } from '../../../src/protocol/id-rules.js';
import { createLogSink } from '../../support/log-sink.js';

/** A policy that needs no facts, blocks the ids in `blocked`, and counts its decisions. */
class CountingPolicy implements Policy {
  readonly active = true;
  readonly needs = { published: false, license: false, vulnerabilities: false };
  revision = 'r1';
  decisions = 0;
  blocked = new Set<string>();
  decide(f: VersionFacts): Decision {
    this.decisions++;
    return this.blocked.has(f.lowerId) ? { allowed: false, rule: 'deny', reason: 'denied in the test' } : { allowed: true };
  }
}

function gateWith(policy: Policy, now: () => number = Date.now): PolicyGate {
  const ctx = {
    names: ['public'],
    router: new IdRouter([{ name: 'public', include: [], exclude: [], owns: [] }]),
    upstream: () => {
      throw new Error('no upstream in this test');
    },
    local: { nuspec: async () => undefined },
  } as unknown as FeedContext;
  return new PolicyGate(ctx, policy, createLogSink().logger, undefined, now);
}

describe('PolicyGate: allowed downloads kept for a moment', () => {
  it('an allowed version is recognised without deciding again, until the revision changes', async () => {
    const policy = new CountingPolicy();
    const gate = gateWith(policy);
    expect(gate.allowedRecently('a.lib', '1.0.0')).toBe(false);
    await gate.check('a.lib', '1.0.0', 'public');
    expect(policy.decisions).toBe(1);
    expect(gate.allowedRecently('a.lib', '1.0.0')).toBe(true);
    expect(gate.allowedRecently('a.lib', '2.0.0')).toBe(false); // per version
    policy.revision = 'r2'; // an advisories import
    expect(gate.allowedRecently('a.lib', '1.0.0')).toBe(false);
  });

  it('a blocked version is never kept: it is decided (and refused) every time', async () => {
    const policy = new CountingPolicy();
    policy.blocked.add('evil.lib');
    const gate = gateWith(policy);
    await expect(gate.check('evil.lib', '1.0.0', 'public')).rejects.toMatchObject({ code: 'BLOCKED_BY_POLICY' });
    expect(gate.allowedRecently('evil.lib', '1.0.0')).toBe(false);
    await expect(gate.check('evil.lib', '1.0.0', 'public')).rejects.toMatchObject({ code: 'BLOCKED_BY_POLICY' });
    expect(policy.decisions).toBe(2);
  });

  it('the memo ends after 5 s', async () => {
    let clock = 1_000_000;
    const policy = new CountingPolicy();
    const gate = gateWith(policy, () => clock);
    await gate.check('a.lib', '1.0.0', 'public');
    clock += 4_000;
    expect(gate.allowedRecently('a.lib', '1.0.0')).toBe(true);
    clock += 1_500;
    expect(gate.allowedRecently('a.lib', '1.0.0')).toBe(false);
  });
});
