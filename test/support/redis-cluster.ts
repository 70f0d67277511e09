// A real, throw-away Redis Cluster for tests: 3 masters and 3 replicas (one each, so a killed master fails
// over), each a redis-server in cluster mode on its own free loopback port (and its own free bus port), in a
// temp dir, no persistence; made one cluster with `redis-cli --cluster create`. stop() kills every node and
// removes the dirs.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, createCluster, createSentinel } from '@redis/client';
import { freePort } from './net.js';
import { redisServerPath, startRedis, type TestRedis } from './redis.js';
import { needTool } from './need.js';
import { clusterSeeds, sentinelTarget, type RedisTarget } from '../../src/config/redis-seeds.js';
import { startRedisSentinel, type TestRedisSentinel } from './redis-sentinel.js';

const run = promisify(execFile);

/** Absolute path of `redis-cli` on PATH (Debian's redis-tools, a dependency of redis-server), or undefined. */
export function redisCliPath(): string | undefined {
  try {
    return execFileSync('which', ['redis-cli'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0] || undefined;
  } catch {
    return undefined;
  }
}

export interface ClusterNode {
  port: number;
  /** SIGKILL, waiting for the process to exit (a crash). */
  kill(): Promise<void>;
  /** SIGSTOP: the node hangs (connections stay open, nothing is answered) until resume() (SIGCONT). */
  pause(): void;
  resume(): void;
}

export interface TestRedisCluster {
  /** The seed list as `cache.metadata` takes it: redis+cluster://127.0.0.1:p1,127.0.0.1:p2,... */
  url: string;
  nodes: ClusterNode[];
  /** The ports of the nodes that are masters now (asked of a live node). */
  masterPorts(): Promise<number[]>;
  /** Waits until every slot is served by a live master again (after a kill: the replica took over). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Runs redis-cli against one node (`-c`: follows redirections). */
  cli(port: number, args: string[]): Promise<string>;
  stop(): Promise<void>;
}

// Nodes still running when the test process exits (a crashed worker, a forgotten stop) are killed with it.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

const NODE_TIMEOUT_MS = 1000; // how long a master is unreachable before its replica takes over

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-4000);
  } catch {
    return '(no log)';
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis cluster: ${what} not within ${timeoutMs} ms`);
}

/** Starts 6 nodes (3 masters + 3 replicas; on `ports` when given) and waits for cluster_state:ok on every node. */
export async function startRedisCluster(opts: { ports?: number[] } = {}): Promise<TestRedisCluster> {
  const server = redisServerPath();
  const cliBin = redisCliPath();
  if (!server || !cliBin) throw new Error('redis-server and redis-cli must be on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'nuproxy-redis-cluster-'));
  const children: ChildProcess[] = []; // the node of each port, in order
  const spawned: ChildProcess[] = []; // every node started, also those started again on other ports
  const cli = async (port: number, args: string[]): Promise<string> =>
    (await run(cliBin, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 20_000 })).stdout;
  const stop = async (): Promise<void> => {
    for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGCONT');
    await Promise.all(spawned.map((c) => exitOf(c, 'SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    // a port free a moment ago can be taken before the node binds it (an outgoing connection of a test running
    // beside this one gets it as its local port): the node exits at once, and is started again on other ports
    const spawnNode = async (i: number): Promise<{ port: number; child: ChildProcess }> => {
      const port = opts.ports?.[i] ?? (await freePort());
      const bus = await freePort();
      const nodeDir = join(dir, String(port));
      execFileSync('mkdir', ['-p', nodeDir]);
      const args = ['--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--dir', nodeDir, '--logfile', join(nodeDir, 'log'),
        // replicas in sync at once (not after the default 5 s delay): a replica that never synced cannot take over
        '--repl-diskless-sync-delay', '0'];
      const child = spawn(server, args, { stdio: 'ignore' });
      live.add(child);
      spawned.push(child);
      child.once('exit', () => live.delete(child));
      return { port, child };
    };
    const exitedEarly = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;
    for (let i = 0; i < 6; i++) {
      let node = await spawnNode(i);
      for (let attempt = 1; ; attempt++) {
        const { port, child } = node;
        await waitFor(`node ${port} answering PING`, 10_000, async () => {
          if (exitedEarly(child)) return true; // told apart below
          return (await cli(port, ['ping'])).trim() === 'PONG';
        });
        if (!exitedEarly(child)) break;
        const log = readLog(join(dir, String(port), 'log'));
        if (opts.ports || attempt >= 4) throw new Error(`redis cluster: node on port ${port} exited before answering PING:\n${log}`);
        node = await spawnNode(i);
      }
      ports.push(node.port);
      children.push(node.child);
    }
    await cli(ports[0]!, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes']);
    const healthy = async (timeoutMs = 20_000): Promise<void> => {
      const alive = ports.filter((_, i) => children[i]!.exitCode === null && children[i]!.signalCode === null);
      await waitFor('cluster_state:ok on every live node', timeoutMs, async () => {
        for (const p of alive) if (!(await cli(p, ['cluster', 'info'])).includes('cluster_state:ok')) return false;
        return true;
      });
    };
    await healthy();
    // each replica has its master's data: only then can a killed master fail over
    await waitFor('every replica in sync with its master', 20_000, async () => {
      let replicas = 0;
      for (const p of ports) {
        const info = await cli(p, ['info', 'replication']);
        if (!info.includes('role:slave')) continue;
        if (!info.includes('master_link_status:up')) return false;
        replicas++;
      }
      return replicas === 3;
    });
    const nodes = ports.map((port, i) => ({
      port,
      kill: () => exitOf(children[i]!, 'SIGKILL'),
      pause: () => void children[i]!.kill('SIGSTOP'),
      resume: () => void children[i]!.kill('SIGCONT'),
    }));
    return {
      url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      nodes,
      async masterPorts() {
        const alive = ports.filter((_, i) => children[i]!.exitCode === null && children[i]!.signalCode === null);
        const out = await cli(alive[0]!, ['cluster', 'nodes']);
        return out
          .split('\n')
          .filter((l) => / master /.test(` ${l.split(' ')[2]?.replace(/,/g, ' ')} `) && !/fail/.test(l.split(' ')[2] ?? ''))
          .map((l) => Number(/:(\d+)@/.exec(l)?.[1]));
      },
      waitHealthy: healthy,
      cli,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function exitOf(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** A shared tier to run a test against: one redis-server, a Redis Cluster, or a Redis run by Sentinel. */
export interface SharedRedis {
  /** `cache.metadata` as configured: redis://…, redis+cluster://… or redis+sentinel://… */
  url: string;
  /** What RedisLink takes: the URL, the cluster's seeds, or the Sentinel target. */
  target: RedisTarget;
  /** A client of its own (single or cluster), for a test that plants or reads keys as another party would. */
  client(): Promise<RawRedis>;
  /** The one server (kill, restart, pause), in single-server mode. */
  single?: TestRedis;
  /** The master, its replicas and the sentinels, in Sentinel mode. */
  sentinel?: TestRedisSentinel;
  stop(): Promise<void>;
}

export interface RawRedis {
  hSet(key: string, fields: Record<string, string | Buffer>): Promise<unknown>;
  close(): Promise<void>;
}

async function rawClient(target: RedisTarget): Promise<RawRedis> {
  if (typeof target !== 'string' && 'kind' in target) {
    const s = createSentinel({ name: target.masterName, sentinelRootNodes: target.sentinels, nodeClientOptions: target.password ? { password: target.password } : {} });
    s.on('error', () => undefined);
    await s.connect();
    return { hSet: (key, fields) => s.hSet(key, fields), close: () => s.close() };
  }
  const c = typeof target === 'string' ? createClient({ url: target }) : createCluster({ rootNodes: target.map((url) => ({ url })) });
  await c.connect();
  return { hSet: (key, fields) => c.hSet(key, fields), close: () => c.close() };
}

export interface SharedRedisBackend {
  name: 'redis' | 'redis cluster' | 'redis sentinel';
  /** The needTool reason when the tools are missing (a loud skip; a failure under CI=true). */
  skip: string | undefined;
  start(): Promise<SharedRedis>;
}

/**
 * The three shapes of the shared tier, so that a suite runs on each: `for (const b of sharedRedisBackends(what))
 * describe.skipIf(b.skip)(b.name, ...)`.
 */
export function sharedRedisBackends(what: string): SharedRedisBackend[] {
  const server = redisServerPath() !== undefined;
  return [
    {
      name: 'redis',
      skip: needTool('redis-server', server, what),
      start: async () => {
        const r = await startRedis();
        return { url: r.url, target: r.url, client: () => rawClient(r.url), single: r, stop: () => r.stop() };
      },
    },
    {
      name: 'redis cluster',
      skip: needTool('redis-server', server, `${what} on a Redis Cluster`) ?? needTool('redis-cli', redisCliPath() !== undefined, `${what} on a Redis Cluster`),
      start: async () => {
        const c = await startRedisCluster();
        const target = clusterSeeds(c.url)!;
        return { url: c.url, target, client: () => rawClient(target), stop: () => c.stop() };
      },
    },
    {
      name: 'redis sentinel',
      skip: needTool('redis-server', server, `${what} on Redis Sentinel`) ?? needTool('redis-cli', redisCliPath() !== undefined, `${what} on Redis Sentinel`),
      start: async () => {
        const s = await startRedisSentinel();
        const target = sentinelTarget(s.url)!;
        return { url: s.url, target, client: () => rawClient(target), sentinel: s, stop: () => s.stop() };
      },
    },
  ];
}
