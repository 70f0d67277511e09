// Starts bench/bare-server.js (Node's ceiling: a bare node:http server answering files from memory) in its own
// process; it dies with the scope.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, stopChild, type Scope } from './proc.js';

export interface BareProc {
  url: string; // http://127.0.0.1:port/
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('../bare-server.js', import.meta.url));
let n = 0;

/** `files`: URL path (with its leading "/", as the request line has it) -> file whose bytes answer it. */
export async function startBare(scope: Scope, workDir: string, files: [string, string][]): Promise<BareProc> {
  const manifest = join(workDir, `bare-${++n}.json`);
  await writeFile(manifest, JSON.stringify({ files }));
  const child = scope.spawn(process.execPath, [SERVER, manifest], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const output = capture(child);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bare-server did not start within 60 s:\n${output()}`)), 60_000);
    child.once('message', (m) => (clearTimeout(timer), resolve((m as { url: string }).url)));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`bare-server exited (${code}):\n${output()}`))));
  });
  const proc: BareProc = { url, stop: () => stopChild(child, 'SIGTERM', 3000) };
  scope.onClose(() => proc.stop());
  return proc;
}
