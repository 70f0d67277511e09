#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfig, ENV_OVERRIDES } from './config/load.js';
import { isNuproxyError } from './errors.js';
import { createLogger } from './log.js';
import { startApp, VERSION } from './app.js';
import { hashKey } from './feed/publish.js';
import { pino } from 'pino';
import type { CliCommand } from './cli/context.js';
import { warmCommand } from './cli/warm.js';
import { exportCommand, importCommand } from './cli/bundle.js';

const USAGE = `nuproxy ${VERSION}: a caching proxy for NuGet V3 feeds

Usage:
  nuproxy serve [--config FILE] [--port N] [--host ADDR] [--offline]
  nuproxy check-config [--config FILE]
  nuproxy warm [--config FILE] [--concurrency N] [--tfm TFM]... [--json] <packages.lock.json|project.assets.json|.csproj|Directory.Packages.props|list|dir>...
  nuproxy export [--config FILE] <out.tar> [--since <manifest.json>] [--json]
  nuproxy import [--config FILE] <bundle.tar> [--json]
  nuproxy hash-key          (reads an API key on stdin, prints its SHA-256 for publish.keys)
  nuproxy --version | --help

Environment overrides:
${Object.entries(ENV_OVERRIDES)
  .map(([k, v]) => `  ${k.padEnd(20)} ${v}`)
  .join('\n')}
`;

/** The only file that touches process.* (argv, env, exit, signals). */
/** Commands that take their own options: main reads only --config (and --verbose) and passes the rest on. */
const TOOLS: Record<string, CliCommand> = { warm: warmCommand, export: exportCommand, import: importCommand };

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

async function main(argv: string[]): Promise<number> {
  const tool = argv.find((a) => !a.startsWith('-'));
  if (tool && TOOLS[tool] && argv[0] === tool) return runTool(tool, argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      offline: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
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
  if (values.help || !['serve', 'check-config'].includes(command)) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
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
  // asynchronous, buffered writes: a request's log line never waits for the terminal or pipe reading it
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const logger = createLogger({ level: loaded.config.log.level, destination });
  // the lines still in the buffer are written when the process ends, however it ends, and at least every 250 ms
  process.once('exit', () => destination.flushSync());
  setInterval(() => destination.flush(), 250).unref();
  let app;
  try {
    app = await startApp(loaded, { logger });
  } catch (err) {
    logger.fatal({ err: isNuproxyError(err) ? err.message : err }, 'cannot start');
    destination.flushSync();
    return 1;
  }
  logger.info(
    { url: app.url, config: loaded.source, upstreams: loaded.config.upstreams.map((u) => u.name), metadata: app.store.kind, cacheDir: app.blobs.root },
    `nuproxy listening; point NuGet at ${app.url}v3/index.json`,
  );
  destination.flush(); // whoever waits for this line gets it now
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down: finishing requests and downloads under way');
      app.close().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('stopped');
  return 0;
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
