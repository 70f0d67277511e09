// The master of a Redis run by Sentinel is killed (SIGKILL) while two nuproxy instances on it are under load:
// no client request fails (answers come from memory, disk or the upstream while there is no master, as with
// one server down), the sentinels promote a replica, and both instances (and a link made before the kill) move
// to it on their own: their writes land on the new master, and invalidation messages still arrive.
// And a password of the Sentinel URL (the nodes' or the sentinels') never reaches a log line or the health.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { failoverLoad } from '../support/failover-load.js';
import { needTool } from '../support/need.js';
import { redisServerPath } from '../support/redis.js';
import { redisCliPath } from '../support/redis-cluster.js';
import { startRedisSentinel, type TestRedisSentinel } from '../support/redis-sentinel.js';
import { freePort } from '../support/net.js';
import { createLogSink } from '../support/log-sink.js';
import { RedisLink } from '../../src/cache/redis-link.js';
import { createRedisMetadataStore } from '../../src/cache/redis-metadata-store.js';
import { sentinelTarget } from '../../src/config/redis-seeds.js';

const skip = needTool('redis-server', redisServerPath() !== undefined && redisCliPath() !== undefined, 'the Redis Sentinel failover test (redis-server and redis-cli)');

const IDS = Array.from({ length: 24 }, (_, i) => `Sentinel.Fail${i}`);
const LATE_ID = 'Sentinel.Late';
const WORKERS = 12;
const LOAD_MS = 8_000;
const MAX_REQUESTS = 300_000; // a bound only: LOAD_MS ends the load

describe.skipIf(skip !== undefined)('Redis Sentinel: the master killed during load', () => {
  let rig: TestRedisSentinel;
  let upstream: TestUpstream;
  let proxies: TestProxy[] = [];
  let link: RedisLink;
  const heard: string[] = [];
  const packages = new Map<string, Buffer>();
  const sink = createLogSink();

  beforeAll(async () => {
    // with passwords on the nodes and on the sentinels: the URL's two kinds of auth are used for real
    rig = await startRedisSentinel({ password: 'node-Pass-1', sentinelPassword: 'sentinel-Pass-2' });
    const nupkgs = [...IDS, LATE_ID].map((id) => makeNupkg({ id, version: '1.0.0' }));
    [...IDS, LATE_ID].forEach((id, i) => packages.set(id.toLowerCase(), Buffer.from(nupkgs[i]!)));
    upstream = await startTestUpstream({ packages: nupkgs });
    // a short memory copy, so that the load keeps reading and writing Redis
    const config = { cache: { metadata: rig.url, redisTimeout: '300ms', localTtl: '100ms' } };
    proxies = [await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config }), await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config })];
    link = new RedisLink(sentinelTarget(rig.url)!, 300, sink.logger);
    link.connect();
    await link.subscribe('nuproxy:test', (m) => heard.push(m));
  }, 90_000);
  afterAll(async () => {
    for (const p of proxies) await p.stop();
    await link?.close();
    await upstream?.close();
    await rig?.stop();
  });

  it('fails no client request; after the promotion every instance writes to the new master', async () => {
    const agent = new Agent({ connections: WORKERS * 2 });
    const traffic = failoverLoad(proxies, IDS, packages, agent, { workers: WORKERS, maxRequests: MAX_REQUESTS });
    const { failures } = traffic;
    try {
      // the link works before the kill: a write on the master, a message heard
      const oldMaster = await rig.masterPort();
      expect(oldMaster).toBe(rig.nodes[0]!.port);
      expect(await link.bounded(() => link.client.set('nuproxy:test:before', 'b'), null)).toBe('OK');
      expect((await rig.cli(oldMaster, ['get', 'nuproxy:test:before'])).trim()).toBe('b');
      await link.publish('nuproxy:test', 'before');
      await until(() => heard.includes('before'), 5_000);

      const running = traffic.run(LOAD_MS);
      await new Promise((r) => setTimeout(r, 1_000));
      await rig.nodes[0]!.kill();
      const killedAt = traffic.sent;
      const killedTime = Date.now();
      await running;
      expect(failures).toEqual([]);
      // the load really went on through the failover (down after 1 s, then the sentinels' election)
      expect(traffic.sent - killedAt).toBeGreaterThan(100);
      expect(traffic.lastAt - killedTime).toBeGreaterThan(5_000);

      const newMaster = await rig.waitFailover(oldMaster);
      console.info(`[sentinel failover] ${traffic.sent} requests, ${traffic.sent - killedAt} after the kill of master ${oldMaster}, 0 failed; ${newMaster} promoted`);
      // both instances find the promoted replica themselves (no restart), while requests keep coming
      const ups = traffic.untilUp(20_000);
      expect(await ups).toEqual([true, true]);
      expect(failures).toEqual([]);

      // the link made before the kill writes to the new master, and still hears messages (re-subscribed there)
      let answer: string | null = null;
      await until(async () => (answer = await link.bounded(() => link.client.set('nuproxy:test:after', 'a'), null)) === 'OK', 15_000);
      expect(answer).toBe('OK');
      expect((await rig.cli(newMaster, ['get', 'nuproxy:test:after'])).trim()).toBe('a');
      await until(async () => {
        await link.publish('nuproxy:test', 'after');
        return heard.includes('after');
      }, 15_000);

      // each instance writes what it fetches after the failover to the new master
      const late = LATE_ID.toLowerCase();
      for (const p of proxies) {
        const r = await get(`${p.url}v3/flat/${late}/index.json`, {}, 'GET', agent);
        expect(r.status).toBe(200);
      }
      await until(async () => (await rig.cli(newMaster, ['--scan', '--pattern', `*${late}*`])).trim() !== '', 10_000);
      for (const p of proxies) {
        const said = (re: RegExp): number => p.logs.lines.filter((l) => re.test(String(l.msg))).length;
        expect(said(/metadata store unavailable/)).toBeGreaterThanOrEqual(1);
        expect(said(/metadata store unavailable/)).toBeLessThan(10);
        expect(said(/metadata store available again/)).toBeGreaterThanOrEqual(1);
        // neither password in any line it logged
        expect(JSON.stringify(p.logs.lines)).not.toMatch(/node-Pass-1|sentinel-Pass-2/);
      }
      expect(JSON.stringify(sink.lines)).not.toMatch(/node-Pass-1|sentinel-Pass-2/);
    } finally {
      traffic.stop();
      await agent.close();
    }
  }, 120_000);
});

describe.skipIf(skip !== undefined)('Redis Sentinel unreachable', () => {
  it('answers misses within the timeout while no sentinel answers, then connects on its own when they come up', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const sink = createLogSink();
    const url = `redis+sentinel://${ports.map((p) => `127.0.0.1:${p}`).join(',')}/nuproxy-test`;
    const store = createRedisMetadataStore(sentinelTarget(url)!, 300, sink.logger);
    let rig: TestRedisSentinel | undefined;
    try {
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        expect(await store.get('early')).toBeUndefined();
        await store.set('early', { body: 'x', fetchedAt: 1 }, 60_000);
        expect(Date.now() - t0).toBeLessThan(2 * 300 + 500);
      }
      expect(store.health().state).toBe('down');
      rig = await startRedisSentinel({ sentinelPorts: ports });
      let stored = false;
      await until(async () => {
        await store.set('later', { body: 'y', fetchedAt: 2 }, 60_000);
        return (stored = (await store.get('later'))?.body === 'y');
      }, 30_000);
      expect(stored).toBe(true);
      expect(store.health()).toEqual({ state: 'up' });
    } finally {
      await store.close();
      await rig?.stop();
    }
  }, 90_000);

  it('answers misses within the timeout and never puts either password in a log line or the health detail', async () => {
    const ports = await Promise.all([freePort(), freePort()]);
    const sink = createLogSink();
    const url = `redis+sentinel://nuproxy:sEcr3t-Node-Pass@127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}/m?sentinelPassword=sEcr3t-Sentinel-Pass`;
    const store = createRedisMetadataStore(sentinelTarget(url)!, 200, sink.logger);
    try {
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        expect(await store.get('k')).toBeUndefined();
        await store.set('k', { body: 'x', fetchedAt: 1 }, 60_000);
        expect(Date.now() - t0).toBeLessThan(2 * 200 + 500);
      }
      await new Promise((r) => setTimeout(r, 500)); // a reconnect attempt or two
      expect(store.health().state).toBe('down');
      expect(JSON.stringify(store.health())).not.toMatch(/sEcr3t/);
      expect(sink.lines.length).toBeGreaterThan(0);
      expect(JSON.stringify(sink.lines)).not.toMatch(/sEcr3t/);
    } finally {
      await store.close();
    }
  }, 30_000);
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
