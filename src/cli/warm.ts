// `nuproxy warm`: fill the cache with everything a restore of the given projects needs, before anyone asks.
import { parseArgs } from 'node:util';
import { createCore, type Core } from '../app.js';
import type { CliCommand, CliContext } from './context.js';
import { warm, type WarmFailure, type WarmProgress, type WarmSummary } from './warm-closure.js';
import { readWarmInputs, WarmInputError, type WarmRoot } from './warm-inputs.js';
import { reasonOf } from './warm-support.js';
import { packageRef, updatePins } from '../feed/usage-state.js';
import { lowerNormalizedVersion } from '../protocol/version.js';

export type { WarmRoot } from './warm-inputs.js';
export { warm, type WarmFailure, type WarmOptions, type WarmPackage, type WarmProgress, type WarmSummary } from './warm-closure.js';
export { pickVersion } from './warm-support.js';

/** The usage text of `nuproxy warm` (--help, and after a usage error). */
export const WARM_USAGE = `Usage: nuproxy warm [options] <input>...

Fetches into the cache every package (and the metadata a restore asks for) of the dependency closure of the
inputs, resolved against the configured upstreams. Running it again fetches no package twice.

Inputs (files or folders):
  packages.lock.json            exactly the packages it lists, for the target frameworks it names (their
                                dependencies are not resolved again: the file holds the resolved closure)
  obj/project.assets.json       the same, from its "targets" (and each framework's PackageDownload items)
  Directory.Packages.props      every PackageVersion / GlobalPackageReference, and their dependency closure
  *.csproj, *.fsproj, *.vbproj  PackageReference / PackageDownload (versions from Directory.Packages.props
                                when the project has none), and their dependency closure
  a text file                   one "id@version", "id@[range]" or "id@1.*" per line; # comments
  a folder                      its packages.lock.json, else obj/project.assets.json, else its project files,
                                else its Directory.Packages.props

Options:
  --concurrency N       package downloads (and metadata requests) at once (default 8)
  --tfm MONIKER         only this target framework (repeatable): the lock and assets file targets for it, and
                        for other inputs the dependency group NuGet picks for it; default: every target a lock
                        or assets file names, and every group of every framework for the other inputs
  --all-frameworks      also resolve the dependencies of lock and assets file packages over every group of
                        every framework (the superset); a package only other frameworks need is reported, but
                        its absence does not fail the run
  --no-vulnerabilities  do not warm the vulnerability index and pages
  --pin                 pin every package warmed: the bounded cache (cache.maxSize, cache.retention) never
                        evicts them (kept in the store's state/pins.json)
  --unpin               the opposite: the packages of the inputs' closure may be evicted again
  --json                print the summary as JSON
  --quiet               no progress on stderr
`;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Progress on stderr: one redrawn line on a terminal, a line per ~10% otherwise. */
function progressReporter(stderr: CliContext['stderr']): { update(p: WarmProgress): void; end(p: WarmProgress): void } {
  const tty = stderr.isTTY === true;
  let lastDraw = 0;
  let lastDecile = -1;
  let drawn = false;
  const line = (p: WarmProgress): string => {
    const width = Math.max(10, Math.min(30, (stderr.columns ?? 80) - 45));
    const frac = p.total === 0 ? 0 : p.done / p.total;
    const filled = Math.min(width, Math.floor(frac * width));
    const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
    return `[${bar}] ${p.done}/${p.total} packages, ${formatBytes(p.bytes)}`;
  };
  return {
    update(p) {
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 100) return;
        lastDraw = now;
        stderr.write(`\r${line(p)}\x1b[K`);
        drawn = true;
        return;
      }
      if (p.total === 0) return;
      const decile = Math.floor((p.done / p.total) * 10);
      if (decile > lastDecile && p.done > 0 && p.done < p.total) {
        lastDecile = decile;
        stderr.write(`warm: ${p.done}/${p.total} packages, ${formatBytes(p.bytes)}\n`);
      }
    },
    end(p) {
      if (tty) stderr.write(`\r${line(p)}\x1b[K\n`);
      else if (drawn || p.total > 0) stderr.write(`warm: ${p.done}/${p.total} packages, ${formatBytes(p.bytes)}\n`);
    },
  };
}

function failureLine(f: WarmFailure): string {
  return `  ${f.package}: ${f.reason}${f.requiredBy ? ` (required by ${f.requiredBy})` : ''}`;
}

/** The text summary of a run (stdout without --json). */
export function formatSummary(s: WarmSummary): string {
  const lines = [
    `${s.packages.resolved} packages resolved: ${s.packages.downloaded} downloaded, ${s.packages.cached} already cached` +
      (s.packages.failed ? `, ${s.packages.failed} failed` : ''),
    `${formatBytes(s.bytesDownloaded)} downloaded in ${formatDuration(s.durationMs)}`,
    `metadata: ${s.metadata.versionLists} version lists, ${s.metadata.registrations} registrations, ${s.metadata.vulnerabilityPages} vulnerability pages`,
  ];
  if (s.failures.length === 0) lines.push('no failures');
  else {
    lines.push(`${s.failures.length} failure${s.failures.length === 1 ? '' : 's'}:`);
    for (const f of s.failures) lines.push(failureLine(f));
  }
  if (s.optional.length > 0) {
    lines.push(`${s.optional.length} package${s.optional.length === 1 ? '' : 's'} only other target frameworks need could not be warmed (not failures):`);
    for (const f of s.optional) lines.push(failureLine(f));
  }
  if (s.blocked.length > 0) {
    lines.push(`${s.blocked.length} version${s.blocked.length === 1 ? '' : 's'} skipped by policy (not failures: the proxy refuses them to a restore too):`);
    for (const b of s.blocked) lines.push(`  ${b.package}: blocked by ${b.rule}: ${b.reason}${b.requiredBy ? ` (required by ${b.requiredBy})` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `nuproxy warm [options] <input>...`: exit 0 when everything needed was warmed, 1 on failures, 2 on usage errors. */
export const warmCommand: CliCommand = async (args, ctx) => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        concurrency: { type: 'string' },
        tfm: { type: 'string', multiple: true },
        'all-frameworks': { type: 'boolean' },
        'no-vulnerabilities': { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        json: { type: 'boolean' },
        pin: { type: 'boolean' },
        unpin: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        // read by main.ts before the command runs; accepted here so it may be passed through
        config: { type: 'string', short: 'c' },
      },
    });
  } catch (err) {
    ctx.stderr.write(`nuproxy warm: ${(err as Error).message}\n\n${WARM_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    ctx.stdout.write(WARM_USAGE);
    return 0;
  }
  const inputs = positionals;
  if (inputs.length === 0) {
    ctx.stderr.write(`nuproxy warm: no input given\n\n${WARM_USAGE}`);
    return 2;
  }
  const concurrency = values.concurrency === undefined ? 8 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    ctx.stderr.write(`nuproxy warm: --concurrency must be a whole number from 1 to 256, got ${JSON.stringify(values.concurrency)}\n`);
    return 2;
  }

  if (values.pin && values.unpin) {
    ctx.stderr.write('nuproxy warm: --pin and --unpin exclude each other\n');
    return 2;
  }
  const tfms = values.tfm ?? [];
  const allFrameworks = values['all-frameworks'] === true;
  if (allFrameworks && tfms.length > 0) {
    ctx.stderr.write('nuproxy warm: --all-frameworks and --tfm exclude each other (every framework, or these ones)\n');
    return 2;
  }

  let roots: WarmRoot[];
  try {
    roots = await readWarmInputs(inputs, ctx.cwd, { tfms });
  } catch (err) {
    if (err instanceof WarmInputError) {
      ctx.stderr.write(`nuproxy warm: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (roots.length === 0) {
    ctx.stderr.write(`nuproxy warm: the inputs name no packages\n`);
    return values.json ? (ctx.stdout.write(`${JSON.stringify(emptySummary())}\n`), 0) : 0;
  }

  let core: Core;
  try {
    core = await createCore(ctx.loaded, { logger: ctx.logger, sweepTemp: false });
  } catch (err) {
    ctx.stderr.write(`nuproxy warm: cannot start: ${reasonOf(err)}\n`);
    return 1;
  }
  const quiet = values.quiet === true;
  const reporter = quiet ? undefined : progressReporter(ctx.stderr);
  let last: WarmProgress = { done: 0, total: 0, bytes: 0 };
  let summary: WarmSummary;
  try {
    if (!quiet && core.store.kind === 'memory') {
      ctx.stderr.write('nuproxy warm: metadata is cached in memory, so only package files outlive this run (a shared Redis store keeps metadata too)\n');
    }
    summary = await warm(core, roots, {
      concurrency,
      tfms,
      allFrameworks,
      vulnerabilities: values['no-vulnerabilities'] !== true,
      onProgress: (p) => {
        last = p;
        reporter?.update(p);
      },
    });
    if (values.pin || values.unpin) {
      const refs = summary.closure.map((p) => packageRef(p.id.toLowerCase(), lowerNormalizedVersion(p.version) ?? p.version.toLowerCase()));
      const pins = await updatePins(core.blobs, ctx.logger, values.pin ? refs : [], values.unpin ? refs : []);
      if (!quiet) ctx.stderr.write(`nuproxy warm: ${values.pin ? 'pinned' : 'unpinned'} ${refs.length} packages (${pins.size} pinned in all)\n`);
    }
  } finally {
    await core.close();
  }
  reporter?.end(last);
  ctx.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
  return summary.failures.length === 0 ? 0 : 1;
};

function emptySummary(): WarmSummary {
  return {
    roots: 0,
    packages: { resolved: 0, downloaded: 0, cached: 0, failed: 0 },
    bytesDownloaded: 0,
    bytesCached: 0,
    durationMs: 0,
    metadata: { versionLists: 0, registrations: 0, vulnerabilityPages: 0 },
    closure: [],
    failures: [],
    optional: [],
    blocked: [],
  };
}
