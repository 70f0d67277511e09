import { LRUCache } from 'lru-cache';
import type { IdScope } from '../protocol/id-scope.js';
import { scopedVulnerabilityPage } from '../protocol/vulnerability.js';
import { answerKey } from './cache-keys.js';
import { cacheAnswer, mergedAnswer, type DocAnswer } from './doc-answer.js';
import { checkFailures, fanOut, versionOf, type Contribution } from './fan-out.js';
import { withCapability, type FeedContext } from './feed-context.js';
import { contentVersion } from './local-feed.js';
import { orLocal } from './or-local.js';

type Json = Record<string, unknown>;

/**
 * Scoped pages kept (issue #15): a page can hold every advisory of a feed (megabytes), so each filtered copy is
 * built once per (page version, scope) and kept in a small LRU bounded by size too. A filtered copy holds only a
 * scope's ids, so it is small (kilobytes); one larger than the whole bound is not kept (built per request).
 * Outside cache.memoryMaxMB's shares (config/memory-budget.ts): 4 MB at most, whatever the budget.
 */
const SCOPED_PAGES = { max: 32, maxSize: 4 * 1024 * 1024 };

interface ScopedPage {
  body: string;
  version: string;
}

/** The combined index, with where each of its pages comes from. */
export type VulnerabilityIndex = DocAnswer & { pages: Map<string, { upstream: string; url: string }> };

/**
 * Vulnerability documents: every upstream's index combined, with page names prefixed by upstream (§6.3), and
 * their pages. Stored on disk too, and served from there offline or when the upstreams fail.
 */
export class Vulnerabilities {
  private readonly scopedPages = new LRUCache<string, ScopedPage>({ ...SCOPED_PAGES, sizeCalculation: (p) => p.body.length + 64 });

  constructor(private readonly ctx: FeedContext) {}

  /** Every upstream's vulnerability index combined (upstreams only). */
  async index(): Promise<VulnerabilityIndex | undefined> {
    const names = await withCapability(this.ctx, (c) => c.vulnerability);
    if (names.length === 0) return undefined;
    const g = await fanOut(names, (name) => this.ctx.upstream(name).vulnerabilityIndex());
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
    return { ...mergedAnswer(this.ctx.log, answerKey.vulnerabilityIndex, JSON.stringify(entries), versionOf(g), false, g), pages };
  }

  /** The combined index, from the upstreams (and then kept on disk) or from the disk. */
  async stored(): Promise<DocAnswer | undefined> {
    const r = await orLocal(this.ctx.log, this.index(), () => this.ctx.local.vulnerabilityIndex(), undefined);
    if (!r) return undefined;
    if (r.from === 'cache') return cacheAnswer(answerKey.vulnerabilityIndex, r.value, false, r.outcome);
    void this.ctx.local.storeVulnerability('index.json', r.value.body).catch(() => undefined);
    return r.value;
  }

  /** One page; with a `scope`, only the ids it allows (see scopedPage). */
  async page(name: string, tag: string, scope?: IdScope): Promise<DocAnswer | undefined> {
    if (scope) return this.scopedPage(name, tag, scope);
    const r = await orLocal(this.ctx.log, this.fromUpstream(name, tag), () => this.ctx.local.vulnerabilityPage(name, tag), undefined);
    if (!r) return undefined;
    if (r.from === 'cache') return cacheAnswer(answerKey.vulnerabilityPage(name, tag), r.value, false, r.outcome);
    void this.ctx.local.storeVulnerability({ name, tag }, r.value.body).catch(() => undefined);
    return r.value;
  }

  private async fromUpstream(name: string, tag: string): Promise<DocAnswer | undefined> {
    const c = await this.upstreamPage(name, tag);
    if (!c) return undefined;
    return { key: answerKey.vulnerabilityPage(name, tag), body: JSON.stringify(c.value), version: c.version, gzip: false, outcome: c.outcome, upstreams: [c.upstream], partial: [] };
  }

  /** The page as its upstream gave it (parsed once and kept by upstream-docs.ts), if the index lists it. */
  private async upstreamPage(name: string, tag: string): Promise<Extract<Contribution<Json>, { kind: 'ok' }> | undefined> {
    const index = await this.index();
    const page = index?.pages.get(`${name}/${tag}`);
    if (!page) return undefined;
    const c = await this.ctx.upstream(page.upstream).vulnerabilityPage(page.url, name, tag);
    return c.kind === 'ok' ? c : undefined;
  }

  /**
   * A page filtered to the ids `scope` allows, from the upstream (or the disk when the upstreams fail, like the
   * unscoped page). Each (page version, scope) is filtered once and kept (scopedPages); a request parses the page
   * at most once (the upstream's is already parsed; the disk's is parsed only when its filtered copy is not
   * kept). The disk keeps the whole page, never a filtered one: it is written when a filtered copy is built.
   */
  private async scopedPage(name: string, tag: string, scope: IdScope): Promise<DocAnswer | undefined> {
    const key = answerKey.vulnerabilityPage(name, tag, scope);
    const r = await orLocal(this.ctx.log, this.upstreamPage(name, tag), () => this.ctx.local.vulnerabilityPage(name, tag), undefined);
    if (!r) return undefined;
    if (r.from === 'cache') {
      const p = this.filtered(`disk:${name}/${tag}@${contentVersion(r.value)}`, scope, () => JSON.parse(r.value) as unknown, undefined);
      return { key, body: p.body, version: p.version, gzip: false, outcome: r.outcome, upstreams: [], partial: [] };
    }
    const c = r.value;
    const p = this.filtered(`${c.upstream}:${name}/${tag}@${c.version}`, scope, () => c.value, () => {
      void this.ctx.local.storeVulnerability({ name, tag }, JSON.stringify(c.value)).catch(() => undefined);
    });
    return { key, body: p.body, version: p.version, gzip: false, outcome: c.outcome, upstreams: [c.upstream], partial: [] };
  }

  /** The kept filtered copy of the page `source` names, or one built now from `doc()` (then `built()` runs). */
  private filtered(source: string, scope: IdScope, doc: () => unknown, built: (() => void) | undefined): ScopedPage {
    const memoKey = `${source}|${scope.key}`;
    let p = this.scopedPages.get(memoKey);
    if (!p) {
      p = { body: JSON.stringify(scopedVulnerabilityPage(doc(), (lowerId) => scope.allows(lowerId))), version: memoKey };
      this.scopedPages.set(memoKey, p);
      built?.();
    }
    return p;
  }
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
