import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

export const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

export interface NuproxyProcess {
  child: ChildProcess;
  url: string;
  /** Parsed log lines so far. */
  lines: Record<string, unknown>[];
  /** Lines on stdout that were not JSON (a log line cut or interleaved would show up here). */
  invalid: string[];
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/**
 * Runs the built `nuproxy serve` in its own process, like a user does, with a config written to `dir`; waits
 * for its "listening" line. `config` is a raw config object (listen defaults to 127.0.0.1 port 0).
 */
export async function startNuproxy(dir: string, name: string, config: Record<string, unknown> | string, args: string[] = [], env: Record<string, string> = {}): Promise<NuproxyProcess> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` first (npm test does)');
  // a config object is written to <dir>/<name>.yaml; a string is the path of a config file written by the caller
  const file = typeof config === 'string' ? config : join(dir, `${name}.yaml`);
  if (typeof config !== 'string') await writeFile(file, stringify({ listen: { host: '127.0.0.1', port: 0 }, ...config }));
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', file, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  const invalid: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        invalid.push(line);
        return;
      }
      lines.push(obj);
      if (typeof obj.url === 'string' && /listening/.test(String(obj.msg))) {
        clearTimeout(timer);
        resolve(obj.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return {
    child,
    url,
    lines,
    invalid,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** What a one-shot command printed (warm, export, import, …). */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * `node dist/main.js <args>` in its own process, asynchronously (so a test upstream living in the test's process
 * keeps answering it); killed after 120 s.
 */
export function runNuproxy(args: string[], cwd: string): Promise<CommandResult> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` first (npm test does)');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr, ms: Date.now() - started });
    });
  });
}
