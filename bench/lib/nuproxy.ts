// nuproxy as a user runs it: the built dist/main.js in its own process, with a generated config file, port 0;
// the URL comes from its "listening" log line. Logs (pino JSON, level info) go to a file, as with a log shipper.
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capture, exited, sleep, stopChild, type Scope } from './proc.js';
import type { Settings } from './settings.js';

export interface NuproxyProc {
  url: string; // http://127.0.0.1:port/
  index: string; // service index URL
  pid: number;
  cacheDir: string;
  logFile: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface NuproxyOptions {
  upstreams: { name: string; serviceIndex: string }[];
  cacheDir: string;
  /** 'memory' or a redis:// URL. */
  metadata?: string;
  /** More `cache.*` keys (e.g. localTtl). */
  cache?: Record<string, unknown>;
  /** Work dir for config, log and profiles. */
  workDir: string;
  logLevel?: string;
  label?: string;
  /** Config `workers` (default 1). */
  workers?: number;
  /** Config `storage` (default: the disk). */
  storage?: Record<string, unknown>;
  /** Config `access` (default: none, an open feed). */
  access?: Record<string, unknown>;
  /** Config `policy` (default: none, every rule off). */
  policy?: Record<string, unknown>;
}

let counter = 0;

export async function startNuproxy(scope: Scope, s: Settings, o: NuproxyOptions): Promise<NuproxyProc> {
  const n = ++counter;
  const label = o.label ?? `nuproxy-${n}`;
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    cache: { dir: o.cacheDir, metadata: o.metadata ?? 'memory', ...o.cache },
    upstreams: o.upstreams.map((u) => ({ ...u, timeouts: { connect: '5s', headers: '60s', body: '60s' } })),
    log: { level: o.logLevel ?? 'info' },
    shutdownGrace: '2s',
    workers: o.workers ?? 1,
    ...(o.storage ? { storage: o.storage } : {}),
    ...(o.access ? { access: o.access } : {}),
    ...(o.policy ? { policy: o.policy } : {}),
  };
  const configFile = join(o.workDir, `${label}.json`);
  const logFile = join(o.workDir, `${label}.log`);
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const profDir = join(s.outDir, 'profiles');
  if (s.cpuProf) await mkdir(profDir, { recursive: true });
  const logFd = openSync(logFile, 'a');
  const nodeArgs = (process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []).concat(s.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${label}-${process.pid}-${n}.cpuprofile`] : []);
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NUPROXY_')) delete env[k];
  let child: ChildProcess;
  try {
    child = scope.spawn(process.execPath, [...nodeArgs, s.distMain, 'serve', '--config', configFile], {
      stdio: ['ignore', logFd, 'pipe'],
      env,
    });
  } finally {
    closeSync(logFd);
  }
  const errOut = capture(child);
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (!url) {
    if (exited(child)) throw new Error(`nuproxy exited (${child.exitCode ?? child.signalCode}) before listening:\n${errOut()}\n${tail(logFile)}`);
    if (Date.now() > deadline) {
      await stopChild(child, 'SIGKILL', 0);
      throw new Error(`nuproxy did not log "listening" within 30 s:\n${errOut()}\n${tail(logFile)}`);
    }
    url = listeningUrl(logFile);
    if (!url) await sleep(25);
  }
  const proc: NuproxyProc = {
    url,
    index: `${url}v3/index.json`,
    pid: child.pid!,
    cacheDir: o.cacheDir,
    logFile,
    child,
    // SIGTERM: graceful (and lets --cpu-prof write its profile)
    stop: () => stopChild(child, 'SIGTERM', 10_000),
  };
  scope.onClose(() => proc.stop());
  return proc;
}

function listeningUrl(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('listening')) continue;
    try {
      const j = JSON.parse(line) as { url?: unknown; msg?: unknown };
      if (typeof j.url === 'string' && typeof j.msg === 'string' && j.msg.includes('listening')) return j.url;
    } catch {
      // partial line
    }
  }
  return undefined;
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/** Current and peak resident set size of a process, in bytes (from /proc/<pid>/status). */
export function rssOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
