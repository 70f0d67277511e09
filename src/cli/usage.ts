import { ENV_OVERRIDES } from '../config/load.js';
import { EXPORT_USAGE, IMPORT_USAGE } from './bundle.js';
import { WARM_USAGE } from './warm.js';
import { PRUNE_USAGE } from './prune.js';
import { ADVISORIES_USAGE } from './advisories.js';

/**
 * The help texts of the CLI: `nuproxy --help` and `nuproxy <command> --help` (or `-h`, or `nuproxy help
 * <command>`). main.ts prints them before it loads any config or reads stdin, so help always works, even with
 * a broken config. The options of export and import are parsed in bundle.ts, warm's in warm.ts (which holds
 * its own text): a new option goes into its help here too.
 */

const ENV = Object.entries(ENV_OVERRIDES)
  .map(([k, v]) => `  ${k.padEnd(20)} ${v}`)
  .join('\n');

const CONFIG_OPTION = '  --config, -c FILE     config file (default: $NUPROXY_CONFIG, else the built-in defaults)';

/** The whole CLI at a glance: every command with its main options. */
export function generalUsage(version: string): string {
  return `nuproxy ${version}: a caching proxy for NuGet V3 feeds

Usage:
  nuproxy serve [--config FILE] [--port N] [--host ADDR] [--offline]
  nuproxy check-config [--config FILE]
  nuproxy warm [--config FILE] [--concurrency N] [--tfm TFM]... [--all-frameworks] [--pin|--unpin] [--json] <packages.lock.json|project.assets.json|.csproj|Directory.Packages.props|list|dir>...
  nuproxy export [--config FILE] <out.tar> [--since <manifest.json>] [--json]
  nuproxy import [--config FILE] <bundle.tar> [--json]
  nuproxy prune [--config FILE] [--dry-run] [--json]
  nuproxy advisories import [--config FILE] [--replace] [--json] <file|dir>...   (OSV advisories for the policy)
  nuproxy advisories list [--config FILE] [--json] [ID]
  nuproxy hash-key          (reads a token on stdin, prints its SHA-256 for access.tokens)
  nuproxy --version | --help
  nuproxy <command> --help  (the options of one command)

Environment overrides:
${ENV}
`;
}

const SERVE = `Usage: nuproxy serve [options]

Runs the proxy: serves the V3 feed (and publishing, when an upstream is writable) on listen.host:listen.port.
\`nuproxy\` with no command does the same. Stops on SIGTERM or SIGINT after finishing requests under way.

Options:
${CONFIG_OPTION}
  --port, -p N          listen on this port (same as NUPROXY_PORT)
  --host ADDR           listen on this address (same as NUPROXY_HOST)
  --offline             never ask an upstream; answer from the cache only (same as NUPROXY_OFFLINE=true)
  --help, -h            this text

Environment overrides:
${ENV}
`;

const CHECK_CONFIG = `Usage: nuproxy check-config [--config FILE]

Validates the configuration (file, defaults and environment overrides, secrets resolved from their environment
variables) and prints the effective configuration; exits 0 when it is valid, 78 with every problem when not.

Options:
${CONFIG_OPTION}
  --help, -h            this text
`;

const EXPORT = `Usage: ${EXPORT_USAGE}

Writes the cache (packages, their nuspecs, the vulnerability data, the advisories of \`nuproxy advisories import\`)
into one tar file, with a manifest of every file's SHA-512 inside it and next to it (<out.tar>.manifest.json). Can
run beside a live server on the same cache.

Options:
  --since MANIFEST      leave out the files an earlier bundle's manifest lists with the same hash (repeatable)
  --manifest FILE       where the manifest copy goes (default <out.tar>.manifest.json)
  --no-vulnerabilities  leave out the vulnerability data
  --quiet, -q           no progress, no summary
  --json                print the summary as JSON
${CONFIG_OPTION}
  --help, -h            this text

Exit codes: 0 written; 3 written, but some cached files were left out (listed on stderr); 1 failed; 2 usage.
`;

const IMPORT = `Usage: ${IMPORT_USAGE}

Checks every file of a bundle made by \`nuproxy export\` against its manifest, then moves them into cache.dir (its
advisories are merged with the cache's by advisory id). A bundle that fails a check is refused whole and nothing
is left behind. Needs no upstream; can run beside a live
server on the same cache.

Options:
  --manifest FILE       a manifest carried separately (e.g. <bundle.tar>.manifest.json): the bundle's own
                        must be identical to it
  --quiet, -q           no progress, no summary
  --json                print the summary as JSON
${CONFIG_OPTION}
  --help, -h            this text

Exit codes: 0 imported; 1 refused or failed; 2 usage.
`;

const HASH_KEY = `Usage: printf %s "$KEY" | nuproxy hash-key

Reads a token (or API key) on stdin and prints its SHA-256 (hex), the form access.tokens holds (and the older
publish.keys and admin.tokens): the config never holds a token itself.

Options:
  --help, -h            this text
`;

const COMMANDS: Record<string, string> = {
  serve: SERVE,
  'check-config': CHECK_CONFIG,
  warm: WARM_USAGE,
  export: EXPORT,
  import: IMPORT,
  prune: `Usage: ${PRUNE_USAGE}`,
  advisories: `Usage: ${ADVISORIES_USAGE}`,
  'hash-key': HASH_KEY,
};

/** The help of one command, or undefined for a name that is not a command. */
export function commandHelp(command: string): string | undefined {
  return Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
}

/** The commands that have a help text (every command main.ts runs). */
export const COMMAND_NAMES = Object.keys(COMMANDS);

/** True when the arguments ask for help: `--help` or `-h` before any `--`. */
export function asksForHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
