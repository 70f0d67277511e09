// `nuproxy prune [--dry-run] [--json]`: the bounded cache's rules run once against the configured store: what
// goes, by which rule, and how much it frees. The plan is the evictor's own (feed/evict-plan.ts), so a dry run
// shows exactly what the server would remove.
import { parseArgs } from 'node:util';
import { createBlobStore } from '../app.js';
import { planEviction, type EvictPlan } from '../feed/evict-plan.js';
import { entriesOf, evictRules, isBounded, pinMatcher, removePackage, walkStore } from '../feed/evictor.js';
import { readPins, UsageBook } from '../feed/usage-state.js';
import { formatBytes, silentProgress, streamProgress } from './bundle-progress.js';
import type { CliCommand } from './context.js';

export const PRUNE_USAGE = `nuproxy prune [--config FILE] [--dry-run] [--json] [--quiet]

Runs the eviction rules of the config (cache.maxSize with cache.evictTo, cache.retention.unusedFor,
cache.retention.keepVersions; cache.pins and \`warm --pin\` are never removed) once against the configured
store, and removes what they name: the same plan the server runs every cache.evictEvery. Prints each package to
go with its rule and size, and the total freed.

Options:
  --dry-run   remove nothing: only show what would go (a good first step after changing a rule)
  --json      print the plan as JSON
  --quiet     no progress bar on stderr

Exit codes: 0 done (or nothing to do); 1 failed; 2 usage (or offline without cache.evictOffline).
`;

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function describe(plan: EvictPlan, dryRun: boolean): string {
  const lines = plan.remove.map((r) => `  ${r.entry.lowerId} ${r.entry.lowerVersion}  ${r.reason}  ${formatBytes(r.entry.bytes)}  last used ${day(r.lastUsedMs)}`);
  const verb = dryRun ? 'would remove' : 'removed';
  const kept = [plan.keptPinned > 0 ? `${plan.keptPinned} pinned kept` : '', plan.keptBusy > 0 ? `${plan.keptBusy} busy kept` : ''].filter(Boolean).join(', ');
  return [
    ...(lines.length > 0 ? [`${dryRun ? 'Would remove' : 'Removing'} (package, rule, size, last used):`, ...lines] : ['Nothing to remove.']),
    `${verb} ${plan.remove.length} of ${plan.packages} packages, ${formatBytes(plan.freed)} of ${formatBytes(plan.total)} (${formatBytes(plan.after)} left${plan.target > 0 ? `, low-water mark ${formatBytes(plan.target)}` : ''})${kept ? `; ${kept}` : ''}`,
    ...plan.notes.map((n) => `note: ${n}`),
    '',
  ].join('\n');
}

export const pruneCommand: CliCommand = async (args, ctx) => {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } } }));
  } catch (err) {
    ctx.stderr.write(`nuproxy prune: ${(err as Error).message}\n\nUsage: ${PRUNE_USAGE}`);
    return 2;
  }
  const dryRun = values['dry-run'] === true;
  const { config } = ctx.loaded;
  if (!isBounded(config.cache)) {
    ctx.stderr.write('nuproxy prune: no eviction rule is configured (cache.maxSize, cache.retention): nothing to prune\n');
    if (values.json) ctx.stdout.write(`${JSON.stringify({ dryRun, remove: [], freed: 0 })}\n`);
    return 0;
  }
  if (!dryRun && config.offline && !config.cache.evictOffline) {
    ctx.stderr.write('nuproxy prune: offline mode evicts nothing unless cache.evictOffline is true (--dry-run shows what would go)\n');
    return 2;
  }
  const blobs = await createBlobStore(ctx.loaded);
  await blobs.init({ sweep: false }); // a server may be running on this store: its writes under way stay
  const usage = new UsageBook(blobs, ctx.logger, Date.now());
  await usage.load();
  const [index, { pins }] = await Promise.all([walkStore(blobs, ctx.logger), readPins(blobs, ctx.logger)]);
  const plan = planEviction(entriesOf(index, usage, pinMatcher(config.cache.pins, pins)), evictRules(config.cache), { now: Date.now(), usageKnown: usage.known });
  if (!values.json) ctx.stdout.write(describe(plan, dryRun));
  if (!dryRun && plan.remove.length > 0) {
    const progress = values.quiet || values.json ? silentProgress : ctx.stderr.isTTY === true ? streamProgress(ctx.stderr) : silentProgress;
    progress.start('pruning', plan.freed);
    let done = 0;
    for (const r of plan.remove) {
      await removePackage(blobs, r.entry.lowerId, r.entry.lowerVersion);
      usage.forget(`${r.entry.lowerId}/${r.entry.lowerVersion}`);
      done += r.entry.bytes;
      progress.update(done, `${r.entry.lowerId} ${r.entry.lowerVersion}`);
    }
    progress.end();
    await usage.flush();
  }
  if (values.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        dryRun,
        remove: plan.remove.map((r) => ({ id: r.entry.lowerId, version: r.entry.lowerVersion, rule: r.reason, bytes: r.entry.bytes, lastUsed: new Date(r.lastUsedMs).toISOString() })),
        freed: plan.freed,
        before: plan.total,
        after: plan.after,
        packages: plan.packages,
        keptPinned: plan.keptPinned,
        notes: plan.notes,
      })}\n`,
    );
  }
  return 0;
};
