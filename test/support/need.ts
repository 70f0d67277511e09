// What the suite needs from the machine, and what happens when one of those is missing. Locally a test that
// cannot run is skipped LOUDLY (a banner on stderr, and the reason in the skip); under CI (CI=true) it is a
// failure instead, so a CI machine without dotnet (or redis-server, nginx, openssl, the real packages) can never
// go green with the suites that need it silently skipped. Every skip in the suite goes through needTool().
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The external things tests depend on. */
export type Tool = 'dotnet' | 'real-packages' | 'redis-server' | 'redis-cli' | 'nginx' | 'openssl' | 'procfs' | 'chromium';

const HOW: Record<Tool, string> = {
  dotnet: 'install the .NET SDK so that `dotnet --version` works',
  'real-packages': 'set NUPROXY_REAL_PACKAGES to a global-packages folder holding xunit/2.9.3/xunit.2.9.3.nupkg',
  'redis-server': 'apt-get install redis-server',
  'redis-cli': 'apt-get install redis-tools (it creates the test Redis Cluster)',
  nginx: 'apt-get install nginx',
  openssl: 'apt-get install openssl',
  procfs: 'run the tests on Linux (/proc/<pid>/status)',
  chromium: 'apt-get install chromium (Debian\'s headless browser at /usr/bin/chromium drives the dashboard tests)',
};

/** True when the tests run under CI: CI set to anything but empty, "0" or "false" (as CI services set it). */
export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * Undefined when `available`. Otherwise: under CI, throws (the test file fails, naming what is missing and how
 * to get it); locally, prints a banner and returns the reason, for `describe.skipIf(reason)` / `it.skipIf`.
 * `what` names the tests that would not run.
 */
export function needTool(tool: Tool, available: boolean, what: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (available) return undefined;
  const reason = `${tool} is missing, so ${what} cannot run (${HOW[tool]})`;
  if (underCi(env)) throw new Error(`[nuproxy tests] CI=true and ${reason}. Under CI nothing may be skipped.`);
  console.warn(`\n${'!'.repeat(100)}\n[nuproxy tests] SKIPPED: ${reason}\n${'!'.repeat(100)}\n`);
  return `SKIPPED: ${reason}`;
}

function runs(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/** The nginx binary (the Debian package puts it in /usr/sbin, often not on a user's PATH), or undefined. */
export function nginxPath(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx', 'nginx']) if (runs(p, ['-v'])) return p;
  return undefined;
}

/** Whether `openssl` runs (the HTTPS test makes its certificate with it). */
export function opensslAvailable(): boolean {
  return runs('openssl', ['version']);
}

/** Whether this process can read its own /proc status (RSS measurements). */
export function procfsAvailable(): boolean {
  return existsSync('/proc/self/status');
}
