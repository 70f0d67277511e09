// Child processes of the bench: each in its own process group, tracked so that a timeout, an exception or
// Ctrl-C kills every one of them (and their children: nginx workers, dotnet's build nodes).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Kills every live child at once (SIGKILL, whole process groups). Synchronous: safe in 'exit' handlers. */
export function killAllNow(): void {
  for (const c of live) killGroup(c, 'SIGKILL');
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Polite stop (signal to the group leader), then SIGKILL to the whole group after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (exited(child)) return;
  try {
    child.kill(signal);
  } catch {
    // gone
  }
  if (!(await waitExit(child, graceMs))) {
    killGroup(child, 'SIGKILL');
    await waitExit(child, 2000);
  }
  // stragglers in the group (nginx workers, build nodes)
  killGroup(child, 'SIGKILL');
}

/**
 * Everything one scenario started: children, temp dirs, other cleanups. `close()` undoes it all (also after a
 * timeout, while the scenario's own code may still be running and failing).
 */
export class Scope {
  private readonly children = new Set<ChildProcess>();
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private closed = false;
  readonly controller = new AbortController();

  constructor(readonly name: string, private readonly keepTemp = false) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Throws when the scenario was stopped (timeout, Ctrl-C): call between steps. */
  check(): void {
    if (this.signal.aborted) throw new Error(`${this.name}: stopped (${String(this.signal.reason ?? 'aborted')})`);
  }

  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    this.check();
    const child = spawn(cmd, args, { ...opts, detached: true });
    this.children.add(child);
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      this.children.delete(child);
    });
    child.once('error', () => {
      live.delete(child);
      this.children.delete(child);
    });
    return child;
  }

  /** A child that was spawned elsewhere (e.g. by test/support) but must die with this scope. */
  adopt(child: ChildProcess): void {
    this.children.add(child);
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      this.children.delete(child);
    });
  }

  onClose(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `nuproxy-bench-${prefix}-`));
    if (!this.keepTemp) this.onClose(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async close(reason?: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.signal.aborted) this.controller.abort(reason ?? 'closed');
    // cleanups first (they stop servers politely), then whatever is still alive is killed
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // best effort
      }
    }
    await Promise.all([...this.children].map((c) => stopChild(c, 'SIGTERM', 3000)));
  }
}


/** Collects a child's output (bounded) for error messages. */
export function capture(child: ChildProcess, max = 64 * 1024): () => string {
  let out = '';
  const keep = (d: Buffer | string): void => {
    if (out.length < max) out += d.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs a command to completion (bounded), with its output. */
export function run(
  scope: Scope,
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const child = scope.spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stderr += `\n[bench] ${cmd} killed after ${opts.timeoutMs} ms\n`;
      void stopChild(child, 'SIGKILL', 0);
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      // killed because the scenario was stopped: whatever it printed is not a result
      if (scope.signal.aborted) return reject(new Error(`${cmd}: stopped with its scenario`));
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms: performance.now() - started });
    });
  });
}

export { freePort } from '../../test/support/net.js';
