// Issue #14's "done when" with the real client: cache.maxSize set, real `dotnet restore`s through nuproxy bring
// more than fits, and the store stays under the cap with the hottest packages (restored again and again) kept.
// What went is restored again on demand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walkStore } from '../../src/feed/evictor.js';
import { createProject, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { createLogSink } from '../support/log-sink.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { findRealPackagesDir, XUNIT_AND_NEWTONSOFT } from '../support/real-packages.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const reason = skipReason('bounded-cache-restore (dotnet restore past cache.maxSize)');
const MB = 1024 * 1024;
// xunit's closure and Newtonsoft.Json: about 4.1 MB of packages; the cold ones about 3.6 MB more
const HOT = [
  { id: 'xunit', version: '2.9.3' },
  { id: 'Newtonsoft.Json', version: '13.0.3' },
];
const COLD = [[{ id: 'coverlet.collector', version: '6.0.4' }], [{ id: 'xunit.runner.visualstudio', version: '3.1.5' }]];
const MAX = 6 * MB;

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet restore past cache.maxSize', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const projects: DotnetProject[] = [];

  beforeAll(async () => {
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { maxSize: MAX, evictTo: 0.9, evictEvery: '1s' } } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await Promise.all(projects.map((p) => removeProject(p)));
  });

  const restoreOnce = async (packages: { id: string; version: string }[]): Promise<string[]> => {
    const p = await createProject({ sourceUrl: proxy.index, packages }); // empty package folders: every package is downloaded
    projects.push(p);
    const r = await restore(p);
    expect(r.code, explain(r)).toBe(0);
    return restoredPackages(p);
  };
  const stored = async (): Promise<{ bytes: number; refs: string[] }> => {
    const index = await walkStore(proxy.blobs, createLogSink('warn').logger);
    let bytes = 0;
    for (const e of index.values()) bytes += e.bytes;
    return { bytes, refs: [...index.keys()] };
  };

  it('keeps the store under the cap and the hottest packages in it', async () => {
    const hot = await restoreOnce(HOT);
    for (const e of XUNIT_AND_NEWTONSOFT) expect(hot).toContain(e);
    // the busy projects restore between the others, again and again
    for (const cold of COLD) {
      await restoreOnce(cold);
      await restoreOnce(HOT);
    }
    await restoreOnce(HOT);
    const after = await (async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = await stored();
        if (s.bytes <= MAX || Date.now() > deadline) return s;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    expect(after.bytes).toBeLessThanOrEqual(MAX);
    for (const e of XUNIT_AND_NEWTONSOFT) expect(after.refs, `${e} was evicted`).toContain(e);
    const coldRefs = ['coverlet.collector/6.0.4', 'xunit.runner.visualstudio/3.1.5'];
    expect(coldRefs.some((r) => !after.refs.includes(r)), 'something cold was evicted').toBe(true);
    expect(proxy.logs.lines.some((l) => l.msg === 'evicted' && l.rule === 'size')).toBe(true);

    // what went is restored again, fetched on demand
    const again = await restoreOnce(COLD[0]!);
    expect(again).toContain('coverlet.collector/6.0.4');
  }, 600_000);
});
