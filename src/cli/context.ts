import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../log.js';

/**
 * What a CLI command gets from main.ts (the only file that touches process.*): the validated config, a logger,
 * and the output streams. Commands return their exit code.
 */
export interface CliContext {
  loaded: LoadedConfig;
  logger: Logger;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** The working directory relative paths are resolved against. */
  cwd: string;
}

export type CliCommand = (args: string[], ctx: CliContext) => Promise<number>;
