import { buildServiceIndex, capabilitiesOf, type ProxyCapabilities } from '../protocol/service-index.js';
import { REGISTRATION_HIVES } from '../protocol/service-types.js';
import { answerKey } from './cache-keys.js';
import { mergedAnswer, type DocAnswer } from './doc-answer.js';
import { fanOut, type Contribution, type Gathered } from './fan-out.js';
import type { FeedContext } from './feed-context.js';
import { contentVersion } from './local-feed.js';
import { isNeverAsked } from './offline-upstream.js';
import type { Publisher } from './publish.js';

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

/** The proxy's own service index: what the upstreams offer together (or, with none ever asked, what the cache can answer). */
export async function serviceIndex(ctx: FeedContext, publisher: Publisher): Promise<DocAnswer> {
  const g = await fanOut(ctx.names, async (name): Promise<Contribution<ProxyCapabilities>> => {
    const r = await ctx.upstream(name).resources();
    return { upstream: name, kind: 'ok', value: capabilitiesOf(r.resources), outcome: r.outcome, version: '' };
  });
  if (noneAsked(g)) return cacheOnlyIndex(ctx);
  for (const f of g.failed) ctx.log.warn({ upstream: f.upstream, err: (f.error as Error).message }, 'no service index from upstream');
  const any = (pick: (c: ProxyCapabilities) => boolean): boolean => g.ok.some((c) => pick(c.value));
  const publish = publisher.enabled;
  const symbolPublish = publish && (await publisher.symbolsEnabled());
  const base: ProxyCapabilities = g.ok.length
    ? {
        hives: ALL_HIVES,
        // an upstream without search is searched over the cache (search.ts): there is always a search
        search: true,
        searchPackageType: any((c) => c.searchPackageType),
        autocomplete: true,
        autocompletePackageType: any((c) => c.autocompletePackageType),
        vulnerability: any((c) => c.vulnerability),
      }
    : { ...FALLBACK_CAPS, hives: ALL_HIVES };
  const caps: ProxyCapabilities = { ...base, publish, symbolPublish };
  const body = JSON.stringify(buildServiceIndex(caps));
  return mergedAnswer(ctx.log, answerKey.serviceIndex, body, body, false, g);
}

/** No upstream was asked at all (offline): not "every upstream is down". */
function noneAsked(g: Gathered<unknown>): boolean {
  return g.ok.length === 0 && g.failed.length > 0 && g.failed.every((f) => isNeverAsked(f.error));
}

/** Offline: what the disk cache answers (search and autocomplete over cached packages; no publishing). */
async function cacheOnlyIndex(ctx: FeedContext): Promise<DocAnswer> {
  const vulnerability = (await ctx.local.vulnerabilityIndex()) !== undefined;
  const caps: ProxyCapabilities = { hives: ALL_HIVES, search: true, searchPackageType: false, autocomplete: true, autocompletePackageType: false, vulnerability };
  const body = JSON.stringify(buildServiceIndex(caps));
  return { key: answerKey.serviceIndex, body, version: contentVersion(body), gzip: false, outcome: 'hit', upstreams: [], partial: [] };
}
