import { answerKey } from './cache-keys.js';
import { cacheAnswer, mergedAnswer, type DocAnswer } from './doc-answer.js';
import { checkFailures, fanOut, versionOf } from './fan-out.js';
import { withCapability, type FeedContext } from './feed-context.js';
import { orLocal } from './or-local.js';

/** The combined index, with where each of its pages comes from. */
export type VulnerabilityIndex = DocAnswer & { pages: Map<string, { upstream: string; url: string }> };

/**
 * Vulnerability documents: every upstream's index combined, with page names prefixed by upstream (§6.3), and
 * their pages. Stored on disk too, and served from there offline or when the upstreams fail.
 */
export class Vulnerabilities {
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

  async page(name: string, tag: string): Promise<DocAnswer | undefined> {
    const r = await orLocal(this.ctx.log, this.fromUpstream(name, tag), () => this.ctx.local.vulnerabilityPage(name, tag), undefined);
    if (!r) return undefined;
    if (r.from === 'cache') return cacheAnswer(answerKey.vulnerabilityPage(name, tag), r.value, false, r.outcome);
    void this.ctx.local.storeVulnerability({ name, tag }, r.value.body).catch(() => undefined);
    return r.value;
  }

  private async fromUpstream(name: string, tag: string): Promise<DocAnswer | undefined> {
    const index = await this.index();
    const page = index?.pages.get(`${name}/${tag}`);
    if (!page) return undefined;
    const c = await this.ctx.upstream(page.upstream).vulnerabilityPage(page.url, name, tag);
    if (c.kind !== 'ok') return undefined;
    return { key: answerKey.vulnerabilityPage(name, tag), body: JSON.stringify(c.value), version: c.version, gzip: false, outcome: c.outcome, upstreams: [page.upstream], partial: [] };
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
