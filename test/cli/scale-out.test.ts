// Two nuproxy processes sharing one Redis (and one test upstream), with nginx balancing between them: the
// docker-compose.yml topology, from plain processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { sharedRedisBackends, type SharedRedis } from '../support/redis-cluster.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { get } from '../support/http.js';
import { pushMultipart } from '../support/push.js';
import { freePort } from '../support/net.js';
import { needTool, nginxPath } from '../support/need.js';
import { waitFor } from '../support/wait.js';

const nginx = nginxPath();
const noNginx = needTool('nginx', nginx !== undefined, 'scale-out behind nginx (the docker-compose.yml topology)');

const KEY = 'push-key';

// on one redis-server and on a Redis Cluster (the kill/restart case and nginx: single server; a cluster losing a
// master under load: test/integration/redis-cluster-failover.test.ts)
for (const backend of sharedRedisBackends('scale-out (several nuproxy instances sharing Redis)'))
describe.skipIf(backend.skip !== undefined)(`several nuproxy instances sharing Redis (${backend.name})`, () => {
  let dir: string;
  let redis: SharedRedis;
  let upstream: TestUpstream;
  let a: NuproxyProcess;
  let b: NuproxyProcess;
  const small = makeNupkg({ id: 'Shared.Small', version: '1.0.0', padBytes: 1024 * 1024 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-scale-'));
    redis = await backend.start();
    upstream = await startTestUpstream({
      packages: [small, makeNupkg({ id: 'Shared.Other', version: '2.0.0' }), makeNupkg({ id: 'Team.Lib', version: '1.0.0' })],
      publish: { apiKey: KEY },
    });
    const config = (name: string) => ({
      cache: { dir: join(dir, name), metadata: redis.url, redisTimeout: '300ms' },
      upstreams: [{ name: 'company', serviceIndex: upstream.serviceIndexUrl, writable: true }],
    });
    [a, b] = await Promise.all([startNuproxy(dir, 'a', config('a')), startNuproxy(dir, 'b', config('b'))]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('makes exactly one upstream fetch for 50 concurrent misses spread over both instances', async () => {
    const path = 'v3/flat/shared.small/1.0.0/shared.small.1.0.0.nupkg';
    upstream.setFault(`/v3-flatcontainer/${path.slice('v3/flat/'.length)}`, { kind: 'throttle', bytesPerSecond: 4 * 1024 * 1024 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => get(`${(i % 2 ? a : b).url}${path}`)));
    upstream.setFault(`/v3-flatcontainer/${path.slice('v3/flat/'.length)}`, undefined);
    expect(upstream.hits(`/v3-flatcontainer/${path.slice('v3/flat/'.length)}`)).toBe(1);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.from(small))).toBe(true);
    }
  });

  it('serves what instance A fetched from instance B with zero upstream requests', async () => {
    const other = 'v3/flat/shared.other/2.0.0/shared.other.2.0.0.nupkg';
    await get(`${a.url}v3/flat/shared.other/index.json`);
    await get(`${a.url}v3/registration/semver2/shared.other/index.json`);
    const fromA = await get(`${a.url}${other}`);
    expect(fromA.status).toBe(200);
    upstream.resetHits();
    const list = await get(`${b.url}v3/flat/shared.other/index.json`);
    const reg = await get(`${b.url}v3/registration/semver2/shared.other/index.json`);
    const fromB = await get(`${b.url}${other}`);
    expect(list.json()).toEqual({ versions: ['2.0.0'] });
    expect(reg.status).toBe(200);
    expect(fromB.body.equals(fromA.body)).toBe(true);
    expect(upstream.requests.map((r) => r.path)).toEqual([]);
  });

  it('shows a push through A on B at once', async () => {
    expect((await get(`${b.url}v3/flat/team.lib/index.json`)).json()).toEqual({ versions: ['1.0.0'] }); // B has it cached
    const hot = await get(`${b.url}v3/flat/team.lib/index.json`); // and keeps the merged answer (a hit)
    expect(hot.headers['x-nuproxy-cache']).toBe('hit');
    expect(hot.json()).toEqual({ versions: ['1.0.0'] });
    const pushed = await pushMultipart(`${a.url}v3/package/`, makeNupkg({ id: 'Team.Lib', version: '1.1.0' }), { 'x-nuget-apikey': KEY });
    expect(pushed.status).toBe(201);
    // one server delivers the invalidation before it answers A's PUBLISH; a cluster passes it on over its bus
    // after answering, so there B sees the push after that hop (milliseconds; seen late once in three runs)
    const seen = async (): Promise<unknown> => (await get(`${b.url}v3/flat/team.lib/index.json`)).json();
    if (backend.name.includes('cluster')) {
      const deadline = Date.now() + 1_000;
      while (JSON.stringify(await seen()) !== '{"versions":["1.0.0","1.1.0"]}' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    expect(await seen()).toEqual({ versions: ['1.0.0', '1.1.0'] });
    expect((await get(`${b.url}v3/flat/team.lib/1.1.0/team.lib.1.1.0.nupkg`)).status).toBe(200);
  });

  if (backend.name === 'redis') it('keeps answering every request while Redis is killed and restarted, and recovers without a restart', { timeout: 60_000 }, async () => {
    const single = redis.single!;
    const urls = [a, b].flatMap((p) => [`${p.url}v3/flat/shared.other/index.json`, `${p.url}v3/flat/shared.small/1.0.0/shared.small.1.0.0.nupkg`, `${p.url}v3/index.json`]);
    const failures: string[] = [];
    let slowest = 0;
    let answered = 0;
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const started = Date.now();
        const r = await get(urls[i % urls.length]!).catch((err: Error) => ({ status: -1, text: err.message }));
        slowest = Math.max(slowest, Date.now() - started);
        answered++;
        if (r.status !== 200) failures.push(`${urls[i % urls.length]}: ${r.status} ${r.text.slice(0, 200)}`);
      }
    })();
    const storeState = async (p: NuproxyProcess): Promise<string> => (await get(`${p.url}health/ready`)).json().metadataStore.state;
    try {
      await waitFor('a round of requests with Redis up', () => answered >= urls.length);
      await single.kill();
      await waitFor('both instances to report Redis down', async () => (await storeState(a)) === 'down' && (await storeState(b)) === 'down');
      // every kind of request keeps being answered while it is down: a full round more, each within the ceiling
      const before = answered;
      await waitFor('a round of requests answered with Redis down', () => answered >= before + urls.length);
      await single.restart();
      // recovery on its own, without a restart of either instance
      await waitFor('both instances to report Redis up again', async () => (await storeState(a)) === 'up' && (await storeState(b)) === 'up');
    } finally {
      stop = true;
      await load;
    }
    expect(failures).toEqual([]);
    // a generous ceiling: every Redis call is bounded by redisTimeout (300 ms here); a call waiting on the dead
    // connection instead would hang the request until Redis came back
    console.info(`[scale-out] slowest request while Redis was killed and restarted: ${slowest} ms (redisTimeout 300 ms)`);
    expect(slowest).toBeLessThan(10 * 300);
    // logged once per change, not per request
    const warns = a.lines.filter((l) => /unavailable/.test(String(l.msg)));
    expect(warns.length).toBeLessThanOrEqual(2);
  });

  if (backend.name === 'redis') describe.skipIf(noNginx !== undefined)('behind nginx as in docker-compose.yml', () => {
    let lbProcess: ChildProcess;
    let lb: string;
    beforeAll(async () => {
      const port = await freePort();
      const conf = join(dir, 'nginx.conf');
      const ports = [a.url, b.url].map((u) => new URL(u).port);
      await writeFile(
        conf,
        `pid ${join(dir, 'nginx.pid')};\nerror_log stderr;\ndaemon off;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${join(dir, 'nginx-body')};\n  proxy_temp_path ${join(dir, 'nginx-proxy')};\n  upstream nuproxy { ${ports.map((p) => `server 127.0.0.1:${p};`).join(' ')} }\n  server {\n    listen 127.0.0.1:${port};\n    client_max_body_size 0;\n    location / {\n      proxy_pass http://nuproxy;\n      proxy_http_version 1.1;\n      proxy_request_buffering off;\n      proxy_buffering off;\n      proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Forwarded-Host $http_host;\n    }\n  }\n}\n`,
      );
      lbProcess = spawn(nginx!, ['-p', dir, '-c', conf], { stdio: 'ignore' });
      lb = `http://127.0.0.1:${port}/`;
      await waitFor('nginx to answer', async () => (await get(`${lb}health/live`).catch(() => ({ status: 0 }))).status === 200, { stepMs: 50 });
    });
    afterAll(() => {
      lbProcess?.kill('SIGTERM');
    });

    it('serves the feed through the load balancer, with URLs of the balancer', async () => {
      const idx = await get(`${lb}v3/index.json`);
      expect(idx.status).toBe(200);
      expect(idx.json().resources.every((r: { '@id': string }) => r['@id'].startsWith(lb))).toBe(true);
      for (let i = 0; i < 4; i++) expect((await get(`${lb}v3/flat/shared.small/1.0.0/shared.small.1.0.0.nupkg`)).body.equals(Buffer.from(small))).toBe(true);
    });
  });
});
