// `warm` and `export` under the supply-chain policy (issue #16), against a real test upstream: a range resolves to
// the newest version the policy allows and the run says which blocked version it skipped; a pinned blocked
// version is skipped (not a failure); export leaves cached blocked packages out of the bundle and says so, while
// they stay in the cache.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore } from '../../src/app.js';
import { validateConfig } from '../../src/config/load.js';
import { exportBundle } from '../../src/cli/bundle.js';
import { formatSummary, warm } from '../../src/cli/warm.js';
import { makeNupkg } from '../support/nupkg.js';
import { createLogSink } from '../support/log-sink.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const DAY = 86_400_000;
const daysAgo = (n: number): string => new Date(Date.now() - n * DAY).toISOString();
const timeouts = { connect: '2s', headers: '5s', body: '5s' };

describe('policy: warm and export', () => {
  let up: TestUpstream;
  let work: string;
  beforeAll(async () => {
    up = await startTestUpstream({
      packages: [
        makeNupkg({ id: 'Warm.Pkg', version: '1.0.0' }),
        makeNupkg({ id: 'Warm.Pkg', version: '1.1.0', dependencyGroups: [{ dependencies: [{ id: 'Warm.Dep', range: '[2.0.0]' }] }] }),
        makeNupkg({ id: 'Warm.Pkg', version: '1.2.0' }),
        makeNupkg({ id: 'Warm.Dep', version: '2.0.0' }),
      ],
      leafMeta: { 'Warm.Pkg@1.0.0': { published: daysAgo(40) }, 'Warm.Pkg@1.1.0': { published: daysAgo(20) }, 'Warm.Pkg@1.2.0': { published: daysAgo(1) }, 'Warm.Dep@2.0.0': { published: daysAgo(1) } },
    });
    work = await mkdtemp(join(tmpdir(), 'nuproxy-policy-warm-'));
  });
  afterAll(async () => {
    await up?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const coreFor = (cacheDir: string, policy?: Record<string, unknown>) =>
    createCore(
      validateConfig(
        { cache: { dir: cacheDir }, upstreams: [{ name: 'public', serviceIndex: up.serviceIndexUrl, retries: 0, timeouts }], ...(policy ? { policy } : {}) },
        {},
        'test',
      ),
      { logger: createLogSink('warn').logger },
    );

  it('warm resolves a range to the newest allowed version, skips blocked ones and says so; export leaves blocked cached packages out', async () => {
    const cacheDir = join(work, 'cache');
    // without a policy first: every version cached (the young ones too)
    const open = await coreFor(cacheDir);
    try {
      const s = await warm(open, [{ id: 'Warm.Pkg', range: '1.*' }, { id: 'Warm.Pkg', version: '1.1.0' }], { vulnerabilities: false });
      expect(s.closure.map((p) => `${p.id}@${p.version}`)).toEqual(['Warm.Dep@2.0.0', 'Warm.Pkg@1.1.0', 'Warm.Pkg@1.2.0']);
      expect(s.blocked).toEqual([]);
    } finally {
      await open.close();
    }

    const strict = await coreFor(cacheDir, { minimumAge: '7d' });
    try {
      const s = await warm(strict, [{ id: 'Warm.Pkg', range: '1.*' }], { vulnerabilities: false });
      expect(s.closure.map((p) => `${p.id}@${p.version}`)).toEqual(['Warm.Pkg@1.1.0']);
      expect(s.failures).toEqual([]);
      expect(s.packages.failed).toBe(0);
      expect(s.blocked).toEqual([
        { package: 'Warm.Pkg@1.2.0', rule: 'minimumAge', reason: expect.stringMatching(/policy\.minimumAge is 7d .*1\.\* resolved to 1\.1\.0 instead/) },
        // a dependency's exact range with only a blocked version: skipped, and said so (not a failure)
        { package: 'Warm.Dep@[2.0.0]', rule: 'minimumAge', reason: expect.stringMatching(/^no version the policy allows satisfies it; Warm\.Dep@2\.0\.0 is blocked: .*policy\.minimumAge is 7d/), requiredBy: 'Warm.Pkg@1.1.0' },
      ]);
      expect(formatSummary(s)).toContain('2 versions skipped by policy');
      // a pinned version (as a lock file names it) the policy blocks: not fetched, skipped, not a failure
      const pinned = await warm(strict, [{ id: 'Warm.Dep', version: '2.0.0' }], { vulnerabilities: false });
      expect([pinned.closure, pinned.failures, pinned.packages.failed]).toEqual([[], [], 0]);
      expect(pinned.blocked).toEqual([{ package: 'Warm.Dep@2.0.0', rule: 'minimumAge', reason: expect.stringContaining('policy.minimumAge is 7d') }]);

      const summary = await exportBundle(strict, join(work, 'out.tar'), { vulnerabilities: false });
      expect(summary.blocked.map((b) => [b.package, b.rule])).toEqual([['warm.dep@2.0.0', 'minimumAge'], ['warm.pkg@1.2.0', 'minimumAge']]);
      expect(summary.packages).toBe(1); // warm.pkg 1.1.0 only
      expect(existsSync(join(cacheDir, 'packages', 'warm.pkg', '1.2.0', 'warm.pkg.1.2.0.nupkg'))).toBe(true);
    } finally {
      await strict.close();
    }
  });
});
