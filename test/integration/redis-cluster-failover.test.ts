// A master of the Redis Cluster is killed while two nuproxy instances on it are under load: no client request
// fails (answers come from memory, disk or the upstream while the cluster is degraded, as with one server
// down), the replica takes over, and both instances find the new master on their own and report "up" again.
// And a master that hangs (SIGSTOP) costs a request about redisTimeout, as a hung single server does; a cluster
// down at start-up is a miss within the timeout, and the link connects when it comes up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';
import { failoverLoad } from '../support/failover-load.js';
import { needTool } from '../support/need.js';
import { redisServerPath } from '../support/redis.js';
import { redisCliPath, startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { freePort } from '../support/net.js';
import { createLogSink } from '../support/log-sink.js';
import { createRedisMetadataStore } from '../../src/cache/redis-metadata-store.js';
import { RedisLink } from '../../src/cache/redis-link.js';
import { clusterSeeds } from '../../src/config/redis-seeds.js';

const HOUR = 3_600_000;

const skip = needTool('redis-server', redisServerPath() !== undefined && redisCliPath() !== undefined, 'the Redis Cluster failover test (redis-server and redis-cli)');

const IDS = Array.from({ length: 24 }, (_, i) => `Fail.Over${i}`);
const WORKERS = 12;
const LOAD_MS = 7_000;
const MAX_REQUESTS = 300_000; // a bound only: LOAD_MS ends the load

describe.skipIf(skip !== undefined)('Redis Cluster: a master killed during load', () => {
  let cluster: TestRedisCluster;
  let upstream: TestUpstream;
  let proxies: TestProxy[] = [];
  const packages = new Map<string, Buffer>();

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const nupkgs = IDS.map((id) => makeNupkg({ id, version: '1.0.0' }));
    IDS.forEach((id, i) => packages.set(id.toLowerCase(), Buffer.from(nupkgs[i]!)));
    upstream = await startTestUpstream({ packages: nupkgs });
    // a short memory copy, so that the load keeps reading and writing the cluster
    const config = { cache: { metadata: cluster.url, redisTimeout: '300ms', localTtl: '100ms' } };
    proxies = [await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config }), await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config })];
  }, 60_000);
  afterAll(async () => {
    for (const p of proxies) await p.stop();
    await upstream?.close();
    await cluster?.stop();
  });

  it('fails no client request, and both instances are "up" again once the replica has taken over', async () => {
    const agent = new Agent({ connections: WORKERS * 2 });
    const traffic = failoverLoad(proxies, IDS, packages, agent, { workers: WORKERS, maxRequests: MAX_REQUESTS });
    const { failures } = traffic;
    try {
      const running = traffic.run(LOAD_MS);
      await new Promise((r) => setTimeout(r, 1_000));
      const masters = await cluster.masterPorts();
      expect(masters).toHaveLength(3);
      const victim = cluster.nodes.find((n) => n.port === masters[0])!;
      await victim.kill();
      const killedAt = traffic.sent;
      const killedTime = Date.now();
      await running;
      expect(failures).toEqual([]);
      // the load really went on through the failover (the replica takes over within about 2 s here)
      expect(traffic.sent - killedAt).toBeGreaterThan(100);
      expect(traffic.lastAt - killedTime).toBeGreaterThan(4_000);
      console.info(`[cluster failover] ${traffic.sent} requests, ${traffic.sent - killedAt} after the kill of master ${victim.port}, 0 failed`);

      await cluster.waitHealthy(20_000);
      expect(await cluster.masterPorts()).not.toContain(victim.port);
      // both instances find the promoted replica themselves (no restart), while requests keep coming
      const ups = traffic.untilUp(20_000);
      expect(await ups).toEqual([true, true]);
      expect(failures).toEqual([]);
      for (const p of proxies) {
        // each saw the node go (once per change, not per request) and the cluster come back
        const said = (re: RegExp): number => p.logs.lines.filter((l) => re.test(String(l.msg))).length;
        expect(said(/metadata store unavailable/)).toBeGreaterThanOrEqual(1);
        expect(said(/metadata store unavailable/)).toBeLessThan(10);
        expect(said(/metadata store available again/)).toBeGreaterThanOrEqual(1);
      }
    } finally {
      traffic.stop();
      await agent.close();
    }
  }, 90_000);

  it('a master that hangs (not dead: connected, never answering) costs a request about redisTimeout at most', async () => {
    const agent = new Agent({ connections: 8 });
    const failures: string[] = [];
    let slowest = 0;
    let answered = 0;
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = w; !stop && i < 100_000; i += 4) {
          const id = IDS[i % IDS.length]!.toLowerCase();
          const path = i % 2 ? `v3/flat/${id}/index.json` : `v3/flat/${id}/1.0.0/${id}.1.0.0.nupkg`;
          const started = Date.now();
          const r = await get(`${proxies[i % 2]!.url}${path}`, {}, 'GET', agent).catch((err: Error) => ({ status: -1, text: err.message }));
          slowest = Math.max(slowest, Date.now() - started);
          answered++;
          if (r.status !== 200) failures.push(`${path}: ${r.status} ${r.text.slice(0, 200)}`);
        }
      }),
    );
    const masters = await cluster.masterPorts();
    const hung = cluster.nodes.find((n) => n.port === masters[0])!;
    try {
      await new Promise((r) => setTimeout(r, 300));
      hung.pause(); // shorter than the cluster's node timeout (1 s): no failover, the node simply does not answer
      const before = answered;
      await new Promise((r) => setTimeout(r, 800));
      hung.resume();
      expect(answered - before).toBeGreaterThan(20); // requests kept being answered while it hung
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      hung.resume();
      stop = true;
      await load;
      await agent.close();
    }
    expect(failures).toEqual([]);
    console.info(`[cluster hang] ${answered} requests, slowest ${slowest} ms while a master hung 800 ms (redisTimeout 300 ms)`);
    expect(slowest).toBeLessThan(10 * 300);
  }, 60_000);
});

describe.skipIf(skip !== undefined)('Redis Cluster down at start-up', () => {
  it('answers misses within the timeout while no seed answers, then connects on its own when the cluster comes up', async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const sink = createLogSink();
    const store = createRedisMetadataStore(clusterSeeds(`redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`)!, 300, sink.logger);
    let cluster: TestRedisCluster | undefined;
    try {
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        expect(await store.get('early')).toBeUndefined();
        await store.set('early', { body: 'x', fetchedAt: 1 }, HOUR);
        expect(Date.now() - t0).toBeLessThan(2 * 300 + 500);
      }
      expect(store.health().state).toBe('down');
      cluster = await startRedisCluster({ ports });
      const deadline = Date.now() + 15_000;
      let stored = false;
      while (!stored && Date.now() < deadline) {
        await store.set('later', { body: 'y', fetchedAt: 2 }, HOUR);
        stored = (await store.get('later'))?.body === 'y';
        if (!stored) await new Promise((r) => setTimeout(r, 100));
      }
      expect(stored).toBe(true);
      expect(store.health()).toEqual({ state: 'up' });
    } finally {
      await store.close();
      await cluster?.stop();
    }
  }, 60_000);

  it('never puts the password of the seed list in a log line or the health detail', async () => {
    const ports = await Promise.all([freePort(), freePort()]);
    const sink = createLogSink();
    const secret = 'sEcr3t-Cluster-Pass';
    const store = createRedisMetadataStore(clusterSeeds(`redis+cluster://nuproxy:${secret}@127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`)!, 200, sink.logger);
    try {
      for (let i = 0; i < 5; i++) await store.get('k');
      await new Promise((r) => setTimeout(r, 500)); // a reconnect attempt or two
      expect(store.health().state).toBe('down');
      expect(JSON.stringify(store.health())).not.toContain(secret);
      expect(sink.lines.length).toBeGreaterThan(0);
      expect(JSON.stringify(sink.lines)).not.toContain(secret);
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(skip !== undefined)('Redis Cluster: invalidation after the failover of the node that carries it', () => {
  let cluster: TestRedisCluster;
  const links: RedisLink[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    for (const l of links) await l.close();
    await cluster?.stop();
  });

  it('a message published through one link reaches the other again once a master has been killed and replaced', async () => {
    // kept as a guard: sharded pub/sub (SSUBSCRIBE, which would deliver before the publisher's reply) was tried
    // and its subscription is lost for good when the master of the channel's slot fails over (@redis/client
    // 5.12); so the master of that slot is the one killed here, and plain pub/sub must keep delivering
    const channel = 'nuproxy:metadata-changed';
    const open = (): RedisLink => {
      const l = new RedisLink(clusterSeeds(cluster.url)!, 300, createLogSink().logger);
      l.connect();
      links.push(l);
      return l;
    };
    const [a, b] = [open(), open()];
    const got: string[] = [];
    await b.subscribe(channel, (m) => got.push(m));
    const delivered = async (message: string, timeoutMs: number): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        await a.publish(channel, message);
        await new Promise((r) => setTimeout(r, 100));
        if (got.includes(message)) return true;
      }
      return false;
    };
    expect(await delivered('before', 10_000)).toBe(true);

    const port = cluster.nodes[0]!.port;
    const slot = Number((await cluster.cli(port, ['cluster', 'keyslot', channel])).trim());
    const nodes = (await cluster.cli(port, ['cluster', 'nodes'])).split('\n');
    const owner = nodes.find((l) => / master/.test(` ${l.split(' ')[2]?.replace(/,/g, ' ')}`) && l.split(' ').slice(8).some((r) => {
      const [lo, hi] = r.split('-').map(Number);
      return lo !== undefined && slot >= lo && slot <= (hi ?? lo);
    }));
    const ownerPort = Number(/:(\d+)@/.exec(owner ?? '')?.[1]);
    expect(cluster.nodes.map((n) => n.port)).toContain(ownerPort);
    await cluster.nodes.find((n) => n.port === ownerPort)!.kill();
    await cluster.waitHealthy(30_000);
    expect(await delivered('after', 20_000)).toBe(true);
  }, 90_000);
});
