// `nuproxy advisories import|list` as a user runs it (the built dist/main.js), into a real cache dir that a
// running proxy shares (issue #16): the proxy's store then holds the advisories, as its watcher reads them.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORIES_KEY, watchAdvisories } from '../../src/policy/advisory-store.js';
import { MAX_OSV_FILE_BYTES } from '../../src/policy/osv.js';
import { malEntry } from '../support/osv.js';
import { MAIN } from '../support/process.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` first (npm test does)');
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('nuproxy advisories', () => {
  let dir: string;
  let cacheDir: string;
  let config: string;
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-advisories-cli-'));
    cacheDir = join(dir, 'cache');
    config = join(dir, 'nuproxy.yaml');
    await writeFile(config, `cache:\n  dir: ${JSON.stringify(cacheDir)}\nupstreams:\n  - name: up\n    serviceIndex: https://feed.example/v3/index.json\n`);
    // a checkout's layout: osv/malicious/<ecosystem>/<package>/MAL-….json, with another ecosystem beside it
    const nuget = join(dir, 'osv', 'malicious', 'nuget');
    await mkdir(join(nuget, 'algotrading'), { recursive: true });
    await mkdir(join(nuget, 'evil.logger'), { recursive: true });
    await mkdir(join(dir, 'osv', 'malicious', 'npm', 'left-pad'), { recursive: true });
    await writeFile(join(nuget, 'algotrading', 'MAL-2024-3998.json'), JSON.stringify(malEntry('MAL-2024-3998', 'AlgoTrading', { affected: [{ package: { ecosystem: 'NuGet', name: 'AlgoTrading' }, versions: ['1.0.0', '3.2.57'] }] }), null, 2));
    await writeFile(join(nuget, 'algotrading', 'MAL-0000-ghsa-malware-cefac5f80f58d5b1.json'), JSON.stringify(malEntry('', 'AlgoTrading'), null, 2));
    await writeFile(join(nuget, 'evil.logger', 'MAL-2025-7.json'), JSON.stringify(malEntry('MAL-2025-7', 'Evil.Logger', { affected: [{ package: { ecosystem: 'NuGet', name: 'Evil.Logger' } }] })));
    await writeFile(join(nuget, 'evil.logger', 'README.md'), 'not an advisory, not a .json file: not read');
    await writeFile(join(dir, 'osv', 'malicious', 'npm', 'left-pad', 'MAL-2024-1.json'), JSON.stringify(malEntry('MAL-2024-1', 'left-pad', { affected: [{ package: { ecosystem: 'npm', name: 'left-pad' } }] })));
    upstream = await startTestUpstream({ packages: [] });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], cacheDir });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('imports a folder of OSV files into the cache a running proxy uses; the proxy\'s store then has them; list shows them', async () => {
    const watch = await watchAdvisories(proxy.blobs, { every: 3_600_000 });
    try {
      expect(watch.current().size).toBe(0);
      const r = await run(['advisories', 'import', '--config', config, join(dir, 'osv')]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toContain('Read 4 files: 3 NuGet malicious-package advisories, 0 with a severity (left out: 1 of other ecosystems)');
      expect(r.stdout).toContain('Merged: 3 new, 0 updated, 0 withdrawn and removed.');
      expect(r.stdout).toContain(`Stored: 3 advisories naming 2 package ids (${ADVISORIES_KEY})`);
      expect(existsSync(join(cacheDir, ...ADVISORIES_KEY.split('/')))).toBe(true);

      // the running proxy's store, read as the server's watcher reads it
      expect(await watch.check()).toBe(true);
      const set = watch.current();
      expect(set.match('algotrading', '3.2.57')?.id).toBe('MAL-2024-3998');
      expect(set.match('evil.logger', '9.9.9')?.id).toBe('MAL-2025-7');
      expect(set.match('left-pad', '1.0.0')).toBeUndefined();

      const list = await run(['advisories', 'list', '--config', config, '--json', 'evil.logger']);
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([{ id: 'MAL-2025-7', modified: '2024-10-24T01:01:57Z', summary: 'Malicious code in Evil.Logger (NuGet)', packages: [{ id: 'Evil.Logger', versions: 'all', ranges: [] }] }]);
      const text = await run(['advisories', 'list', '--config', config]);
      expect(text.stdout).toContain('MAL-0000-ghsa-malware-cefac5f80f58d5b1  AlgoTrading (1.0.0, 1.0.1)');
      expect(text.stdout).toContain('3 of 3 stored advisories');

      // the same import again changes nothing: merged by advisory id
      const again = await run(['advisories', 'import', '--config', config, '--json', join(dir, 'osv')]);
      expect(JSON.parse(again.stdout)).toMatchObject({ files: 4, read: 3, added: 0, updated: 0, total: 3, mode: 'merge' });
      expect(await watch.check()).toBe(false);
    } finally {
      watch.stop();
    }
  });

  it('a file that is not an advisory refuses the whole import, naming the file; nothing is stored', async () => {
    const bad = join(dir, 'bad');
    await mkdir(bad, { recursive: true });
    await writeFile(join(bad, 'MAL-2026-1.json'), JSON.stringify(malEntry('MAL-2026-1', 'Fresh.Bad')));
    await writeFile(join(bad, 'zz-broken.json'), '{"id": "MAL-2026-2", "modified": ');
    const r = await run(['advisories', 'import', '--config', config, bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(bad, 'zz-broken.json')}: not JSON`);
    expect(r.stderr).toContain('Nothing was stored.');
    const list = await run(['advisories', 'list', '--config', config, '--json', 'fresh.bad']);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('a file larger than the limit is refused before it is read, naming it', async () => {
    const big = join(dir, 'big.json');
    await writeFile(big, Buffer.alloc(MAX_OSV_FILE_BYTES + 1, 0x20));
    const r = await run(['advisories', 'import', '--config', config, big]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${big}: ${MAX_OSV_FILE_BYTES + 1} bytes, larger than ${MAX_OSV_FILE_BYTES}: not an advisory file`);
  });

  it('usage errors exit 2 with the usage', async () => {
    for (const args of [['advisories'], ['advisories', 'import'], ['advisories', 'bogus'], ['advisories', 'list', '--replace']]) {
      const r = await run([...args, '--config', config]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain('Usage: nuproxy advisories import');
    }
  });
});
