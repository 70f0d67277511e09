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

  it('writes every line whole and in order, through asynchronous writes and a final synchronous flush', async () => {
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
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 5000; i < 6000; i++) logger.info({ i }, 'request');
    dest.flushSync();
    closeSync(fd);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(6000);
    lines.forEach((l, n) => {
      const obj = JSON.parse(l) as { i: number; apiKey?: string };
      expect(obj.i).toBe(n);
      if (obj.apiKey !== undefined) expect(obj.apiKey).toBe('[redacted]');
    });
  });
});
