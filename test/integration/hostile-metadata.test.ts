// Issue #11 items 1 and 2, and "JSON nested 100,000 deep gives 500": metadata from a hostile upstream (a gzip
// bomb, endless and huge documents, deep nesting) against the real nuproxy process, at default limits: the
// answer, the process alive, its memory, its health probes. Exact boundaries, echoed credentials, Redis and stale
// copies: hostile-metadata-limits.test.ts.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCache } from '../support/cache-audit.js';
import { get } from '../support/http.js';
import { bombSizes, deepDocument, document, endlessVersionList, gzipBomb, hugeContentLength, tracker } from '../support/hostile/metadata.js';
import { rssOf, startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { collectGarbage, inspectorEnv } from '../support/inspector.js';
import { freePort } from '../support/net.js';

const MB = 1024 * 1024;
const FLAT = '/v3-flatcontainer/';
const REG = '/v3/registration5-gz-semver2/';

async function peakRss(pid: number): Promise<number> {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/**
 * Forces a full collection in the process (its inspector), then polls until its RSS is below `ceiling` (freed
 * buffers go back to the system in the background), at most 10 s. Returns the last RSS seen.
 */
async function rssSettlesBelow(pid: number, inspectPort: number, ceiling: number): Promise<number> {
  await collectGarbage(inspectPort);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rss = await rssOf(pid);
    if (rss < ceiling || Date.now() > deadline) return rss;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('hostile metadata against the nuproxy process, default limits', () => {
  let dir: string;
  let hostile: HostileUpstream;
  let proc: NuproxyProcess;
  let pid: number;
  let baseline: number;
  let inspectPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-hostile-meta-'));
    hostile = await startHostileUpstream();
    hostile.on(`${FLAT}good.lib/index.json`, document('{"versions":["1.0.0"]}'));
    inspectPort = await freePort();
    proc = await startNuproxy(
      dir,
      'hostile-meta',
      {
        cache: { dir: join(dir, 'cache') },
        upstreams: [{ name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0, timeouts: { connect: '2s', headers: '20s', body: '20s' } }],
      },
      [],
      inspectorEnv(inspectPort),
    );
    pid = proc.child.pid!;
    // warm: service index fetched, code paths compiled, before memory is measured
    expect((await get(`${proc.url}v3/flat/good.lib/index.json`)).status).toBe(200);
    await collectGarbage(inspectPort);
    baseline = await rssOf(pid);
  });
  afterAll(async () => {
    await proc?.stop();
    await hostile?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function alive(): Promise<void> {
    expect(proc.child.exitCode).toBeNull();
    expect((await get(`${proc.url}health/live`)).status).toBe(200);
  }

  it('a 2.6 MB gzip registration index inflating to 2.5 GB: 502 naming metadataBytes (64 MB), peak memory bounded, RSS back, nothing stored', async () => {
    const sizes = bombSizes();
    expect(sizes.wire).toBeLessThan(3 * MB);
    expect(sizes.decoded).toBeGreaterThan(2.4 * 1024 * MB);
    const sent = tracker();
    hostile.on(`${FLAT}bomb.lib/index.json`, document('{"versions":["1.0.0"]}'));
    hostile.on(`${REG}bomb.lib/index.json`, gzipBomb(sent));
    const r = await get(`${proc.url}v3/registration/semver2/bomb.lib/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('limits.metadataBytes (64 MB)'), upstream: 'hostile' });
    await sent.done;
    await alive();
    const peak = await peakRss(pid);
    const settled = await rssSettlesBelow(pid, inspectPort, baseline + 100 * MB);
    console.log(`gzip bomb: RSS before ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB, settled ${(settled / MB).toFixed(0)} MB; the bomb decodes to ${(sizes.decoded / MB).toFixed(0)} MB`);
    // the process held at most about the decoded limit, not the 2.5 GB (today: abort, 5.4 GB peak)
    expect(peak - baseline).toBeLessThan(400 * MB);
    expect(settled).toBeLessThan(baseline + 100 * MB);
    // not stored: the next request asks the upstream again, which now answers properly
    hostile.on(`${REG}bomb.lib/index.json`, document(JSON.stringify({ count: 0, items: [] })));
    const again = await get(`${proc.url}v3/registration/semver2/bomb.lib/index.json`);
    expect(again.status).toBe(200);
    expect(again.json().count).toBe(1);
    expect((await auditCache(join(dir, 'cache'))).blobs).toEqual([]);
  });

  it('endless version lists, four at once, twice: 502 naming metadataBytes, connections closed, health probes answering throughout', async () => {
    const probes: number[] = [];
    let attacking = true;
    const prober = (async () => {
      while (attacking) {
        const t = performance.now();
        const p = await get(`${proc.url}health/live`);
        expect(p.status).toBe(200);
        probes.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const sent: ReturnType<typeof tracker>[] = [];
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(
        [0, 1, 2, 3].map((k) => {
          const s = tracker();
          sent.push(s);
          hostile.on(`${FLAT}endless.${round}.${k}/index.json`, endlessVersionList(s));
          return get(`${proc.url}v3/flat/endless.${round}.${k}/index.json`);
        }),
      );
      for (const r of answers) {
        expect(r.status).toBe(502);
        expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('limits.metadataBytes (64 MB)'), upstream: 'hostile' });
      }
    }
    attacking = false;
    await prober;
    await Promise.all(sent.map((s) => s.done));
    // nuproxy hung up on each: the upstream did not get to finish (it never would)
    expect(sent.every((s) => s.closed)).toBe(true);
    const worst = Math.max(...probes);
    console.log(`endless version lists: ${(sent.reduce((n, s) => n + s.bytes, 0) / MB).toFixed(0)} MB sent in all before nuproxy hung up; ${probes.length} health probes, worst ${worst.toFixed(0)} ms`);
    expect(probes.length).toBeGreaterThanOrEqual(5);
    // generous ceiling (today the probes stopped for 90 s before the process died)
    expect(worst).toBeLessThan(3000);
    await alive();
    const settled = await rssSettlesBelow(pid, inspectPort, baseline + 100 * MB);
    console.log(`endless version lists: RSS before ${(baseline / MB).toFixed(0)} MB, peak ${((await peakRss(pid)) / MB).toFixed(0)} MB, settled ${(settled / MB).toFixed(0)} MB`);
    expect(settled).toBeLessThan(baseline + 100 * MB);
  });

  it('a 10 GB Content-Length: 502 naming the limit at once, without reading the body', async () => {
    const sent = tracker();
    hostile.on(`${FLAT}huge.lib/index.json`, hugeContentLength(sent));
    const r = await get(`${proc.url}v3/flat/huge.lib/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringMatching(/of 10 GB, over limits\.metadataBytes \(64 MB\)/), upstream: 'hostile' });
    await sent.done;
    expect(sent.closed).toBe(true);
    await alive();
  });

  it('a document nested 100,000 deep: 502 naming limits.jsonDepth (64), not 500 (registration) or 200 (version list)', async () => {
    const deep = `{"count":1,"items":[{"items":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
    hostile.on(`${FLAT}deep.lib/index.json`, document(deepDocument(100_000)));
    hostile.on(`${REG}deep.reg/index.json`, document(deep));
    hostile.on(`${FLAT}deep.reg/index.json`, document('{"versions":["1.0.0"]}'));
    for (const path of ['v3/flat/deep.lib/index.json', 'v3/registration/semver2/deep.reg/index.json']) {
      const r = await get(`${proc.url}${path}`);
      expect(r.status, path).toBe(502);
      expect(r.json(), path).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('limits.jsonDepth (64)'), upstream: 'hostile' });
    }
    await alive();
  });
});

