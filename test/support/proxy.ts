import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type RunningApp } from '../../src/app.js';
import { validateConfig, type Env } from '../../src/config/load.js';
import { createLogSink, type LogSink } from './log-sink.js';

export interface TestProxy extends RunningApp {
  logs: LogSink;
  cacheDir: string;
  /** URL of the proxy's service index. */
  index: string;
  stop(): Promise<void>;
}

/**
 * A real nuproxy on 127.0.0.1 port 0 with its own temp cache dir, configured like a user would (raw config
 * object validated by the real loader). `upstreams` are service index URLs, or full upstream entries.
 */
export async function startTestProxy(opts: {
  upstreams: (string | Record<string, unknown>)[];
  config?: Record<string, unknown>;
  env?: Env;
  cacheDir?: string;
  /** The clock metadata freshness is judged by (tests move it instead of waiting). */
  clock?: () => number;
  /** How often the server looks for a new advisories import (default 30 s). */
  advisoryPollMs?: number;
}): Promise<TestProxy> {
  const cacheDir = opts.cacheDir ?? (await mkdtemp(join(tmpdir(), 'nuproxy-cache-')));
  const raw: Record<string, unknown> = {
    listen: { host: '127.0.0.1', port: 0 },
    ...opts.config,
    cache: { dir: cacheDir, ...(opts.config?.cache as object | undefined) },
    upstreams: opts.upstreams.map((u, i) =>
      typeof u === 'string' ? { name: `up${i}`, serviceIndex: u, retries: 1, timeouts: { connect: '2s', headers: '5s', body: '5s' } } : u,
    ),
  };
  const loaded = validateConfig(raw, opts.env ?? {}, 'test');
  const logs = createLogSink();
  const app = await startApp(loaded, {
    logger: logs.logger,
    retryDelayMs: 10,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.advisoryPollMs !== undefined ? { advisoryPollMs: opts.advisoryPollMs } : {}),
  });
  return {
    ...app,
    logs,
    cacheDir,
    index: `${app.url}v3/index.json`,
    stop: async () => {
      await app.close();
      if (!opts.cacheDir) await rm(cacheDir, { recursive: true, force: true });
    },
  };
}
