// Every command of the built CLI answers --help and -h with its usage on stdout and exits 0, without loading a
// config (NUPROXY_CONFIG names a file that does not exist) or reading stdin; --version prints package.json's.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES } from '../../src/cli/usage.js';
import { MAIN } from '../support/process.js';

const COMMANDS = ['serve', 'check-config', 'warm', 'export', 'import', 'prune', 'hash-key', 'advisories'];
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` first (npm test does)');
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, NUPROXY_CONFIG: '/nonexistent/nuproxy-help-test.yaml' }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(); // stdin at EOF: a command that read it would see no key, not wait
  });
}

/** Runs every argument list, a few at a time (the machine has few cores). */
async function runAll(list: string[][]): Promise<{ args: string[]; code: number; stdout: string; stderr: string }[]> {
  const out: { args: string[]; code: number; stdout: string; stderr: string }[] = [];
  for (let i = 0; i < list.length; i += 4) out.push(...(await Promise.all(list.slice(i, i + 4).map(async (args) => ({ args, ...(await run(args)) })))));
  return out;
}

describe('nuproxy <command> --help', () => {
  it('every command answers --help and -h with its own usage on stdout, exit 0; so does `help <command>`', async () => {
    const results = await runAll([...COMMANDS.flatMap((c) => [[c, '--help'], [c, '-h']]), ['help', 'export']]);
    for (const r of results) {
      const command = r.args[0] === 'help' ? r.args[1]! : r.args[0]!;
      const label = `nuproxy ${r.args.join(' ')}`;
      expect({ label, code: r.code, stderr: r.stderr }).toEqual({ label, code: 0, stderr: '' });
      expect(r.stdout, label).toMatch(/^Usage: /);
      expect(r.stdout.split('\n')[0], label).toContain(`nuproxy ${command}`);
    }
    // the ways of asking give the same text
    for (const c of COMMANDS) expect(new Set(results.filter((r) => r.args.includes(c)).map((r) => r.stdout)).size, c).toBe(1);
  });

  it('nuproxy --help prints the general usage, listing exactly the commands that have a help text; --version and -v print package.json\'s version', async () => {
    const [help, version, v] = await runAll([['--help'], ['--version'], ['-v']]);
    expect(help!.code).toBe(0);
    expect(help!.stdout).toMatch(/^nuproxy \S+: a caching proxy/);
    expect(help!.stdout).toContain('NUPROXY_REDIS_URL');
    const listed = [...new Set([...help!.stdout.matchAll(/^ {2}nuproxy ([a-z][a-z-]*)/gm)].map((m) => m[1]))];
    expect(listed.sort()).toEqual([...COMMAND_NAMES].sort());
    expect([...COMMAND_NAMES].sort()).toEqual([...COMMANDS].sort());
    for (const r of [version!, v!]) expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `${PACKAGE_VERSION}\n` });
  });

  it('an unknown command or option is a usage error: exit 2, the problem and the usage on stderr', async () => {
    const [unknown, badOption] = await runAll([['bogus'], ['serve', '--bogus']]);
    expect(unknown!.code).toBe(2);
    expect(unknown!.stderr).toContain('unknown command "bogus"');
    expect(unknown!.stdout).toBe('');
    expect(badOption!.code).toBe(2);
    expect(badOption!.stderr).toContain("Unknown option '--bogus'");
    expect(badOption!.stderr).toContain('Usage: nuproxy serve');
  });
});
