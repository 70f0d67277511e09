import { LRUCache } from 'lru-cache';
import type { BlobStore } from '../cache/blob-store.js';
import { NuproxyError } from '../errors.js';
import { AnswerMemo } from './answer-memo.js';
import type { Logger } from '../log.js';
import type { IdRouter, IdRouting } from '../protocol/id-rules.js';
import { buildServiceIndex, capabilitiesOf, type ProxyCapabilities } from '../protocol/service-index.js';
import type { HiveName } from '../protocol/service-types.js';
import { REGISTRATION_HIVES } from '../protocol/service-types.js';
import { isSemVer2, lowerNormalizedVersion, parseVersion } from '../protocol/version.js';
import { buildRegistration, leafDocument, synthesizeLeaf, type BuiltRegistration } from './merge-registration.js';
import { mergeVersionLists, type MergedVersions } from './merge-versions.js';
import { checkFailures, combinedOutcome, fanOut, versionOf, type Contribution, type Gathered } from './fan-out.js';
import { MergedSearch } from './merged-search.js';
import { LARGE_LEAVES, yieldTurn } from './sliced-json.js';
import type { CacheOutcome, MetadataCache } from './metadata-cache.js';
import type { Asker, PackageFiles, PackageFile, PackageHandle, PackageSource } from './packages.js';
import { UpstreamDocs, type LeafSet } from './upstream-docs.js';
import { LocalFeed, contentVersion } from './local-feed.js';
import { isUpstreamFailure } from '../errors.js';
import { Publisher, type PublishOptions } from './publish.js';
import type { UpstreamSource } from './upstream-source.js';

/** A metadata answer: the stored body (placeholder base, see protocol/urls.ts) and how it was obtained. */
export interface DocAnswer {
  key: string;
  body: string;
  /** Changes whenever the body may have changed (render caches key on it). */
  version: string;
  gzip: boolean;
  outcome: CacheOutcome;
  /** Upstreams whose data the answer holds. */
  upstreams: string[];
  /** Upstreams that failed and are missing from this answer (it is then not cached and marked). */
  partial: string[];
}

/** Capabilities advertised when no upstream index is known at all (first start with upstreams unreachable). */
const FALLBACK_CAPS: ProxyCapabilities = {
  hives: [],
  search: false,
  searchPackageType: false,
  autocomplete: false,
  autocompletePackageType: false,
  vulnerability: false,
};

/** All three hives, with nuget.org's types: merged registration is rebuilt by the proxy, whatever the upstreams have. */
const ALL_HIVES = REGISTRATION_HIVES.map((h) => ({
  name: h.name,
  types: h.types.map((type) => (type === 'RegistrationsBaseUrl/Versioned' ? { type, clientVersion: '4.3.0-alpha' } : { type })),
}));

/** gzip-encoded hives, as on nuget.org (§3.1); the plain SemVer 1 hive is identity. */
const GZIP_HIVES = new Set<string>(['semver2', 'gz-semver1']);

/**
 * The decisions: which upstreams may answer for an id, how their answers merge into one, how long answers stay
 * fresh. Routes call this; it calls the per-upstream document sources and the package store.
 */
export class Feed {
  private readonly byName = new Map<string, UpstreamSource>();
  private readonly docs: UpstreamDocs;
  private readonly built = new LRUCache<string, BuiltRegistration>({ max: 500 });
  private readonly mergedMemo = new LRUCache<string, MergedVersions>({ max: 5000 });
  private readonly answers: AnswerMemo;

  readonly publisher: Publisher;
  /** Offline mode: no upstream is ever asked; answers come from the disk cache alone. */
  readonly offline: boolean;
  private readonly local: LocalFeed;
  private readonly merged: MergedSearch;

  constructor(
    private readonly upstreams: readonly UpstreamSource[],
    cache: MetadataCache,
    readonly packages: PackageFiles,
    private readonly router: IdRouter,
    publish: PublishOptions,
    private readonly log: Logger,
    local: { offline: boolean; blobs: BlobStore; answerMaxAgeMs?: number },
  ) {
    this.offline = local.offline;
    this.answers = new AnswerMemo(() => cache.now(), local.offline ? 0 : (local.answerMaxAgeMs ?? Infinity));
    // store keys end in the id they describe ("flat:{upstream}:{id}", "reg:{upstream}:{hive}:{id}")
    cache.onChange((key) => this.answers.forget(key.slice(key.lastIndexOf(':') + 1)));
    this.local = new LocalFeed(packages, local.blobs);
    this.publisher = new Publisher(
      local.offline ? undefined : upstreams.find((u) => u.writable), // offline: read-only
      publish,
      (lowerId) => this.invalidate(lowerId),
      log.child({ component: 'publish' }),
    );
    if (upstreams.length === 0) throw new NuproxyError('CONFIG_INVALID', 'at least one upstream is required');
    for (const u of upstreams) this.byName.set(u.name, u);
    this.docs = new UpstreamDocs(cache);
    this.merged = new MergedSearch({
      upstreams: upstreams.map((u) => u.name),
      router,
      docs: this.docs,
      local: this.local,
      source: (name) => this.source(name),
      withCapability: (pick) => this.withCapability(pick),
      answer: (key, body, version, gzip, g) => this.answer(key, body, version, gzip, g),
    });

  }

  upstreamHealth(): { name: string; writable: boolean; circuit: ReturnType<UpstreamSource['client']['health']> }[] {
    return this.upstreams.map((u) => ({ name: u.name, writable: u.writable, circuit: u.client.health() }));
  }

  get writableName(): string | undefined {
    return this.upstreams.find((u) => u.writable)?.name;
  }

  /** Drops every cached answer about an id, from every upstream (after a push, delete or relist). */
  async invalidate(lowerId: string): Promise<void> {
    await this.docs.invalidate(
      this.upstreams.map((u) => u.name),
      lowerId,
    );
  }

  route(lowerId: string): IdRouting {
    return this.router.route(lowerId);
  }

  private source(name: string): UpstreamSource {
    return this.byName.get(name)!;
  }

  async serviceIndex(): Promise<DocAnswer> {
    if (this.offline) {
      const vulnerability = (await this.local.vulnerabilityIndex()) !== undefined;
      const caps: ProxyCapabilities = { hives: ALL_HIVES, search: true, searchPackageType: false, autocomplete: true, autocompletePackageType: false, vulnerability };
      const body = JSON.stringify(buildServiceIndex(caps));
      return { key: 'index', body, version: contentVersion(body), gzip: false, outcome: 'hit', upstreams: [], partial: [] };
    }
    const g = await fanOut(
      this.upstreams.map((u) => u.name),
      async (name): Promise<Contribution<ProxyCapabilities>> => {
        const r = await this.source(name).resources();
        return { upstream: name, kind: 'ok', value: capabilitiesOf(r.resources), outcome: r.outcome, version: '' };
      },
    );
    for (const f of g.failed) this.log.warn({ upstream: f.upstream, err: (f.error as Error).message }, 'no service index from upstream');
    const any = (pick: (c: ProxyCapabilities) => boolean): boolean => g.ok.some((c) => pick(c.value));
    const publish = this.publisher.enabled;
    const symbolPublish = publish && (await this.publisher.symbolsEnabled());
    const base: ProxyCapabilities = g.ok.length
      ? {
          hives: ALL_HIVES,
          // an upstream without search is searched over the cache (merged-search.ts): there is always a search
          search: true,
          searchPackageType: any((c) => c.searchPackageType),
          autocomplete: true,
          autocompletePackageType: any((c) => c.autocompletePackageType),
          vulnerability: any((c) => c.vulnerability),
        }
      : { ...FALLBACK_CAPS, hives: ALL_HIVES };
    const caps: ProxyCapabilities = { ...base, publish, symbolPublish };
    const body = JSON.stringify(buildServiceIndex(caps));
    return this.answer('index', body, body, false, g);
  }

  /** What every allowed upstream lists for an id (failures checked: an owner's failure throws). */
  private async gatherVersions(lowerId: string, revalidate: boolean): Promise<Gathered<string[]>> {
    const routing = this.router.route(lowerId);
    const g = await fanOut(routing.allowed, (name) => this.docs.versions(this.source(name), lowerId, revalidate));
    checkFailures(g, routing);
    for (const f of g.failed) this.log.warn({ id: lowerId, upstream: f.upstream, err: (f.error as Error).message }, 'upstream failed; version list is partial');
    return g;
  }

  /** The merged version list of an id, with the upstream that wins each version. */
  async mergedVersions(lowerId: string, opts: { revalidate?: boolean } = {}): Promise<(MergedVersions & { gathered: Gathered<string[]> }) | undefined> {
    const g = await this.gatherVersions(lowerId, opts.revalidate === true);
    if (g.ok.length === 0) return undefined;
    return { ...this.mergeLists(lowerId, g), gathered: g };
  }

  /** Merged lists, memoized by the versions of their inputs (a hot id is not merged and sorted again). */
  private mergeLists(lowerId: string, g: Gathered<string[]>): MergedVersions {
    const key = `${lowerId}\n${versionOf(g)}`;
    let merged = this.mergedMemo.get(key);
    if (!merged) {
      merged = mergeVersionLists(g.ok.map((c) => ({ upstream: c.upstream, versions: c.value })));
      this.mergedMemo.set(key, merged);
    }
    return merged;
  }

  async versions(lowerId: string): Promise<DocAnswer | undefined> {
    const kept = this.answers.get<DocAnswer>(lowerId, 'flat');
    if (kept) return kept;
    const stamp = this.answers.stamp();
    const merged = await this.orLocal(
      () => this.mergedVersions(lowerId),
      async () => {
        const versions = await this.local.versions(lowerId, this.allowedLocally());
        return versions.length ? versions : undefined;
      },
    );
    if (merged === undefined) return undefined;
    if (Array.isArray(merged)) return this.localAnswer(`flat:${lowerId}`, JSON.stringify({ versions: merged }), false);
    // the body is only built when the render cache does not hold this version of the answer
    const answer = lazyBody(this.answer(`flat:${lowerId}`, '', versionOf(merged.gathered), false, merged.gathered), () => JSON.stringify({ versions: merged.versions }));
    if (answer.outcome === 'hit' && answer.partial.length === 0) this.answers.set(lowerId, 'flat', answer, merged.gathered.freshUntil, stamp);
    return answer;
  }

  /**
   * Package files, in two steps. 1: what this process has (memory tier, store, a download under way) is served
   * without asking any upstream (offline, or with every upstream down). 2: a miss is fetched from the upstream
   * that wins the version in the merged list. An exact version the cached lists lack triggers one revalidation
   * of the id before the answer is 404 (a package published elsewhere shows up without waiting for the lists to
   * expire). A version missing while an allowed upstream failed is a 502, not a 404: "down" never looks like
   * "absent". Offline: only what is cached.
   */
  async openPackage(lowerId: string, lowerVersion: string, file: PackageFile, method: 'GET' | 'HEAD', asker?: Asker): Promise<PackageHandle | undefined> {
    const cached = await this.packages.cached(lowerId, lowerVersion, file, method, asker);
    if (cached || this.offline) return cached;
    let g = await this.gatherVersions(lowerId, false);
    let winner = winnerOf(g, lowerVersion);
    if (!winner && g.fromCache) {
      g = await this.gatherVersions(lowerId, true);
      winner = winnerOf(g, lowerVersion);
    }
    if (!winner) {
      const failed = g.failed[0];
      if (failed) throw failed.error;
      return undefined;
    }
    const source: PackageSource = this.source(winner);
    return this.packages.fetch(lowerId, lowerVersion, file, method, source, asker);
  }

  /**
   * The merged registration of an id in one hive; registration and flat container list the same versions.
   * `index`: its index answer, built once for a kept registration.
   */
  private async registration(hive: string, lowerId: string): Promise<{ built: BuiltRegistration; answer: Omit<DocAnswer, 'key' | 'body'>; index?: DocAnswer } | undefined> {
    if (!isHive(hive)) return undefined;
    type Merged = { built: BuiltRegistration; answer: Omit<DocAnswer, 'key' | 'body'>; freshUntil: number; index?: DocAnswer };
    const kept = this.answers.get<Merged>(lowerId, hive);
    if (kept) return kept;
    const stamp = this.answers.stamp();
    const r = await this.orLocal(
      () => this.mergedRegistration(hive, lowerId),
      async () => {
        const built = await this.local.registration(hive, lowerId, this.allowedLocally());
        return built ? { local: built } : undefined;
      },
    );
    if (!r) return r;
    if (!('local' in r)) {
      if (r.answer.outcome === 'hit' && r.answer.partial.length === 0) this.answers.set(lowerId, hive, r, r.freshUntil, stamp);
      return r;
    }
    const version = contentVersion(JSON.stringify(r.local.index));
    return { built: r.local, answer: { version, gzip: GZIP_HIVES.has(hive), outcome: this.offline ? 'hit' : 'stale', upstreams: [], partial: [] } };
  }

  private async mergedRegistration(hive: HiveName, lowerId: string): Promise<{ built: BuiltRegistration; answer: Omit<DocAnswer, 'key' | 'body'>; freshUntil: number; index?: DocAnswer } | undefined> {
    const routing = this.router.route(lowerId);
    // version lists and registration leaves are asked for at once: a cold answer costs the slowest upstream
    const [versions, g] = await Promise.all([
      this.gatherVersions(lowerId, false),
      fanOut(routing.allowed, (name) => this.docs.leaves(this.source(name), hive, lowerId)),
    ]);
    checkFailures(g, routing);
    if (versions.ok.length === 0) return undefined;
    // a large registration (issue #11: tens of thousands of leaves) gives the event loop a turn between the
    // steps of its merge; a normal one is merged in one synchronous step as before
    const large = g.ok.some((c) => c.value.leaves.length > LARGE_LEAVES);
    if (large) await yieldTurn();
    const merged = this.mergeLists(lowerId, versions);
    const key = `${hive}:${lowerId}:${versionOf(versions)}:${versionOf(g)}`;
    let built = this.built.get(key);
    if (!built) {
      if (large) await yieldTurn();
      const chosen = this.chooseLeaves(hive, lowerId, merged, g);
      if (large) await yieldTurn();
      built = buildRegistration(hive, lowerId, chosen, g.ok[0]?.value.extras ?? {});
      this.built.set(key, built);
    }
    const all = [...versions.ok, ...g.ok];
    return {
      built,
      freshUntil: Math.min(versions.freshUntil, g.freshUntil),
      answer: {
        version: key,
        gzip: GZIP_HIVES.has(hive),
        outcome: combinedOutcome(all.map((c) => c.outcome)),
        upstreams: [...new Set(all.map((c) => c.upstream))],
        partial: [...new Set([...versions.failed, ...g.failed].map((f) => f.upstream))],
      },
    };
  }

  /**
   * For every version of the merged list, the winning upstream's leaf: its listing, dependencies, deprecation and
   * vulnerabilities describe the bytes that upstream serves. Another upstream's leaf would describe other bytes,
   * so a version whose winner has no leaf gets a minimal one instead (SemVer 2 hive; the SemVer 1 hives leave it out).
   */
  private chooseLeaves(hive: HiveName, lowerId: string, merged: MergedVersions, g: Gathered<LeafSet>): Record<string, unknown>[] {
    const byUpstream = new Map(g.ok.map((c) => [c.upstream, new Map(c.value.leaves.map((leaf) => [leafVersionOf(leaf), leaf]))]));
    const idSpelling = firstIdSpelling(g) ?? lowerId;
    const chosen: Record<string, unknown>[] = [];
    let synthesized = 0;
    for (const v of merged.versions) {
      if (hive !== 'semver2' && isSemVer2(parseVersion(v)!)) continue;
      let leaf = byUpstream.get(merged.winners[v]!)?.get(v);
      if (!leaf && hive === 'semver2') {
        leaf = synthesizeLeaf(hive, lowerId, idSpelling, v);
        synthesized++;
      }
      if (leaf) chosen.push(leaf);
    }
    if (synthesized > 0) this.log.warn({ id: lowerId, hive, synthesized }, "the winning upstream's registration lacks versions its flat container lists; minimal leaves synthesized");
    return chosen;
  }

  async registrationIndex(hive: string, lowerId: string): Promise<DocAnswer | undefined> {
    const r = await this.registration(hive, lowerId);
    if (!r) return undefined;
    // kept with its registration: a hot index costs no answer object per request
    return (r.index ??= lazyBody({ key: `reg:${hive}:${lowerId}:index`, ...r.answer }, () => JSON.stringify(r.built.index)));
  }

  async registrationPage(hive: string, lowerId: string, lower: string, upper: string): Promise<DocAnswer | undefined> {
    const r = await this.registration(hive, lowerId);
    const page = r?.built.pages.get(`${lower}/${upper}`);
    if (!r || !page) return undefined;
    return lazyBody({ key: `reg:${hive}:${lowerId}:page:${lower}/${upper}`, ...r.answer }, () => JSON.stringify(page));
  }

  async registrationLeaf(hive: string, lowerId: string, lowerVersion: string): Promise<DocAnswer | undefined> {
    const r = await this.registration(hive, lowerId);
    const leaf = r?.built.leaves.get(lowerVersion);
    if (!r || !leaf) return undefined;
    return lazyBody({ key: `reg:${hive}:${lowerId}:leaf:${lowerVersion}`, ...r.answer }, () => JSON.stringify(leafDocument(hive, lowerId, lowerVersion, leaf)));
  }

  async search(rawQuery: string): Promise<DocAnswer | undefined> {
    const r = await this.orLocal(
      () => this.merged.search(rawQuery),
      async () => {
        const local = await this.local.search(new URLSearchParams(rawQuery), this.allowedLocally());
        return (local.data as unknown[]).length || this.offline ? { local } : undefined;
      },
    );
    if (!r || !('local' in r)) return r;
    return this.localAnswer(`search:${rawQuery}`, JSON.stringify(r.local), false);
  }

  async autocomplete(rawQuery: string): Promise<DocAnswer | undefined> {
    const r = await this.orLocal(
      () => this.merged.autocomplete(rawQuery),
      async () => {
        const local = await this.local.autocomplete(new URLSearchParams(rawQuery), this.allowedLocally());
        return (local.data as unknown[]).length || this.offline ? { local } : undefined;
      },
    );
    if (!r || !('local' in r)) return r;
    return this.localAnswer(`ac:${rawQuery}`, JSON.stringify(r.local), false);
  }

  /** Every upstream's vulnerability index combined, with page names prefixed by upstream (§6.3). */
  async vulnerabilityIndex(): Promise<(DocAnswer & { pages: Map<string, { upstream: string; url: string }> }) | undefined> {
    const names = await this.withCapability((c) => c.vulnerability);
    if (names.length === 0) return undefined;
    const g = await fanOut(names, (name) => this.docs.vulnerabilityIndex(this.source(name)));
    checkFailures(g);
    const entries: Record<string, unknown>[] = [];
    const pages = new Map<string, { upstream: string; url: string }>();
    for (const c of g.ok) {
      for (const e of c.value.entries) {
        if (entries.length >= 16) break;
        const name = uniqueName(`${slug(c.upstream)}-${e.name}`, pages);
        pages.set(`${name}/${e.tag}`, { upstream: c.upstream, url: e.url });
        entries.push({ ...e.entry, '@name': name, '@id': e.proxyUrl(name) });
      }
    }
    if (entries.length === 0) return undefined;
    return { ...this.answer('vuln:index', JSON.stringify(entries), versionOf(g), false, g), pages };
  }

  /** The combined vulnerability index; stored on disk too, and served from there offline or when upstreams fail. */
  async vulnerabilities(): Promise<DocAnswer | undefined> {
    const r = await this.orLocal(
      () => this.vulnerabilityIndex(),
      async () => {
        const body = await this.local.vulnerabilityIndex();
        return body === undefined ? undefined : { localBody: body };
      },
    );
    if (!r) return undefined;
    if ('localBody' in r) return this.localAnswer('vuln:index', r.localBody, false);
    void this.local.storeVulnerability('index.json', r.body).catch(() => undefined);
    return r;
  }

  async vulnerabilityPage(name: string, tag: string): Promise<DocAnswer | undefined> {
    const r = await this.orLocal(
      async () => {
        const index = await this.vulnerabilityIndex();
        const page = index?.pages.get(`${name}/${tag}`);
        if (!page) return undefined;
        const c = await this.docs.vulnerabilityPage(this.source(page.upstream), page.url, `${name}:${tag}`);
        if (c.kind !== 'ok') return undefined;
        const doc: DocAnswer = { key: `vuln:page:${name}:${tag}`, body: JSON.stringify(c.value), version: c.version, gzip: false, outcome: c.outcome, upstreams: [page.upstream], partial: [] };
        return doc;
      },
      async () => {
        const body = await this.local.vulnerabilityPage(name, tag);
        return body === undefined ? undefined : { localBody: body };
      },
    );
    if (!r) return undefined;
    if ('localBody' in r) return this.localAnswer(`vuln:page:${name}:${tag}`, r.localBody, false);
    void this.local.storeVulnerability({ name, tag }, r.body).catch(() => undefined);
    return r;
  }

  /**
   * Upstream answer first; the disk's own answer in offline mode, or when every upstream failed (the failure
   * is rethrown when the disk has nothing either: down never looks like absent).
   */
  private async orLocal<T, L>(online: () => Promise<T>, fromDisk: () => Promise<L | undefined>): Promise<T | L | undefined> {
    if (this.offline) return fromDisk();
    try {
      return await online();
    } catch (err) {
      if (!isUpstreamFailure(err)) throw err;
      const local = await fromDisk();
      if (local === undefined) throw err;
      this.log.warn({ err: (err as Error).message }, 'no upstream could answer: serving what the cache holds');
      return local;
    }
  }

  /**
   * Which cached packages the disk may answer with: those stored from an upstream the id rules allow for the id
   * today (an owned id never shows a copy another upstream supplied), and imported ones.
   */
  private allowedLocally(): (lowerId: string, upstream: string | undefined) => boolean {
    return (lowerId, upstream) => upstream === undefined || upstream === 'import' || this.router.route(lowerId).allowed.includes(upstream);
  }

  private localAnswer(key: string, body: string, gzip: boolean): DocAnswer {
    return { key, body, version: contentVersion(body), gzip, outcome: this.offline ? 'hit' : 'stale', upstreams: [], partial: [] };
  }

  /** Why an id is answered as it is: rules, what each upstream lists, and which upstream wins each version. */
  async explain(lowerId: string): Promise<Record<string, unknown>> {
    const routing = this.router.route(lowerId);
    const g = await fanOut(routing.allowed, (name) => this.docs.versions(this.source(name), lowerId, false));
    const merged = mergeVersionLists(g.ok.map((c) => ({ upstream: c.upstream, versions: c.value })));
    return {
      id: lowerId,
      owner: routing.owner ?? null,
      ownerPattern: routing.ownerPattern ?? null,
      rules: routing.decisions,
      upstreams: routing.decisions.map((d) => {
        const ok = g.ok.find((c) => c.upstream === d.upstream);
        const failed = g.failed.find((f) => f.upstream === d.upstream);
        return {
          name: d.upstream,
          allowed: d.allowed,
          status: !d.allowed ? 'not asked' : ok ? 'listed' : failed ? 'failed' : 'not found',
          ...(ok ? { versions: ok.value, cache: ok.outcome } : {}),
          ...(failed ? { error: (failed.error as Error).message } : {}),
        };
      }),
      versions: merged.versions.map((v) => ({ version: v, servedBy: merged.winners[v] })),
    };
  }

  private async withCapability(pick: (c: ProxyCapabilities) => boolean): Promise<string[]> {
    const out: string[] = [];
    await Promise.all(
      this.upstreams.map(async (u) => {
        try {
          if (pick(capabilitiesOf((await u.resources()).resources))) out.push(u.name);
        } catch {
          out.push(u.name); // unknown: ask it, and let the failure show as partial
        }
      }),
    );
    const order = this.upstreams.map((u) => u.name);
    return out.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  }

  private answer(key: string, body: string, version: string, gzip: boolean, g: Gathered<unknown>): DocAnswer {
    for (const f of g.failed) this.log.warn({ key, upstream: f.upstream, err: (f.error as Error).message }, 'upstream failed; answer is partial');
    return {
      key,
      body,
      version,
      gzip,
      outcome: combinedOutcome(g.ok.map((c) => c.outcome)),
      upstreams: g.ok.map((c) => c.upstream),
      partial: g.failed.map((f) => f.upstream),
    };
  }
}

/** An answer whose body is only built when somebody reads it (a render-cache hit never does). */
function lazyBody(answer: Omit<DocAnswer, 'body'>, build: () => string): DocAnswer {
  let body: string | undefined;
  return Object.defineProperty(answer, 'body', { enumerable: true, get: () => (body ??= build()) }) as DocAnswer;
}

function winnerOf(g: Gathered<string[]>, lowerVersion: string): string | undefined {
  for (const c of g.ok) if (c.value.includes(lowerVersion)) return c.upstream;
  return undefined;
}

function isHive(h: string): h is HiveName {
  return REGISTRATION_HIVES.some((x) => x.name === h);
}

function leafVersionOf(leaf: Record<string, unknown>): string {
  return lowerNormalizedVersion(String((leaf.catalogEntry as Record<string, unknown>).version)) ?? '';
}

function firstIdSpelling(g: Gathered<LeafSet>): string | undefined {
  for (const c of g.ok) {
    const ce = c.value.leaves[0]?.catalogEntry as Record<string, unknown> | undefined;
    if (typeof ce?.id === 'string') return ce.id;
  }
  return undefined;
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 20);
}

function uniqueName(name: string, taken: Map<string, unknown>): string {
  let base = name.slice(0, 32);
  const used = new Set([...taken.keys()].map((k) => k.split('/')[0]));
  for (let i = 2; used.has(base); i++) base = `${name.slice(0, 29)}-${i}`;
  return base;
}
