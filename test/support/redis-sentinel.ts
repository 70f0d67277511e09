// A real, throw-away Redis run by Sentinel for tests: one master and two replicas (redis-server --replicaof),
// watched by three sentinels (redis-server <conf> --sentinel, quorum 2, a master unreachable for 1 s is down),
// each on its own free loopback port, in a temp dir, no persistence. start waits until every sentinel knows
// the master, both replicas and the two other sentinels; stop() kills every process and removes the dir.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { redisServerPath } from './redis.js';
import { redisCliPath } from './redis-cluster.js';
import { freePort } from './net.js';

const run = promisify(execFile);

export const MASTER_NAME = 'nuproxy-test';
const DOWN_AFTER_MS = 1000; // how long the master is unreachable before the sentinels call it down
const FAILOVER_TIMEOUT_MS = 3000;

export interface SentinelNode {
  port: number;
  /** SIGKILL, waiting for the process to exit (a crash). */
  kill(): Promise<void>;
  alive(): boolean;
}

export interface TestRedisSentinel {
  /** `cache.metadata` as configured: redis+sentinel://[auth@]127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<name>[?sentinelPassword=…] */
  url: string;
  /** The three data nodes (master first, as started) and the three sentinels. */
  nodes: SentinelNode[];
  sentinels: SentinelNode[];
  /** The port of the master the live sentinels agree on now. */
  masterPort(): Promise<number>;
  /** Waits until every live sentinel names a live master other than `oldPort` and that node says role:master. */
  waitFailover(oldPort: number, timeoutMs?: number): Promise<number>;
  /** Runs redis-cli against a data node (with its password, when there is one). */
  cli(port: number, args: string[]): Promise<string>;
  stop(): Promise<void>;
}

// Processes still running when the test process exits (a crashed worker, a forgotten stop) are killed with it.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis sentinel: ${what} not within ${timeoutMs} ms`);
}

function exitOf(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * Starts 3 data nodes and 3 sentinels. `password` protects the data nodes (the URL carries it as
 * user:password@, user "default"); `sentinelPassword` the sentinels (the URL's ?sentinelPassword=).
 * `sentinelPorts`: the sentinels' ports (3), for a test that points nuproxy at them before they run.
 */
export async function startRedisSentinel(opts: { password?: string; sentinelPassword?: string; sentinelPorts?: number[] } = {}): Promise<TestRedisSentinel> {
  const server = redisServerPath();
  const cliBin = redisCliPath();
  if (!server || !cliBin) throw new Error('redis-server and redis-cli must be on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'nuproxy-redis-sentinel-'));
  const children: ChildProcess[] = [];
  const spawnNode = (args: string[]): ChildProcess => {
    const child = spawn(server, args, { stdio: 'ignore' });
    live.add(child);
    child.once('exit', () => live.delete(child));
    children.push(child);
    return child;
  };
  const auth = (password: string | undefined): string[] => (password ? ['--no-auth-warning', '-a', password] : []);
  const cli = async (port: number, args: string[], password = opts.password): Promise<string> =>
    (await run(cliBin, ['-h', '127.0.0.1', '-p', String(port), ...auth(password), ...args], { timeout: 20_000 })).stdout;
  const sentinelCli = (port: number, args: string[]): Promise<string> => cli(port, args, opts.sentinelPassword);
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => exitOf(c, 'SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const dataPorts = [await freePort(), await freePort(), await freePort()];
    const dataChildren = dataPorts.map((port, i) => {
      const nodeDir = join(dir, `node-${port}`);
      mkdirSync(nodeDir);
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', nodeDir,
        '--logfile', join(nodeDir, 'log'), '--repl-diskless-sync-delay', '0'];
      if (opts.password) args.push('--requirepass', opts.password, '--masterauth', opts.password);
      if (i > 0) args.push('--replicaof', '127.0.0.1', String(dataPorts[0]));
      return spawnNode(args);
    });
    for (const port of dataPorts) await waitFor(`node ${port} answering PING`, 10_000, async () => (await cli(port, ['ping'])).trim() === 'PONG');
    await waitFor('both replicas in sync', 20_000, async () => {
      for (const port of dataPorts.slice(1)) if (!(await cli(port, ['info', 'replication'])).includes('master_link_status:up')) return false;
      return true;
    });

    const sentinelPorts = opts.sentinelPorts ?? [await freePort(), await freePort(), await freePort()];
    const sentinelChildren = sentinelPorts.map((port) => {
      const sDir = join(dir, `sentinel-${port}`);
      mkdirSync(sDir);
      const conf = join(sDir, 'sentinel.conf'); // sentinels rewrite their config: one writable file each
      const lines = [
        `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${sDir}`, `logfile ${join(sDir, 'log')}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${dataPorts[0]} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${MASTER_NAME} 2`,
      ];
      if (opts.password) lines.push(`sentinel auth-pass ${MASTER_NAME} ${opts.password}`);
      // sentinels talk to each other with the password they themselves require
      if (opts.sentinelPassword) lines.push(`requirepass ${opts.sentinelPassword}`, `sentinel sentinel-pass ${opts.sentinelPassword}`);
      writeFileSync(conf, lines.join('\n') + '\n');
      return spawnNode([conf, '--sentinel']);
    });
    await waitFor('every sentinel knowing the master, 2 replicas and 2 other sentinels', 30_000, async () => {
      for (const port of sentinelPorts) {
        const fields = (await sentinelCli(port, ['sentinel', 'master', MASTER_NAME])).split('\n').map((l) => l.trim());
        const field = (name: string): string | undefined => fields[fields.indexOf(name) + 1];
        if (field('num-slaves') !== '2' || field('num-other-sentinels') !== '2' || field('flags') !== 'master') return false;
      }
      return true;
    });

    const node = (port: number, child: ChildProcess): SentinelNode => ({
      port,
      kill: () => exitOf(child, 'SIGKILL'),
      alive: () => child.exitCode === null && child.signalCode === null,
    });
    const nodes = dataPorts.map((p, i) => node(p, dataChildren[i]!));
    const sentinels = sentinelPorts.map((p, i) => node(p, sentinelChildren[i]!));
    const masterOf = async (port: number): Promise<number> => Number((await sentinelCli(port, ['sentinel', 'get-master-addr-by-name', MASTER_NAME])).trim().split('\n')[1]);
    const userinfo = opts.password ? `default:${encodeURIComponent(opts.password)}@` : '';
    const query = opts.sentinelPassword ? `?sentinelPassword=${encodeURIComponent(opts.sentinelPassword)}` : '';
    return {
      url: `redis+sentinel://${userinfo}${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}${query}`,
      nodes,
      sentinels,
      masterPort: () => masterOf(sentinels.find((s) => s.alive())!.port),
      async waitFailover(oldPort, timeoutMs = 30_000) {
        let master = 0;
        await waitFor(`a replica promoted in place of ${oldPort}`, timeoutMs, async () => {
          const named = new Set<number>();
          for (const s of sentinels.filter((x) => x.alive())) named.add(await masterOf(s.port));
          if (named.size !== 1) return false;
          master = [...named][0]!;
          if (master === oldPort || !nodes.find((n) => n.port === master)?.alive()) return false;
          return (await cli(master, ['info', 'replication'])).includes('role:master');
        });
        return master;
      },
      cli,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
