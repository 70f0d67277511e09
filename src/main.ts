#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadConfig, ENV_OVERRIDES } from './config/load.js';
import { isNuproxyError } from './errors.js';
import { createLogger } from './log.js';
import { startApp, VERSION } from './app.js';
import { hashKey } from './feed/publish.js';

const USAGE = `nuproxy ${VERSION}: a caching proxy for NuGet V3 feeds

Usage:
  nuproxy serve [--config FILE] [--port N] [--host ADDR]
  nuproxy check-config [--config FILE]
  nuproxy hash-key          (reads an API key on stdin, prints its SHA-256 for publish.keys)
  nuproxy --version | --help

Environment overrides:
${Object.entries(ENV_OVERRIDES)
  .map(([k, v]) => `  ${k.padEnd(20)} ${v}`)
  .join('\n')}
`;

/** The only file that touches process.* (argv, env, exit, signals). */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
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
  const env = { ...process.env, ...(values.port ? { NUPROXY_PORT: values.port } : {}), ...(values.host ? { NUPROXY_HOST: values.host } : {}) };
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
  const logger = createLogger({ level: loaded.config.log.level });
  let app;
  try {
    app = await startApp(loaded, { logger });
  } catch (err) {
    logger.fatal({ err: isNuproxyError(err) ? err.message : err }, 'cannot start');
    return 1;
  }
  logger.info(
    { url: app.url, config: loaded.source, upstreams: loaded.config.upstreams.map((u) => u.name), metadata: app.store.kind, cacheDir: app.blobs.root },
    `nuproxy listening; point NuGet at ${app.url}v3/index.json`,
  );
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
