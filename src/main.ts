#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfig } from './config/load.js';
import { isNuproxyError } from './errors.js';
import { createLineDestination, createLogger } from './log.js';
import { createBlobStore, startApp, VERSION } from './app.js';
import { hashKey } from './feed/publish.js';
import { pino } from 'pino';
import type { CliCommand } from './cli/context.js';
import { warmCommand } from './cli/warm.js';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { BoxBroker } from './cache/box-link.js';
import type { LoadedConfig } from './config/load.js';
import { exportCommand, importCommand } from './cli/bundle.js';
import { pruneCommand } from './cli/prune.js';
import { advisoriesCommand } from './cli/advisories.js';
import { asksForHelp, commandHelp, generalUsage } from './cli/usage.js';

const USAGE = generalUsage(VERSION);

/** The only file that touches process.* (argv, env, exit, signals). */
/** Commands that take their own options: main reads only --config (and --verbose) and passes the rest on. */
const TOOLS: Record<string, CliCommand> = { warm: warmCommand, export: exportCommand, import: importCommand, prune: pruneCommand, advisories: advisoriesCommand };

async function runTool(name: string, argv: string[]): Promise<number> {
  let configPath: string | undefined;
  let verbose = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') configPath = argv[++i];
    else if (a.startsWith('--config=')) configPath = a.slice('--config='.length);
    else if (a === '--verbose') verbose = true;
    else rest.push(a);
  }
  let loaded;
  try {
    loaded = loadConfig(configPath, process.env);
  } catch (err) {
    process.stderr.write(`nuproxy: ${(err as Error).message}\n`);
    return 78;
  }
  // the command's own output (summary, --json) owns stdout: logs go to stderr, quiet unless --verbose
  const logger = createLogger({ level: verbose ? 'info' : 'warn', destination: pino.destination(2) });
  return TOOLS[name]!(rest, { loaded, logger, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() });
}

/**
 * `--help`/`-h` (for nuproxy or one command), `help [command]` and `--version`, answered before any config is
 * loaded or stdin read. Returns the exit code, or undefined when the arguments ask for something else.
 */
function helpOrVersion(argv: string[]): number | undefined {
  const first = argv[0];
  const command = first !== undefined && !first.startsWith('-') ? first : undefined;
  if (command === 'help') {
    const topic = argv[1];
    const text = topic === undefined ? USAGE : commandHelp(topic);
    if (text === undefined) return unknownCommand(topic!);
    process.stdout.write(text);
    return 0;
  }
  if (command === undefined && (first === '--version' || first === '-v')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (!asksForHelp(argv)) return undefined;
  if (command === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  const text = commandHelp(command);
  if (text === undefined) return unknownCommand(command);
  process.stdout.write(text);
  return 0;
}

function unknownCommand(name: string): number {
  process.stderr.write(`nuproxy: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const early = helpOrVersion(argv);
  if (early !== undefined) return early;
  const tool = argv.find((a) => !a.startsWith('-'));
  if (tool && TOOLS[tool] && argv[0] === tool) return runTool(tool, argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        offline: { type: 'boolean' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    // an unknown option: say which, and how the command is used
    const first = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'serve';
    process.stderr.write(`nuproxy: ${(err as Error).message}\n\n${commandHelp(first) ?? USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  if (command === 'hash-key') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const key = Buffer.concat(chunks).toString('utf8').trim();
    if (!key) {
      process.stderr.write('nuproxy hash-key: give the key on stdin, e.g. printf %s "$KEY" | nuproxy hash-key\n');
      return 2;
    }
    process.stdout.write(`${hashKey(key)}\n`);
    return 0;
  }
  if (!['serve', 'check-config'].includes(command)) return unknownCommand(command);
  const env = {
    ...process.env,
    ...(values.port ? { NUPROXY_PORT: values.port } : {}),
    ...(values.host ? { NUPROXY_HOST: values.host } : {}),
    ...(values.offline ? { NUPROXY_OFFLINE: 'true' } : {}),
  };
  let loaded;
  try {
    loaded = loadConfig(values.config, env);
  } catch (err) {
    process.stderr.write(`nuproxy: ${(err as Error).message}\n`);
    return 78; // EX_CONFIG
  }
  if (command === 'check-config') {
    process.stdout.write(`configuration OK (${loaded.source})\n${JSON.stringify(loaded.config, null, 2)}\n`);
    return 0;
  }
  const workers = loaded.config.workers === 'auto' ? availableParallelism() : loaded.config.workers;
  if (workers > 1 && cluster.isPrimary) return runPrimary(loaded, workers);
  const worker = cluster.isWorker;
  // asynchronous, buffered writes: a request's log line never waits for the terminal or pipe reading it.
  // Workers share stdout: each write is whole lines of at most 4096 bytes, which a pipe never interleaves.
  const destination = createLineDestination(1, worker ? { maxWrite: 4096 } : {});
  const root = createLogger({ level: loaded.config.log.level, destination });
  const logger = worker ? root.child({ worker: cluster.worker?.id }) : root;
  // a worker whose primary is gone cannot tell it anything (closing the server tries to): not a crash
  cluster.worker?.on('error', (err: NodeJS.ErrnoException) => logger.warn({ err: err.message, code: err.code }, 'lost the channel to the primary process'));
  // the lines still in the buffer are written when the process ends, however it ends, and at least every 250 ms
  process.once('exit', () => destination.flushSync());
  setInterval(() => destination.flush(), 250).unref();
  let app;
  try {
    app = await startApp(
      loaded,
      worker
        ? {
            logger,
            // the primary swept the temp files once; a worker starting later must not remove the others' downloads
            sweepTemp: false,
            box: { send: (m) => void (process.connected && process.send?.(m)), onMessage: (h) => process.on('message', h) },
          }
        : { logger },
    );
  } catch (err) {
    logger.fatal({ err: isNuproxyError(err) ? err.message : err }, 'cannot start');
    destination.flushSync();
    return 1;
  }
  if (worker) {
    // the primary logs the one "listening" line once every worker listens
    logger.info({ address: app.url }, 'worker listening');
    process.send?.({ nuproxyWorker: 'listening', url: app.url, metadata: app.store.kind, cacheDir: app.blobs.location });
  } else {
    logger.info(
      { url: app.url, config: loaded.source, upstreams: loaded.config.upstreams.map((u) => u.name), metadata: app.store.kind, cacheDir: app.blobs.location },
      `nuproxy listening; point NuGet at ${app.url}v3/index.json`,
    );
  }
  destination.flush(); // whoever waits for this line gets it now
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down: finishing requests and downloads under way');
      app.close().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // (a worker whose primary dies is ended by node:cluster itself: it has no listening socket left)
  });
  logger.info('stopped');
  if (worker) process.disconnect?.(); // the IPC channel would keep the process alive
  return 0;
}

/**
 * The primary process of `workers` > 1: forks the workers (they share the listening socket and the disk cache),
 * keeps their fetch locks and relays their broadcasts (BoxBroker: invalidations, download progress), replaces a
 * worker that dies, and stops them all on SIGTERM/SIGINT. It serves no requests itself.
 */
async function runPrimary(loaded: LoadedConfig, count: number): Promise<number> {
  const logger = createLogger({ level: loaded.config.log.level, destination: pino.destination({ dest: 1, sync: true }) }).child({ role: 'primary' });
  try {
    const { swept } = await (await createBlobStore(loaded)).init({ sweep: true });
    if (swept > 0) logger.info({ swept }, 'removed temp files left by an earlier run');
  } catch (err) {
    logger.fatal({ err: isNuproxyError(err) ? err.message : err }, 'cannot start');
    return 1;
  }
  const broker = new BoxBroker();
  // /metrics: a worker's scrape is answered here with every worker's figures (metrics/cluster.ts)
  const scrapes = loaded.config.metrics.enabled ? new (await import('./metrics/cluster.js')).PrimaryScrapes() : undefined;
  const live = new Map<number, Worker>();
  let stopping = false;
  let failed = false;
  let announced = false;
  let listening = 0;
  let allExited: () => void = () => undefined;
  const exited = new Promise<void>((r) => (allExited = r));
  const stopAll = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const w of live.values()) w.process.kill(signal);
    if (live.size === 0) allExited();
    // a worker that does not finish within the grace period (plus a margin) is killed
    setTimeout(() => {
      for (const w of live.values()) w.process.kill('SIGKILL');
    }, loaded.config.shutdownGrace + 5000).unref();
  };
  const fork = (): void => {
    const w = cluster.fork();
    live.set(w.id, w);
    let up = false;
    const port = broker.attach(w.id, (m) => {
      if (w.isConnected()) w.send(m as object);
    });
    w.on('message', (m: { nuproxyWorker?: string; url?: string; metadata?: string; cacheDir?: string }) => {
      if (scrapes?.handle(m, (r) => w.isConnected() && w.send(r as object))) return;
      if (m?.nuproxyWorker !== 'listening') return port.onMessage(m);
      up = true;
      listening++;
      if (!announced && listening >= count) {
        announced = true;
        logger.info(
          { url: m.url, workers: count, config: loaded.source, upstreams: loaded.config.upstreams.map((u) => u.name), metadata: m.metadata, cacheDir: m.cacheDir },
          `nuproxy listening with ${count} workers; point NuGet at ${m.url}v3/index.json`,
        );
      }
    });
    w.on('exit', (code, signal) => {
      port.detach();
      live.delete(w.id);
      if (up) listening--;
      if (stopping) {
        if (live.size === 0) allExited();
        return;
      }
      if (!up) {
        // a worker that cannot start (port taken, cache dir unusable): the others would fail the same way
        logger.fatal({ worker: w.id, code, signal }, 'a worker could not start; stopping');
        failed = true;
        stopAll('SIGTERM');
        return;
      }
      logger.error({ worker: w.id, code, signal }, 'worker exited; starting another');
      fork();
    });
  };
  for (let i = 0; i < count; i++) fork();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    logger.info({ signal }, 'shutting down: workers finish the requests and downloads under way');
    stopAll('SIGTERM');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await exited;
  logger.info('stopped');
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`nuproxy: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
