// Offline mode as an upstream that never connects, and the upstream-or-disk choice that tells "never asked"
// (offline: the disk is the whole answer) from "down" (the disk stands in, or the failure shows).
import { describe, expect, it } from 'vitest';
import { isUpstreamFailure, NuproxyError } from '../../../src/errors.js';
import { isNeverAsked, OfflineUpstream } from '../../../src/feed/offline-upstream.js';
import { orLocal } from '../../../src/feed/or-local.js';
import type { Upstream } from '../../../src/feed/upstream.js';
import { createLogSink } from '../../support/log-sink.js';

const down = (): NuproxyError => new NuproxyError('UPSTREAM_UNREACHABLE', 'upstream company: connect ECONNREFUSED', { upstream: 'company' });

describe('OfflineUpstream', () => {
  it('fails every call at once as an upstream failure that says it was never asked; its circuit stays closed', async () => {
    const u: Upstream = new OfflineUpstream('company');
    const calls: [string, () => Promise<unknown>][] = [
      ['resources', () => u.resources()],
      ['versions', () => u.versions('a.lib', false)],
      ['leaves', () => u.leaves('semver2', 'a.lib')],
      ['search', () => u.search('q=a', 'semver2')],
      ['autocomplete', () => u.autocomplete('q=a')],
      ['vulnerabilityIndex', () => u.vulnerabilityIndex()],
      ['vulnerabilityPage', () => u.vulnerabilityPage('https://x.example/p.json', 'base', 'ff')],
      ['openPackage', () => u.openPackage('a.lib', '1.0.0', 'nupkg', 'GET')],
      ['send', () => u.send('https://x.example/api/v2/package/', { method: 'PUT', headers: {}, timeoutMs: 1000 })],
    ];
    for (const [name, call] of calls) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isUpstreamFailure(err), name).toBe(true);
      expect(isNeverAsked(err), name).toBe(true);
      expect((err as Error).message, name).toBe('offline mode: upstream company is never asked');
    }
    expect(u.writable).toBe(false);
    expect(new OfflineUpstream('company', true).writable).toBe(true); // its configured role, as /health shows it
    expect(u.health()).toEqual({ state: 'closed', consecutiveFailures: 0 });
    expect(isNeverAsked(down())).toBe(false);
  });
});

describe('orLocal', () => {
  const disk = (answer: string | undefined) => {
    const asked: boolean[] = [];
    return { asked, read: async (_: undefined, whole: boolean) => (asked.push(whole), answer) };
  };

  it('the upstreams answer: the disk is not read', async () => {
    const d = disk('from disk');
    expect(await orLocal(createLogSink().logger, Promise.resolve('merged'), d.read, undefined)).toEqual({ from: 'upstreams', value: 'merged' });
    expect(await orLocal(createLogSink().logger, Promise.resolve(undefined), d.read, undefined)).toBeUndefined();
    expect(d.asked).toEqual([]);
  });

  it('upstreams down: the disk stands in, marked stale and logged; nothing on disk shows the failure', async () => {
    const sink = createLogSink();
    const d = disk('from disk');
    expect(await orLocal(sink.logger, Promise.reject(down()), d.read, undefined)).toEqual({ from: 'cache', value: 'from disk', outcome: 'stale' });
    expect(d.asked).toEqual([false]);
    expect(sink.lines.some((l) => l.msg === 'no upstream could answer: serving what the cache holds')).toBe(true);
    await expect(orLocal(sink.logger, Promise.reject(down()), disk(undefined).read, undefined)).rejects.toThrow('ECONNREFUSED');
  });

  it('never asked (offline): the disk is the whole answer, a hit; nothing on disk is absent, not a failure; nothing logged', async () => {
    const sink = createLogSink();
    const u: Upstream = new OfflineUpstream('company');
    const d = disk('from disk');
    expect(await orLocal(sink.logger, u.versions('a.lib', false), d.read, undefined)).toEqual({ from: 'cache', value: 'from disk', outcome: 'hit' });
    expect(d.asked).toEqual([true]);
    expect(await orLocal(sink.logger, u.versions('a.lib', false), disk(undefined).read, undefined)).toBeUndefined();
    expect(sink.lines).toEqual([]);
  });

  it('an error that is no upstream failure is thrown without reading the disk', async () => {
    const d = disk('from disk');
    await expect(orLocal(createLogSink().logger, Promise.reject(new NuproxyError('INTERNAL', 'bug')), d.read, undefined)).rejects.toThrow('bug');
    expect(d.asked).toEqual([]);
  });
});
