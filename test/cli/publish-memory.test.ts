// A push larger than the limit, against the real `nuproxy` process: 413, memory flat, nothing accepted upstream.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { pushMultipart } from '../support/push.js';
import { needTool, procfsAvailable } from '../support/need.js';
import { waitFor } from '../support/wait.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const MB = 1024 * 1024;

/** Peak resident memory of a process (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

const noProc = needTool('procfs', procfsAvailable(), 'publish-memory (RSS during an oversize push)');

describe.skipIf(noProc !== undefined)('an oversize push through the nuproxy process', () => {
  let dir: string;
  let upstream: TestUpstream;
  let child: ChildProcess;
  let url: string;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-pushmem-'));
    upstream = await startTestUpstream({ publish: { apiKey: 'k', maxBytes: 400 * MB } });
    const config = join(dir, 'config.yaml');
    await writeFile(
      config,
      `listen: { host: 127.0.0.1, port: 0 }\ncache: { dir: ${JSON.stringify(join(dir, 'data'))} }\nupstreams:\n  - name: company\n    serviceIndex: ${upstream.serviceIndexUrl}\n    writable: true\npublish: { maxPackageSize: 250MB }\n`,
    );
    child = spawn(process.execPath, [MAIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('nuproxy did not start')), 15_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const obj = JSON.parse(line) as Record<string, unknown>;
        lines.push(obj);
        if (typeof obj.url === 'string') {
          clearTimeout(timer);
          resolve(obj.url);
        }
      });
    });
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 413 for a 300 MB push with a 250 MB limit, with flat memory and nothing accepted upstream', { timeout: 120_000 }, async () => {
    const before = peakRss(child.pid!);
    const chunk = new Uint8Array(MB).fill(7);
    const body = async function* (): AsyncIterable<Uint8Array> {
      for (let i = 0; i < 300; i++) yield chunk;
    };
    const r = await pushMultipart(`${url}v3/package/`, body, { 'x-nuget-apikey': 'k' });
    expect(r.status).toBe(413);
    // log lines are written in batches (at least every 250 ms): wait for this one
    const logged = await waitFor('the log line of the push', () => lines.find((l) => l.method === 'PUT' && l.path === '/v3/package/'));
    expect(logged.status).toBe(413);
    // the upstream saw the upload cut off, never a whole body
    await waitFor('the upload to the upstream to end', () => upstream.publishAttempts.every((a) => a.body !== 'receiving'));
    expect(upstream.publishAttempts.map((a) => a.body)).toEqual(['cut']);
    const peak = peakRss(child.pid!);
    console.log(`nuproxy peak RSS: before ${(before / MB).toFixed(0)} MB, after a 300 MB push ${(peak / MB).toFixed(0)} MB`);
    // flat: the 300 MB body passes through; what grows is garbage not yet collected, not the package
    expect(peak - before).toBeLessThan(100 * MB);
    expect(peak).toBeLessThan(200 * MB);
    expect(upstream.pushes).toHaveLength(0);
  });
});
