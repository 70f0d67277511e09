import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLineDestination, createLogger } from '../../src/log.js';

describe('the line destination of the server log', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const linesOf = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

  it('writes every line whole and in order through asynchronous writes of whole lines', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-logdest-'));
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const dest = createLineDestination(fd, { maxWrite: 4096 });
    const logger = createLogger({ level: 'info', destination: dest });
    const long = 'x'.repeat(10_000); // longer than one write: goes alone
    for (let i = 0; i < 5000; i++) {
      logger.info({ i, path: i % 997 === 0 ? long : `/v3/flat/p${i}/index.json`, apiKey: 'secret' }, 'request');
      if (i % 1000 === 0) await new Promise((r) => setTimeout(r, 1)); // let asynchronous writes run meanwhile
    }
    dest.flush();
    for (let t = 0; t < 250 && linesOf(file).length < 5000; t++) await new Promise((r) => setTimeout(r, 20));
    closeSync(fd);
    const lines = linesOf(file);
    expect(lines).toHaveLength(5000);
    lines.forEach((l, n) => {
      const obj = JSON.parse(l) as { i: number; apiKey?: string };
      expect(obj.i).toBe(n);
      expect(obj.apiKey).toBe('[redacted]');
    });
  });

  it('flushSync writes what is buffered before it returns (process exit)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-logdest-'));
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const dest = createLineDestination(fd, { maxWrite: 1024 * 1024 }); // nothing is written before the flush
    const logger = createLogger({ level: 'info', destination: dest });
    for (let i = 0; i < 1000; i++) logger.info({ i }, 'request');
    expect(linesOf(file)).toHaveLength(0);
    dest.flushSync();
    closeSync(fd);
    expect(linesOf(file).map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});
