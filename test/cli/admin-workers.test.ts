// The admin summary with `workers: 2`, through the built nuproxy: requests answered by either worker all count
// in the top ids, whichever worker answers the summary (it asks the other over the workers' channel); a purge
// through one worker drops the id's version list on the other too. Each request goes over its own connection:
// node:cluster hands connections to the workers in turn.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { getOutcome } from '../support/http.js';

const TOKEN = 'workers-admin-token-8f2e';

/** A request on a new connection (the cluster hands each to the next worker), with the admin token. */
async function fresh(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const o = await getOutcome(url, { connection: 'close', authorization: `Bearer ${TOKEN}` }, method);
  return { status: o.status, body: o.body.toString('utf8') };
}

describe('workers: 2, the admin API', () => {
  let dir: string;
  let upstream: TestUpstream;
  let proxy: NuproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-admin-workers-'));
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Workers.Admin', version: '1.0.0' })] });
    proxy = await startNuproxy(dir, 'admin-workers', {
      workers: 2,
      log: { level: 'info' },
      admin: { tokens: [{ name: 'ops', sha256: createHash('sha256').update(TOKEN).digest('hex') }] },
      cache: { dir: join(dir, 'cache') },
      upstreams: [{ name: 'main', serviceIndex: upstream.serviceIndexUrl, retries: 0 }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the summary counts both workers\' requests, whichever worker answers it', async () => {
    const list = `${proxy.url}v3/flat/workers.admin/index.json`;
    for (let i = 0; i < 6; i++) expect((await fresh(list)).status).toBe(200);
    // (log lines are flushed every 250 ms)
    const path = '/v3/flat/workers.admin/index.json';
    for (let i = 0; i < 100 && proxy.lines.filter((l) => l.msg === 'request' && l.path === path).length < 6; i++) await new Promise((r) => setTimeout(r, 50));
    const workers = new Set(proxy.lines.filter((l) => l.msg === 'request' && l.path === '/v3/flat/workers.admin/index.json').map((l) => l.worker));
    expect(workers.size).toBe(2);
    for (let i = 0; i < 2; i++) {
      const s = JSON.parse((await fresh(`${proxy.url}admin/summary`)).body) as { topIds: { byRequests: { id: string; requests: number }[] } };
      expect(s.topIds.byRequests[0]).toMatchObject({ id: 'workers.admin', requests: 6 });
    }
  });

  it('a purge through one worker drops the version list on both', async () => {
    const FLAT = '/v3-flatcontainer/workers.admin/index.json';
    const before = upstream.hits(FLAT);
    expect(before).toBeGreaterThanOrEqual(1);
    expect((await fresh(`${proxy.url}admin/purge/workers.admin`, 'POST')).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await fresh(`${proxy.url}v3/flat/workers.admin/index.json`)).status).toBe(200);
    // each worker that answers asks once again (the memory store is per worker), never more
    expect(upstream.hits(FLAT) - before).toBe(2);
  });
});
