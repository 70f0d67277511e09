// A real, throw-away redis-server for tests: its own free port, no persistence, killed on stop.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './net.js';

/** Absolute path of `redis-server` on PATH, or undefined when it is not installed. */
export function redisServerPath(): string | undefined {
  try {
    const out = execFileSync('which', ['redis-server'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return out.split('\n')[0] || undefined;
  } catch {
    return undefined;
  }
}

export interface TestRedis {
  url: string;
  port: number;
  /** SIGTERM, waiting for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL, waiting for the process to exit (simulates a crash). */
  kill(): Promise<void>;
  /** Starts a fresh server on the same port (after stop/kill, or stops the running one first). */
  restart(): Promise<void>;
  /**
   * SIGSTOP: the server hangs (not dead): its port accepts connections and nothing is ever answered, like a
   * Redis stuck in a long command or a swapping host. `resume()` (SIGCONT) lets it go on where it stopped.
   */
  pause(): void;
  resume(): void;
}

const START_TIMEOUT_MS = 10_000;

// Servers still running when the test process exits (a crashed worker, a forgotten stop) are killed with it.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}


/** One raw PING over TCP; true when the server answers +PONG. */
function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    let answered = '';
    let settled = false;
    const sock = createConnection({ host: '127.0.0.1', port });
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => finish(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      answered += d.toString('latin1');
      if (answered.includes('\r\n')) finish(answered.startsWith('+PONG'));
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}

function waitExit(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** redis-server ended before it answered PING (on a port it could not bind, say). */
class ExitedBeforePing extends Error {}

async function spawnOn(bin: string, port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  const keep = (d: Buffer): void => {
    if (output.length < 8192) output += d.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`redis-server failed to start: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ExitedBeforePing(`redis-server exited (${child.exitCode ?? child.signalCode}) before answering PING:\n${output}`);
    }
    if (await ping(port)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  await waitExit(child, 'SIGKILL');
  throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms:\n${output}`);
}

/** Starts redis-server on a free port and waits until it answers PING (at most 10 s). */
export async function startRedis(): Promise<TestRedis> {
  const bin = redisServerPath();
  if (!bin) throw new Error('redis-server is not on PATH');
  // a port free a moment ago can be taken before redis-server binds it (an outgoing connection of a test running
  // beside this one gets it as its local port): redis-server exits at once, and is started again on another port
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnOn(bin, port);
    } catch (err) {
      if (attempt >= 4 || !(err instanceof ExitedBeforePing)) throw err;
    }
  }
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    if (c) await waitExit(c, signal);
  };
  const signal = (s: NodeJS.Signals): void => {
    if (!child) throw new Error('redis-server is not running');
    child.kill(s);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGTERM');
      child = await spawnOn(bin, port);
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}
