import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/** A pino logger whose lines are kept parsed, so tests assert on log objects (architecture habit 9). */
export interface LogSink {
  logger: Logger;
  lines: Record<string, unknown>[];
  raw(): string;
}

export function createLogSink(level = 'debug'): LogSink {
  const chunks: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString('utf8');
      chunks.push(text);
      for (const l of text.split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level, destination: dest });
  return { logger, lines, raw: () => chunks.join('') };
}
