// Offline, the disk's answer is the whole answer for every id, also for one the id rules allow no upstream for
// (nothing is asked, so nothing fails): an imported copy of it is served, as offline mode always did. Online the
// rules decide: nobody may serve the id, so it is absent. (Offline is an upstream that never connects:
// src/feed/offline-upstream.ts; this pins that no upstream to ask still means "the disk answers".)
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, importBundle } from '../../src/cli/bundle.js';
import { packageKey } from '../../src/feed/cache-keys.js';
import { get } from '../support/http.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

async function waitFor(path: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; !existsSync(path); ) {
    if (Date.now() > deadline) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('an id no upstream is allowed for, with an imported copy', () => {
  let upstream: TestUpstream;
  let work: string;
  let imported: string;
  const timeouts = { connect: '1s', headers: '2s', body: '2s' };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nuproxy-offline-rules-'));
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Team.Lib', version: '1.0.0' })] });
    const filling = await startTestProxy({ upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, timeouts }] });
    try {
      expect((await get(`${filling.url}v3/flat/team.lib/1.0.0/team.lib.1.0.0.nupkg`)).status).toBe(200);
      await waitFor(join(filling.cacheDir, packageKey('team.lib', '1.0.0', 'nuspec')));
      await exportBundle(filling.cacheDir, join(work, 'b.tar'));
    } finally {
      await filling.stop();
    }
    imported = join(work, 'imported');
    await importBundle(imported, join(work, 'b.tar'));
  });
  afterAll(async () => {
    await upstream?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const excluding = { name: 'company', serviceIndex: '', exclude: ['team.*'], timeouts };

  it('offline: served from the disk (versions, registration, autocomplete of versions, the package)', async () => {
    const proxy = await startTestProxy({ cacheDir: imported, upstreams: [{ ...excluding, serviceIndex: upstream.serviceIndexUrl }], config: { offline: true } });
    const asked = upstream.requests.length; // the filling proxy's requests
    try {
      const versions = await get(`${proxy.url}v3/flat/team.lib/index.json`);
      expect(versions.status, versions.text).toBe(200);
      expect(versions.json()).toEqual({ versions: ['1.0.0'] });
      expect(versions.headers['x-nuproxy-cache']).toBe('hit');
      expect((await get(`${proxy.url}v3/registration/semver2/team.lib/index.json`)).status).toBe(200);
      const ac = await get(`${proxy.url}v3/autocomplete?id=team.lib&prerelease=true&semVerLevel=2.0.0`);
      expect(ac.status, ac.text).toBe(200);
      expect(ac.json<{ data: string[] }>().data).toEqual(['1.0.0']);
      expect((await get(`${proxy.url}v3/flat/team.lib/1.0.0/team.lib.1.0.0.nupkg`)).status).toBe(200);
      expect(upstream.requests.slice(asked)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('online: the rules decide, nobody may serve it: absent', async () => {
    const proxy = await startTestProxy({ cacheDir: imported, upstreams: [{ ...excluding, serviceIndex: upstream.serviceIndexUrl }] });
    try {
      expect((await get(`${proxy.url}v3/flat/team.lib/index.json`)).status).toBe(404);
    } finally {
      await proxy.stop();
    }
  });
});
