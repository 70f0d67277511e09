// How busy the machine is with other work (figures from a shared 2-core box are only as good as its quiet).
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { sleep } from './proc.js';

function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Fraction (0..1) of all CPUs busy over `ms`. */
export async function busyFraction(ms = 1000): Promise<number> {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return NaN;
  return (b.busy - a.busy) / (b.total - a.total);
}

/**
 * Waits (at most `maxMs`) until the machine is below `threshold` busy for one second; returns the last reading.
 * Nothing of the bench runs while this waits, so what it sees is someone else's load.
 */
export async function waitQuiet(maxMs: number, threshold: number, log: (m: string) => void): Promise<number> {
  const deadline = Date.now() + maxMs;
  let busy = await busyFraction();
  let said = false;
  while (busy > threshold && Date.now() < deadline) {
    if (!said) {
      log(`machine is ${Math.round(busy * 100)}% busy with other work; waiting up to ${Math.round(maxMs / 1000)} s for it to calm down`);
      said = true;
    }
    busy = await busyFraction(2000);
  }
  return busy;
}

interface ProcTicks {
  ppid: number;
  ticks: number;
}

function readProcs(): Map<number, ProcTicks> {
  const out = new Map<number, ProcTicks>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      // pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces and parentheses
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(n), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * CPU used by processes that are neither the bench's (its process tree) nor the kernel's, sampled every second
 * while a scenario runs: tells a clean figure from one taken while someone else was compiling.
 */
export class OtherLoad {
  private timer: NodeJS.Timeout | undefined;
  private last: Map<number, ProcTicks> | undefined;
  private lastAt = 0;
  private readonly shares: number[] = [];
  private readonly cpus = Math.max(1, cpus().length);

  start(): void {
    this.last = readProcs();
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  private sample(): void {
    const now = readProcs();
    const at = performance.now();
    const mine = new Set<number>([process.pid]);
    // our tree: repeat until no new child is found (ppid chains are short)
    for (let grew = true; grew; ) {
      grew = false;
      for (const [pid, p] of now) {
        if (!mine.has(pid) && mine.has(p.ppid)) {
          mine.add(pid);
          grew = true;
        }
      }
    }
    let other = 0;
    for (const [pid, p] of now) {
      if (mine.has(pid) || pid === 2 || p.ppid === 2 || pid === 1) continue;
      const before = this.last?.get(pid)?.ticks ?? 0;
      other += Math.max(0, p.ticks - before);
    }
    const seconds = (at - this.lastAt) / 1000;
    if (seconds > 0) this.shares.push(other / (100 * seconds * this.cpus)); // USER_HZ is 100 on Linux
    this.last = now;
    this.lastAt = at;
  }

  /** Mean and peak (1 s) share of all CPUs used by other work since start(). */
  stop(): { mean: number; peak: number } {
    clearInterval(this.timer);
    this.sample();
    const mean = this.shares.length ? this.shares.reduce((a, b) => a + b, 0) / this.shares.length : 0;
    return { mean, peak: this.shares.length ? Math.max(...this.shares) : 0 };
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (0 when it cannot be read). */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command name (which may contain spaces, inside parentheses)
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100 on Linux)
  } catch {
    return 0;
  }
}
