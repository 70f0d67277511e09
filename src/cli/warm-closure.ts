// (Over 300 lines: one walk whose steps (metadata, dependency groups, version choice, fetch) share its state.)
// The walk behind `nuproxy warm`: from the roots to every package (and the metadata) a restore of them needs.
import { PassThrough } from 'node:stream';
import type { Core } from '../app.js';
import type { StoredFile } from '../feed/packages.js';
import { dependenciesFor, parseNuspecDependencies } from '../protocol/nuspec.js';
import { parseRange } from '../protocol/range.js';
import { compareVersions, lowerNormalizedVersion, normalizeVersion, parseVersion } from '../protocol/version.js';
import { collect, createLimit, drain, pickVersion, reasonOf } from './warm-support.js';
import type { WarmRoot } from './warm-roots.js';
import { isNuproxyError, type NuproxyError } from '../errors.js';

export interface WarmOptions {
  /** Package fetches (and metadata requests) under way at once; default 8. */
  concurrency?: number;
  /**
   * Target frameworks whose nearest dependency group is followed. Empty (the default): every group of every
   * framework, which over-approximates the closure (nothing a restore could need is missed).
   */
  tfms?: readonly string[];
  /**
   * Also follow the dependencies of locked roots (lock and assets files, which list their closure already) over
   * every group: the every-framework superset. What only this reaches is optional: a package that cannot be had
   * is reported in `optional`, not as a failure (no restore of the frameworks the file names needs it).
   */
  allFrameworks?: boolean;
  /** Also warm the vulnerability index and pages (default true). */
  vulnerabilities?: boolean;
  /** Called whenever a package finishes or bytes arrive. */
  onProgress?: (p: WarmProgress) => void;
}

/** How far a run has got, for a progress bar. */
export interface WarmProgress {
  /** Packages finished (fetched, found cached, or failed). */
  done: number;
  /** Packages known so far (grows as dependencies are discovered). */
  total: number;
  /** Bytes downloaded from upstreams so far. */
  bytes: number;
}

/** One package the run warmed. */
export interface WarmPackage {
  id: string;
  version: string;
  /** 'downloaded': fetched from an upstream by this run; 'cached': the cache already had it. */
  status: 'downloaded' | 'cached';
  /** Size of the .nupkg. */
  bytes: number;
}

/** Something the run could not warm, and why. */
export interface WarmFailure {
  /** What failed: "id@version", "id@range", an id (its metadata), or "vulnerability data". */
  package: string;
  reason: string;
  /** The package whose dependency this was ("id@version"); absent for roots. */
  requiredBy?: string;
}

/** What a run did (printed by the command, as text or JSON). */
export interface WarmSummary {
  roots: number;
  packages: {
    /** Distinct id@version visited. */
    resolved: number;
    downloaded: number;
    cached: number;
    /** Packages a restore of the inputs needs that could not be warmed. */
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
  /** What a restore of the inputs needs and could not be warmed: the run failed (exit 1). */
  failures: WarmFailure[];
  /** What only --all-frameworks asked for (no restore of the frameworks the inputs name needs it) and could not be warmed. */
  optional: WarmFailure[];
  /**
   * Versions the supply-chain policy blocks (issue #16), skipped like the feed skips them: a range resolves to the
   * newest allowed version (the blocked one a range would have picked is listed here), a pinned one is not
   * fetched. Not failures: the proxy would refuse them to a restore too, with the same rule.
   */
  blocked: WarmBlocked[];
}

/** A version the policy kept out of the run, and why. */
export interface WarmBlocked {
  /** "id@version" (or "id@range" when no allowed version satisfies the range). */
  package: string;
  rule: string;
  reason: string;
  requiredBy?: string;
}

/** Why something is warmed: not at all, only for --all-frameworks, or because a restore of the inputs needs it. */
const NONE = 0;
const EXTRA = 1;
const NEEDED = 2;
type Need = typeof NONE | typeof EXTRA | typeof NEEDED;

/** One id@version of the walk. `follow`: the need its dependencies are warmed with (NONE: they are not). */
interface Node {
  lowerId: string;
  lowerVersion: string;
  id: string;
  requiredBy: string | undefined;
  need: Need;
  follow: Need;
  /** Its dependencies, once its nuspec was read, and the "id@version" they are required by. */
  deps?: { roots: WarmRoot[]; by: string };
  warmed: boolean;
  /** The policy refused it (it is in `blocked`, not a failure). */
  blocked?: boolean;
}

/** One id@range of the walk, and the node it resolved to. */
interface RangeRequest {
  need: Need;
  follow: Need;
  chosen?: Node;
}

const max = (a: Need, b: Need): Need => (a > b ? a : b);

/** An id's versions for the walk: what the policy allows, what it blocks (and why), and both (ranges are told which it skipped). */
interface Listed {
  allowed: string[];
  blocked: NonNullable<Awaited<ReturnType<Core['feed']['allowedVersions']>>>['blocked'];
  all: string[];
}

function sortedVersions(vs: readonly string[]): string[] {
  return [...vs].sort((a, b) => compareVersions(parseVersion(a)!, parseVersion(b)!));
}

/**
 * Resolves the dependency closure of the roots against the feed and fetches every package file (.nupkg and
 * .nuspec) into the cache, with the metadata a restore asks for (version lists, registration indexes, and
 * vulnerability data). Locked roots (lock and assets files) are fetched as listed; their dependencies are not
 * resolved again unless `allFrameworks`. Failures are collected, never thrown: one missing package does not stop
 * the rest. A package reached several ways is warmed once, with the strongest need of them (so a package both a
 * lock file and --all-frameworks reach is needed, and its failure is a failure).
 */
export async function warm(core: Pick<Core, 'feed'>, roots: readonly WarmRoot[], opts: WarmOptions = {}): Promise<WarmSummary> {
  const started = performance.now();
  const { feed } = core;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 8));
  const tfms = opts.tfms ?? [];
  const limit = createLimit(concurrency);

  /** Each failure with how needed its subject is when the run ends (a need can still rise after it failed). */
  const failures: { f: WarmFailure; need: () => Need }[] = [];
  const closure: WarmPackage[] = [];
  const metadata = { versionLists: 0, registrations: 0, vulnerabilityPages: 0 };
  let bytesDownloaded = 0;
  let bytesCached = 0;
  let done = 0;

  const nodes = new Map<string, Node>(); // lowerId@lowerVersion
  const ranges = new Map<string, RangeRequest>(); // lowerId|range
  const idNeed = new Map<string, Need>();
  const lists = new Map<string, Promise<Listed | undefined>>();
  const blocked: WarmBlocked[] = [];

  const tasks = new Set<Promise<void>>();
  const spawn = (fn: () => Promise<void>): void => {
    const p: Promise<void> = fn()
      .catch((err: unknown) => fail({ package: '(warm)', reason: `internal error: ${reasonOf(err)}` }, () => NEEDED))
      .finally(() => tasks.delete(p));
    tasks.add(p);
  };
  const progress = (): void => opts.onProgress?.({ done, total: nodes.size, bytes: bytesDownloaded });
  const onBytes = (n: number): void => {
    bytesDownloaded += n;
    progress();
  };
  const fail = (f: WarmFailure, need: () => Need): void => void failures.push({ f, need });

  const notFound = (lowerId: string): string =>
    feed.route(lowerId).allowed.length === 0 ? 'no upstream may serve this id (include/exclude rules)' : 'not found on any allowed upstream';

  /** The merged version list of an id without what the policy blocks, and every version (one request per id, shared). */
  const listOf = (lowerId: string): Promise<Listed | undefined> => {
    let p = lists.get(lowerId);
    if (!p) {
      p = limit(async () => {
        const m = await feed.allowedVersions(lowerId);
        return m && { allowed: m.versions, blocked: m.blocked, all: m.blocked.size ? [...m.versions, ...m.blocked.keys()] : m.versions };
      });
      lists.set(lowerId, p);
    }
    return p;
  };

  /** What a restore asks about an id besides its packages: the version list and the registration index (once per id). */
  const warmMetadata = (lowerId: string, id: string): void => {
    const need = (): Need => idNeed.get(lowerId) ?? NEEDED;
    const each = (what: string, fetch: () => Promise<unknown>, counted: () => void): void =>
      spawn(() =>
        limit(async () => {
          try {
            if (await fetch()) counted();
          } catch (err) {
            // every version blocked: the ranges and versions asked for say so (summary.blocked), not the metadata
            if (isNuproxyError(err, 'BLOCKED_BY_POLICY')) return;
            fail({ package: id, reason: `${what}: ${reasonOf(err)}` }, need);
          }
        }),
      );
    each('version list', () => feed.versions(lowerId), () => metadata.versionLists++);
    each('registration', () => feed.registrationIndex('semver2', lowerId), () => metadata.registrations++);
  };

  /** Raises a node's need; dependencies it already read are requested again when they are now followed further. */
  const raise = (node: Node, need: Need, follow: Need): void => {
    node.need = max(node.need, need);
    if (follow <= node.follow) return;
    node.follow = follow;
    if (node.deps) for (const d of node.deps.roots) request(d, follow, follow, node.deps.by);
  };

  const fetchPackage = async (node: Node): Promise<void> => {
    const { lowerId, lowerVersion, id, requiredBy } = node;
    const label = `${id}@${lowerVersion}`;
    const by = requiredBy !== undefined ? { requiredBy } : {};
    const need = (): Need => node.need;
    const [nuspec, nupkg] = await Promise.allSettled([
      (async () => {
        const h = await feed.openPackage(lowerId, lowerVersion, 'nuspec', 'GET');
        if (!h) return undefined;
        if (h.kind === 'file') return { text: (h.bytes ?? (await storedBytes(h))).toString('utf8'), fetched: false };
        if (h.kind === 'stream') return { text: (await collect(h.stream, onBytes)).toString('utf8'), fetched: true };
        if (h.kind === 'bytes') {
          onBytes(h.bytes.length);
          return { text: h.bytes.toString('utf8'), fetched: true };
        }
        throw new Error('unexpected HEAD answer');
      })(),
      (async () => {
        const h = await feed.openPackage(lowerId, lowerVersion, 'nupkg', 'GET');
        if (!h) return undefined;
        if (h.kind === 'file') return { size: h.info.size, fetched: false };
        if (h.kind === 'stream') return { size: await drain(h.stream, onBytes), fetched: true };
        if (h.kind === 'bytes') {
          onBytes(h.bytes.length);
          return { size: h.bytes.length, fetched: true };
        }
        throw new Error('unexpected HEAD answer');
      })(),
    ]);
    const refused = [nupkg, nuspec].find((r) => r.status === 'rejected' && isNuproxyError(r.reason, 'BLOCKED_BY_POLICY'));
    if (refused?.status === 'rejected') {
      node.blocked = true;
      const e = refused.reason as NuproxyError;
      return void blocked.push({ package: label, rule: String(e.details.rule), reason: String(e.details.reason ?? e.message), ...by });
    }
    if (nupkg.status === 'rejected') return fail({ package: label, reason: reasonOf(nupkg.reason), ...by }, need);
    if (nuspec.status === 'rejected') return fail({ package: label, reason: `.nuspec: ${reasonOf(nuspec.reason)}`, ...by }, need);
    if (!nupkg.value) return fail({ package: label, reason: notFound(lowerId), ...by }, need);
    let parsed: ReturnType<typeof parseNuspecDependencies> | undefined;
    if (nuspec.value) {
      try {
        parsed = parseNuspecDependencies(nuspec.value.text);
      } catch (err) {
        fail({ package: label, reason: `.nuspec: ${reasonOf(err)}`, ...by }, need);
      }
    } else {
      fail({ package: label, reason: '.nuspec: not found on the upstream that serves the package', ...by }, need);
    }
    const status = nupkg.value.fetched || nuspec.value?.fetched ? 'downloaded' : 'cached';
    if (status === 'cached') bytesCached += nupkg.value.size;
    const shownId = parsed && parsed.id.toLowerCase() === lowerId ? parsed.id : id;
    const version = parsed && lowerNormalizedVersion(parsed.version) === lowerVersion ? normalizeOrSelf(parsed.version) : lowerVersion;
    closure.push({ id: shownId, version, status, bytes: nupkg.value.size });
    node.warmed = true;
    if (!parsed) return;
    node.deps = { roots: dependenciesFor(parsed.groups, tfms).map((d) => ({ id: d.id, range: d.range })), by: `${shownId}@${version}` };
    if (node.follow > NONE) for (const d of node.deps.roots) request(d, node.follow, node.follow, node.deps.by);
  };

  const visit = (lowerId: string, lowerVersion: string, id: string, requiredBy: string | undefined, need: Need, follow: Need): Node => {
    const key = `${lowerId}@${lowerVersion}`;
    const had = nodes.get(key);
    if (had) {
      raise(had, need, follow);
      return had;
    }
    const node: Node = { lowerId, lowerVersion, id, requiredBy, need, follow, warmed: false };
    nodes.set(key, node);
    progress();
    spawn(() =>
      limit(async () => {
        try {
          await fetchPackage(node);
        } finally {
          done++;
          progress();
        }
      }),
    );
    return node;
  };

  const request = (root: WarmRoot, need: Need, follow: Need, requiredBy?: string): void => {
    const by = requiredBy !== undefined ? { requiredBy } : {};
    const id = root.id.trim();
    const lowerId = id.toLowerCase();
    const firstOfId = !idNeed.has(lowerId);
    idNeed.set(lowerId, max(idNeed.get(lowerId) ?? NONE, need));
    if (firstOfId) warmMetadata(lowerId, id);
    if (root.version !== undefined) {
      const lowerVersion = lowerNormalizedVersion(root.version);
      if (!lowerVersion) return fail({ package: `${id}@${root.version}`, reason: 'not a valid version', ...by }, () => need);
      visit(lowerId, lowerVersion, id, requiredBy, need, follow);
      return;
    }
    const spec = (root.range ?? '').trim();
    const key = `${lowerId}|${spec}`;
    const had = ranges.get(key);
    if (had) {
      had.need = max(had.need, need);
      had.follow = max(had.follow, follow);
      if (had.chosen) raise(had.chosen, had.need, had.follow);
      return;
    }
    const r: RangeRequest = { need, follow };
    ranges.set(key, r);
    const label = `${id}@${spec === '' ? '*' : spec}`;
    const rangeNeed = (): Need => r.need;
    if (!spec.includes('*') && !parseRange(spec)) return fail({ package: label, reason: 'not a valid version range', ...by }, rangeNeed);
    spawn(async () => {
      let lists: Listed | undefined;
      try {
        lists = await listOf(lowerId);
      } catch (err) {
        return fail({ package: label, reason: reasonOf(err), ...by }, rangeNeed);
      }
      if (!lists || lists.all.length === 0) return fail({ package: label, reason: notFound(lowerId), ...by }, rangeNeed);
      const listed = lists.allowed;
      const chosen = listed.length ? pickVersion(spec, listed) : undefined;
      // the version the range picks without the policy, when the policy blocks it: said, then skipped
      const unblocked = lists.blocked.size ? pickVersion(spec, sortedVersions(lists.all)) : undefined;
      const skipped = unblocked !== undefined ? lists.blocked.get(unblocked) : undefined;
      if (skipped) {
        const rule = skipped.rule ?? 'unknown';
        if (!chosen) return void blocked.push({ package: label, rule, reason: `no version the policy allows satisfies it; ${id}@${unblocked} is blocked: ${skipped.reason ?? rule}`, ...by });
        blocked.push({ package: `${id}@${unblocked}`, rule, reason: `${skipped.reason ?? rule} (${spec === '' ? '*' : spec} resolved to ${chosen} instead)`, ...by });
      }
      if (!chosen) {
        const shown = listed.length > 8 ? `${listed.slice(0, 4).join(', ')}, …, ${listed.slice(-3).join(', ')}` : listed.join(', ');
        return fail({ package: label, reason: `no listed version satisfies it (available: ${shown})`, ...by }, rangeNeed);
      }
      r.chosen = visit(lowerId, chosen, id, requiredBy, r.need, r.follow);
    });
  };

  if (opts.vulnerabilities !== false) warmVulnerabilities(feed, spawn, limit, metadata, (f) => fail(f, () => NEEDED));
  const lockedFollow: Need = opts.allFrameworks ? EXTRA : NONE;
  for (const root of roots) request(root, NEEDED, root.locked ? lockedFollow : NEEDED);
  while (tasks.size > 0) await Promise.all([...tasks]);

  closure.sort((a, b) => {
    const byId = a.id.toLowerCase() < b.id.toLowerCase() ? -1 : a.id.toLowerCase() > b.id.toLowerCase() ? 1 : 0;
    return byId || compareVersions(parseVersion(a.version)!, parseVersion(b.version)!);
  });
  const all = [...nodes.values()];
  return {
    roots: roots.length,
    packages: {
      resolved: nodes.size,
      downloaded: closure.filter((p) => p.status === 'downloaded').length,
      cached: closure.filter((p) => p.status === 'cached').length,
      failed: all.filter((n) => !n.warmed && !n.blocked && n.need === NEEDED).length,
    },
    bytesDownloaded,
    bytesCached,
    durationMs: Math.round(performance.now() - started),
    metadata,
    closure,
    failures: failures.filter((x) => x.need() === NEEDED).map((x) => x.f),
    optional: failures.filter((x) => x.need() !== NEEDED).map((x) => x.f),
    blocked,
  };
}

/** The vulnerability index and each of its pages (what an audit asks for), counted into `metadata`. */
function warmVulnerabilities(
  feed: Core['feed'],
  spawn: (fn: () => Promise<void>) => void,
  limit: ReturnType<typeof createLimit>,
  metadata: WarmSummary['metadata'],
  fail: (f: WarmFailure) => void,
): void {
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

function normalizeOrSelf(version: string): string {
  const v = parseVersion(version);
  return v ? normalizeVersion(v) : version;
}

/** A stored file's bytes, sent by the store through its handle (no path is known up here). */
function storedBytes(h: StoredFile): Promise<Buffer> {
  const sink = new PassThrough();
  h.send(sink, 0, h.info.size - 1);
  return collect(sink, () => undefined);
}
