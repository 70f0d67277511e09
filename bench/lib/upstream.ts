// Starts bench/upstream-server.js (the test upstream in its own process) and talks to it over IPC.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Fault } from '../../test/support/upstream.js';
import { capture, type Scope } from './proc.js';

export interface UpstreamProc {
  origin: string;
  serviceIndexUrl: string;
  child: ChildProcess;
  hits(match: RegExp): Promise<number>;
  resetHits(): Promise<void>;
  setFault(match: RegExp, fault: Fault | undefined, times?: number): Promise<void>;
  requests(): Promise<string[]>;
  close(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('../upstream-server.js', import.meta.url));

export async function startUpstream(scope: Scope, packageDirs: string[], timeoutMs = 120_000): Promise<UpstreamProc> {
  const child = scope.spawn(process.execPath, [SERVER, JSON.stringify({ packageDirs })], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output = capture(child);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const ready = new Promise<{ origin: string; serviceIndexUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`test upstream did not start within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    child.on('message', (raw) => {
      const m = raw as { type?: string; id?: number; result?: unknown; error?: string; origin?: string; serviceIndexUrl?: string };
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve({ origin: m.origin!, serviceIndexUrl: m.serviceIndexUrl! });
        return;
      }
      const p = m.id !== undefined ? pending.get(m.id) : undefined;
      if (!p) return;
      pending.delete(m.id!);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const err = new Error(`test upstream exited (${code ?? signal}):\n${output()}`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
  });
  const { origin, serviceIndexUrl } = await ready;
  const call = <T>(msg: Record<string, unknown>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (!child.connected) return reject(new Error('test upstream is gone'));
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...msg, id });
    });
  const matcher = (re: RegExp): { source: string; flags: string } => ({ source: re.source, flags: re.flags });
  const up: UpstreamProc = {
    origin,
    serviceIndexUrl,
    child,
    hits: (match) => call<number>({ op: 'hits', match: matcher(match) }),
    resetHits: async () => void (await call({ op: 'resetHits' })),
    setFault: async (match, fault, times) => void (await call({ op: 'setFault', match: matcher(match), fault: fault ?? null, ...(times !== undefined ? { times } : {}) })),
    requests: () => call<string[]>({ op: 'requests' }),
    close: async () => {
      if (child.exitCode !== null || !child.connected) return;
      await Promise.race([call({ op: 'close' }).catch(() => undefined), new Promise((r) => setTimeout(r, 3000))]);
    },
  };
  scope.onClose(() => up.close());
  return up;
}
