// `nuproxy warm`: fill the cache with everything a restore of the given projects needs, before anyone asks.
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createCore, type Core } from '../app.js';
import { isNuproxyError } from '../errors.js';
import { dependenciesFor, parseNuspecDependencies } from '../protocol/nuspec.js';
import { bestMatch, parseRange } from '../protocol/range.js';
import { compareVersions, isPrerelease, lowerNormalizedVersion, normalizeVersion, parseVersion, type NuGetVersion } from '../protocol/version.js';
import type { CliCommand, CliContext } from './context.js';
import { parseFloating, readWarmInputs, WarmInputError, type WarmRoot } from './warm-inputs.js';

export type { WarmRoot } from './warm-inputs.js';

export interface WarmOptions {
  /** Package fetches (and metadata requests) under way at once; default 8. */
  concurrency?: number;
  /**
   * Target frameworks whose nearest dependency group is followed. Empty (the default): every group of every
   * framework, which over-approximates the closure (nothing a restore could need is missed).
   */
  tfms?: readonly string[];
  /** Also warm the vulnerability index and pages (default true). */
  vulnerabilities?: boolean;
  /** Called whenever a package finishes or bytes arrive. */
  onProgress?: (p: WarmProgress) => void;
}

export interface WarmProgress {
  /** Packages finished (fetched, found cached, or failed). */
  done: number;
  /** Packages known so far (grows as dependencies are discovered). */
  total: number;
  /** Bytes downloaded from upstreams so far. */
  bytes: number;
}

export interface WarmPackage {
  id: string;
  version: string;
  /** 'downloaded': fetched from an upstream by this run; 'cached': the cache already had it. */
  status: 'downloaded' | 'cached';
  /** Size of the .nupkg. */
  bytes: number;
}

export interface WarmFailure {
  /** What failed: "id@version", "id@range", an id (its metadata), or "vulnerability data". */
  package: string;
  reason: string;
  /** The package whose dependency this was ("id@version"); absent for roots. */
  requiredBy?: string;
}

export interface WarmSummary {
  roots: number;
  packages: {
    /** Distinct id@version visited. */
    resolved: number;
    downloaded: number;
    cached: number;
    failed: number;
  };
  /** Bytes fetched from upstreams (.nupkg and .nuspec). */
  bytesDownloaded: number;
  /** Size of the .nupkg files that were already cached. */
  bytesCached: number;
  durationMs: number;
  metadata: { versionLists: number; registrations: number; vulnerabilityPages: number };
  /** The packages warmed, sorted by id then version. */
  closure: WarmPackage[];
  failures: WarmFailure[];
}

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

/** At most `n` functions running at once; a finished one hands its slot straight to the next in line. */
function createLimit(n: number): Limit {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (active < n) active++;
    else await new Promise<void>((resolve) => queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}

function reasonOf(err: unknown): string {
  if (isNuproxyError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The version NuGet picks for a requested range among the listed ones: the lowest in range (prereleases only
 * when a bound is one), or for a floating version ('1.*', '1.0.0-beta*', '*-*') the highest that matches.
 */
export function pickVersion(spec: string, listed: readonly string[]): string | undefined {
  const candidates = listed.map((v) => parseVersion(v)).filter((v): v is NuGetVersion => v !== undefined);
  let chosen: NuGetVersion | undefined;
  if (spec.includes('*')) {
    const f = parseFloating(spec);
    if (!f) return undefined;
    const core = f.exactCore ? parseVersion(spec.slice(0, spec.indexOf('-'))) : undefined;
    const nums = (v: NuGetVersion): number[] => [v.major, v.minor, v.patch, v.revision];
    for (const v of candidates) {
      if (f.exactCore && core) {
        if (nums(v).some((n, i) => n !== nums(core)[i])) continue;
      } else if (f.prefix.some((n, i) => nums(v)[i] !== n)) continue;
      if (isPrerelease(v)) {
        if (f.releasePrefix === undefined) continue;
        if (!v.release.join('.').toLowerCase().startsWith(f.releasePrefix.toLowerCase())) continue;
      }
      if (!chosen || compareVersions(v, chosen) > 0) chosen = v;
    }
  } else {
    const range = parseRange(spec);
    if (!range) return undefined;
    chosen = bestMatch(range, candidates);
  }
  return chosen && normalizeVersion(chosen).toLowerCase();
}

async function drain(stream: Readable, onBytes: (n: number) => void): Promise<number> {
  let total = 0;
  for await (const chunk of stream) {
    const n = (chunk as Buffer).length;
    total += n;
    onBytes(n);
  }
  return total;
}

async function collect(stream: Readable, onBytes: (n: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    onBytes((chunk as Buffer).length);
  }
  return Buffer.concat(chunks);
}

/**
 * Resolves the dependency closure of the roots against the feed and fetches every package file (.nupkg and
 * .nuspec) into the cache, with the metadata a restore asks for (version lists, registration indexes, and
 * vulnerability data). Failures are collected, never thrown: one missing package does not stop the rest.
 */
export async function warm(core: Pick<Core, 'feed'>, roots: readonly WarmRoot[], opts: WarmOptions = {}): Promise<WarmSummary> {
  const started = performance.now();
  const { feed } = core;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 8));
  const tfms = opts.tfms ?? [];
  const limit = createLimit(concurrency);

  const failures: WarmFailure[] = [];
  const closure: WarmPackage[] = [];
  const metadata = { versionLists: 0, registrations: 0, vulnerabilityPages: 0 };
  let bytesDownloaded = 0;
  let bytesCached = 0;
  let done = 0;
  let failedPackages = 0;

  const visited = new Set<string>(); // lowerId@lowerVersion
  const requested = new Set<string>(); // lowerId|range
  const idsWarmed = new Set<string>();
  const lists = new Map<string, Promise<string[] | undefined>>();

  const tasks = new Set<Promise<void>>();
  const spawn = (fn: () => Promise<void>): void => {
    const p: Promise<void> = fn()
      .catch((err: unknown) => void failures.push({ package: '(warm)', reason: `internal error: ${reasonOf(err)}` }))
      .finally(() => tasks.delete(p));
    tasks.add(p);
  };
  const progress = (): void => opts.onProgress?.({ done, total: visited.size, bytes: bytesDownloaded });
  const onBytes = (n: number): void => {
    bytesDownloaded += n;
    progress();
  };
  const fail = (f: WarmFailure): void => void failures.push(f);

  const notFound = (lowerId: string): string =>
    feed.route(lowerId).allowed.length === 0 ? 'no upstream may serve this id (include/exclude rules)' : 'not found on any allowed upstream';

  /** The merged version list of an id (one request per id, shared). */
  const listOf = (lowerId: string): Promise<string[] | undefined> => {
    let p = lists.get(lowerId);
    if (!p) {
      p = limit(async () => (await feed.mergedVersions(lowerId))?.versions);
      lists.set(lowerId, p);
    }
    return p;
  };

  /** What a restore asks about an id besides its packages: the version list and the registration index. */
  const warmMetadata = (lowerId: string, id: string): void => {
    if (idsWarmed.has(lowerId)) return;
    idsWarmed.add(lowerId);
    spawn(() =>
      limit(async () => {
        try {
          if (await feed.versions(lowerId)) metadata.versionLists++;
        } catch (err) {
          fail({ package: id, reason: `version list: ${reasonOf(err)}` });
        }
      }),
    );
    spawn(() =>
      limit(async () => {
        try {
          if (await feed.registrationIndex('semver2', lowerId)) metadata.registrations++;
        } catch (err) {
          fail({ package: id, reason: `registration: ${reasonOf(err)}` });
        }
      }),
    );
  };

  const fetchPackage = async (lowerId: string, lowerVersion: string, id: string, requiredBy: string | undefined): Promise<void> => {
    const label = `${id}@${lowerVersion}`;
    const by = requiredBy !== undefined ? { requiredBy } : {};
    const [nuspec, nupkg] = await Promise.allSettled([
      (async () => {
        const h = await feed.openPackage(lowerId, lowerVersion, 'nuspec', 'GET');
        if (!h) return undefined;
        if (h.kind === 'file') return { text: await readFile(h.info.path, 'utf8'), fetched: false };
        if (h.kind === 'stream') return { text: (await collect(h.stream, onBytes)).toString('utf8'), fetched: true };
        throw new Error('unexpected HEAD answer');
      })(),
      (async () => {
        const h = await feed.openPackage(lowerId, lowerVersion, 'nupkg', 'GET');
        if (!h) return undefined;
        if (h.kind === 'file') return { size: h.info.size, fetched: false };
        if (h.kind === 'stream') return { size: await drain(h.stream, onBytes), fetched: true };
        throw new Error('unexpected HEAD answer');
      })(),
    ]);
    if (nupkg.status === 'rejected') return void fail({ package: label, reason: reasonOf(nupkg.reason), ...by });
    if (nuspec.status === 'rejected') return void fail({ package: label, reason: `.nuspec: ${reasonOf(nuspec.reason)}`, ...by });
    if (!nupkg.value) return void fail({ package: label, reason: notFound(lowerId), ...by });
    let parsed: ReturnType<typeof parseNuspecDependencies> | undefined;
    if (nuspec.value) {
      try {
        parsed = parseNuspecDependencies(nuspec.value.text);
      } catch (err) {
        fail({ package: label, reason: `.nuspec: ${reasonOf(err)}`, ...by });
      }
    } else {
      fail({ package: label, reason: '.nuspec: not found on the upstream that serves the package', ...by });
    }
    const status = nupkg.value.fetched || nuspec.value?.fetched ? 'downloaded' : 'cached';
    if (status === 'cached') bytesCached += nupkg.value.size;
    const shownId = parsed && parsed.id.toLowerCase() === lowerId ? parsed.id : id;
    const version = parsed && lowerNormalizedVersion(parsed.version) === lowerVersion ? normalizeOrSelf(parsed.version) : lowerVersion;
    closure.push({ id: shownId, version, status, bytes: nupkg.value.size });
    if (!parsed) return;
    for (const dep of dependenciesFor(parsed.groups, tfms)) request({ id: dep.id, range: dep.range }, `${shownId}@${version}`);
  };

  const visit = (lowerId: string, lowerVersion: string, id: string, requiredBy: string | undefined): void => {
    const key = `${lowerId}@${lowerVersion}`;
    if (visited.has(key)) return;
    visited.add(key);
    progress();
    spawn(() =>
      limit(async () => {
        try {
          await fetchPackage(lowerId, lowerVersion, id, requiredBy);
        } finally {
          done++;
          progress();
        }
      }),
    );
  };

  const request = (root: WarmRoot, requiredBy?: string): void => {
    const by = requiredBy !== undefined ? { requiredBy } : {};
    const id = root.id.trim();
    const lowerId = id.toLowerCase();
    warmMetadata(lowerId, id);
    if (root.version !== undefined) {
      const lowerVersion = lowerNormalizedVersion(root.version);
      if (!lowerVersion) return void fail({ package: `${id}@${root.version}`, reason: 'not a valid version', ...by });
      return visit(lowerId, lowerVersion, id, requiredBy);
    }
    const spec = (root.range ?? '').trim();
    const key = `${lowerId}|${spec}`;
    if (requested.has(key)) return;
    requested.add(key);
    const label = `${id}@${spec === '' ? '*' : spec}`;
    if (!spec.includes('*') && !parseRange(spec)) return void fail({ package: label, reason: 'not a valid version range', ...by });
    spawn(async () => {
      let listed: string[] | undefined;
      try {
        listed = await listOf(lowerId);
      } catch (err) {
        return void fail({ package: label, reason: reasonOf(err), ...by });
      }
      if (!listed || listed.length === 0) return void fail({ package: label, reason: notFound(lowerId), ...by });
      const chosen = pickVersion(spec, listed);
      if (!chosen) {
        const shown = listed.length > 8 ? `${listed.slice(0, 4).join(', ')}, …, ${listed.slice(-3).join(', ')}` : listed.join(', ');
        return void fail({ package: label, reason: `no listed version satisfies it (available: ${shown})`, ...by });
      }
      visit(lowerId, chosen, id, requiredBy);
    });
  };

  if (opts.vulnerabilities !== false) {
    spawn(() =>
      limit(async () => {
        try {
          const index = await feed.vulnerabilityIndex();
          if (!index) return;
          for (const key of index.pages.keys()) {
            const slash = key.indexOf('/');
            spawn(() =>
              limit(async () => {
                try {
                  if (await feed.vulnerabilityPage(key.slice(0, slash), key.slice(slash + 1))) metadata.vulnerabilityPages++;
                } catch (err) {
                  fail({ package: 'vulnerability data', reason: reasonOf(err) });
                }
              }),
            );
          }
        } catch (err) {
          fail({ package: 'vulnerability data', reason: reasonOf(err) });
        }
      }),
    );
  }
  for (const root of roots) request(root);
  while (tasks.size > 0) await Promise.all([...tasks]);

  closure.sort((a, b) => {
    const byId = a.id.toLowerCase() < b.id.toLowerCase() ? -1 : a.id.toLowerCase() > b.id.toLowerCase() ? 1 : 0;
    return byId || compareVersions(parseVersion(a.version)!, parseVersion(b.version)!);
  });
  failedPackages = visited.size - closure.length;
  return {
    roots: roots.length,
    packages: {
      resolved: visited.size,
      downloaded: closure.filter((p) => p.status === 'downloaded').length,
      cached: closure.filter((p) => p.status === 'cached').length,
      failed: failedPackages,
    },
    bytesDownloaded,
    bytesCached,
    durationMs: Math.round(performance.now() - started),
    metadata,
    closure,
    failures,
  };
}

function normalizeOrSelf(version: string): string {
  const v = parseVersion(version);
  return v ? normalizeVersion(v) : version;
}

// ---------------------------------------------------------------------------------------------------------------
// The command

export const WARM_USAGE = `Usage: nuproxy warm [options] <input>...

Fetches into the cache every package (and the metadata a restore asks for) of the dependency closure of the
inputs, resolved against the configured upstreams. Running it again fetches no package twice.

Inputs (files or folders):
  packages.lock.json            every resolved package of every target framework
  obj/project.assets.json       every library of type "package"
  Directory.Packages.props      every PackageVersion / GlobalPackageReference
  *.csproj, *.fsproj, *.vbproj  PackageReference / PackageDownload (versions from Directory.Packages.props
                                when the project has none)
  a text file                   one "id@version", "id@[range]" or "id@1.*" per line; # comments
  a folder                      its packages.lock.json, else obj/project.assets.json, else its project files,
                                else its Directory.Packages.props

Options:
  --concurrency N       package downloads (and metadata requests) at once (default 8)
  --tfm MONIKER         follow only the dependency group NuGet picks for this target framework (repeatable);
                        default: every group of every framework, a superset of what any restore needs
  --no-vulnerabilities  do not warm the vulnerability index and pages
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
    for (const f of s.failures) lines.push(`  ${f.package}: ${f.reason}${f.requiredBy ? ` (required by ${f.requiredBy})` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

export const warmCommand: CliCommand = async (args, ctx) => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        concurrency: { type: 'string' },
        tfm: { type: 'string', multiple: true },
        'no-vulnerabilities': { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        json: { type: 'boolean' },
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

  let roots: WarmRoot[];
  try {
    roots = await readWarmInputs(inputs, ctx.cwd);
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
      tfms: values.tfm ?? [],
      vulnerabilities: values['no-vulnerabilities'] !== true,
      onProgress: (p) => {
        last = p;
        reporter?.update(p);
      },
    });
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
  };
}
