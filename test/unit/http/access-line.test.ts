// writeAccessLine writes the bytes pino writes for the same access line (level, time, bindings, fields in
// order, msg last), for the root logger and a child with bindings, with strings that need escaping, arrays,
// numbers and undefined fields; below info it writes nothing, as pino.
import { describe, expect, it } from 'vitest';
import { writeAccessLine } from '../../../src/http/access-line.js';
import { createLogger } from '../../../src/log.js';

function capture(level = 'info'): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void lines.push(s) } });
  return { lines, logger };
}

const entries: Record<string, string | number | boolean | string[] | undefined>[] = [
  { method: 'GET', path: '/v3/flat/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg', status: 200, durationMs: 0.3, cache: 'hit', upstream: 'nuget.org' },
  { method: 'GET', path: '/v3/flat/a"b\\c/\u0001é/index.json', status: 404, durationMs: 12, cache: undefined, upstream: undefined },
  { method: 'HEAD', path: '/x', status: 200, durationMs: 1.5, cache: 'miss', upstream: 'a, b', principal: 'ci', partial: ['b', 'c"d'], error: 'NOT_FOUND', aborted: true, bytesSent: 1024 },
  { method: 'GET', path: '/y', status: 499, durationMs: Number.NaN },
];

describe('writeAccessLine', () => {
  it('writes what pino.info writes, byte for byte but the time', () => {
    for (const make of [(l: ReturnType<typeof createLogger>) => l, (l: ReturnType<typeof createLogger>) => l.child({ worker: 2, part: 'read "routes"' })]) {
      const viaPino = capture();
      const direct = capture();
      for (const e of entries) {
        make(viaPino.logger).info({ ...e }, 'request');
        expect(writeAccessLine(make(direct.logger), { ...e }, 'request')).toBe(true);
      }
      const noTime = (s: string): string => s.replace(/"time":"[^"]+"/, '"time":"T"');
      expect(direct.lines.map(noTime)).toEqual(viaPino.lines.map(noTime));
      for (const line of direct.lines) {
        expect(line.endsWith('"msg":"request"}\n')).toBe(true);
        const t = (JSON.parse(line) as { time: string }).time;
        expect(Math.abs(Date.parse(t) - Date.now())).toBeLessThan(5_000);
      }
    }
  });

  it('below info, writes nothing (and says it is done)', () => {
    const c = capture('warn');
    expect(writeAccessLine(c.logger, { method: 'GET' }, 'request')).toBe(true);
    expect(c.lines).toEqual([]);
  });
});
