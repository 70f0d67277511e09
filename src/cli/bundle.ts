// `nuproxy export` / `nuproxy import`: carrying a cache across an air gap in one tar file. This file: the two
// commands (arguments, output, exit codes); the work is in bundle-export.ts and bundle-import.ts, the format in
// bundle-format.ts.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createBlobStore, createCore, type Core } from '../app.js';
import { BundleRefused, errorText } from './bundle-format.js';
import { exportBundle } from './bundle-export.js';
import { importBundle } from './bundle-import.js';
import { formatBytes, streamProgress } from './bundle-progress.js';
import type { CliCommand, CliContext } from './context.js';

export { BUNDLE_FORMAT, BundleRefused, parseBundlePath, type BundleManifest, type BundlePath, type ManifestFile } from './bundle-format.js';
export { exportBundle, type ExportOptions, type ExportProblem, type ExportSource, type ExportSummary } from './bundle-export.js';
export { importBundle, type ImportOptions, type ImportSummary, type ImportTarget } from './bundle-import.js';
export { formatBytes, streamProgress, type ProgressSink } from './bundle-progress.js';

export const EXPORT_USAGE = 'nuproxy export <out.tar> [--since <earlier-manifest.json>]... [--manifest <out-manifest.json>] [--no-vulnerabilities] [--quiet] [--json] [--config FILE]';
export const IMPORT_USAGE = 'nuproxy import <bundle.tar> [--manifest <bundle-manifest.json>] [--quiet] [--json] [--config FILE]';

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, ctx: CliContext, usage: string): { values: Record<string, unknown>; positionals: string[] } | undefined {
  try {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    ctx.stderr.write(`${errorText(err)}\nusage: ${usage}\n`);
    return undefined;
  }
}

const COMMON = {
  quiet: { type: 'boolean', short: 'q' },
  json: { type: 'boolean' },
  // accepted (and ignored) here so that main.ts may pass the whole command line
  config: { type: 'string', short: 'c' },
} as const;

/**
 * `nuproxy export <out.tar>`. `args` are the words after `export`. Exit codes: 0 written; 3 written, but some
 * cached files were left out (listed on stderr); 1 failed (nothing written); 2 usage.
 */
export const exportCommand: CliCommand = async (args, ctx) => {
  const parsed = parse(
    args,
    { ...COMMON, since: { type: 'string', multiple: true }, manifest: { type: 'string' }, 'no-vulnerabilities': { type: 'boolean' } },
    ctx,
    EXPORT_USAGE,
  );
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    ctx.stderr.write(`usage: ${EXPORT_USAGE}\n`);
    return 2;
  }
  const quiet = values.quiet === true;
  const out = resolve(ctx.cwd, positionals[0]!);
  let core: Core | undefined;
  try {
    core = await createCore(ctx.loaded, { logger: ctx.logger, sweepTemp: false });
    const summary = await exportBundle(core, out, {
      since: ((values.since as string[] | undefined) ?? []).map((p) => resolve(ctx.cwd, p)),
      ...(typeof values.manifest === 'string' ? { manifestPath: resolve(ctx.cwd, values.manifest) } : {}),
      vulnerabilities: values['no-vulnerabilities'] !== true,
      ...(quiet ? {} : { progress: streamProgress(ctx.stderr) }),
    });
    for (const p of summary.problems) ctx.stderr.write(`nuproxy export: warning: ${p.path}: ${p.problem}\n`);
    if (values.json === true) ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    else if (!quiet) {
      const v = summary.vulnerabilities;
      ctx.stdout.write(
        `exported ${summary.files} files (${summary.packages} packages, ${formatBytes(summary.bytes)}) to ${summary.bundle} (${formatBytes(summary.bundleBytes)}) in ${(summary.durationMs / 1000).toFixed(1)} s\n` +
          (summary.unchanged > 0 ? `  ${summary.unchanged} files left out: the earlier bundle(s) already have them\n` : '') +
          `  vulnerability data: ${v.documents} documents${v.note ? ` (${v.note})` : ''}\n` +
          (summary.advisories > 0 ? `  malicious-package advisories: ${summary.advisories}\n` : '') +
          `  manifest: ${summary.manifest}\n` +
          (summary.problems.length > 0 ? `  ${summary.problems.length} cached files left out because of problems (see above)\n` : '') +
          (summary.blocked.length > 0 ? `  ${summary.blocked.length} cached packages left out: blocked by policy (they stay in the cache)\n${summary.blocked.map((b) => `    ${b.package}: ${b.rule}: ${b.reason}\n`).join('')}` : ''),
      );
    }
    return summary.problems.length > 0 ? 3 : 0;
  } catch (err) {
    ctx.stderr.write(`nuproxy export: failed: ${errorText(err)}\n`);
    return 1;
  } finally {
    await core?.close();
  }
};

/**
 * `nuproxy import <bundle.tar>` into the configured cache.dir. Needs no upstream (and does not sweep the cache's
 * temp folder, so it is safe beside a running instance). Exit codes: 0 imported; 1 refused or failed; 2 usage.
 */
export const importCommand: CliCommand = async (args, ctx) => {
  const parsed = parse(args, { ...COMMON, manifest: { type: 'string' } }, ctx, IMPORT_USAGE);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    ctx.stderr.write(`usage: ${IMPORT_USAGE}\n`);
    return 2;
  }
  const quiet = values.quiet === true;
  const cacheDir = resolve(ctx.cwd, ctx.loaded.config.cache.dir);
  try {
    const bundle = resolve(ctx.cwd, positionals[0]!);
    await stat(bundle); // a missing bundle fails before the cache is touched
    const blobs = await createBlobStore(ctx.loaded, cacheDir);
    await blobs.init({ sweep: false });
    const summary = await importBundle({ blobs }, bundle, {
      ...(typeof values.manifest === 'string' ? { manifestPath: resolve(ctx.cwd, values.manifest) } : {}),
      ...(quiet ? {} : { progress: streamProgress(ctx.stderr) }),
    });
    for (const c of summary.conflicts) ctx.stderr.write(`nuproxy import: warning: ${c}: the cache already has a different, valid file under this name; kept it\n`);
    if (values.json === true) ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    else if (!quiet) {
      ctx.stdout.write(
        `imported ${summary.bundle} into ${summary.cacheDir} in ${(summary.durationMs / 1000).toFixed(1)} s: ${summary.files} files (${summary.packages} packages, ${formatBytes(summary.bytes)}), ` +
          `${summary.newFiles} new, ${summary.presentFiles} already present${summary.conflicts.length ? `, ${summary.conflicts.length} kept (conflicts)` : ''}; ` +
          `${summary.newPackages} new packages, ${summary.vulnerabilityDocuments} vulnerability documents` +
          `${summary.advisories ? `; advisories merged: ${summary.advisories.added} new, ${summary.advisories.updated} updated, ${summary.advisories.total} stored` : ''}\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof BundleRefused) {
      ctx.stderr.write(`nuproxy import: ${err.message}\n`);
      for (const p of err.problems.slice(1, 50)) ctx.stderr.write(`  also: ${p}\n`);
      if (values.json === true) ctx.stdout.write(`${JSON.stringify({ refused: true, problems: err.problems })}\n`);
    } else ctx.stderr.write(`nuproxy import: failed: ${errorText(err)}\n`);
    return 1;
  }
};
