import { NuproxyError } from '../errors.js';
import { guardPackageBody, packageRulesOf, RATE_GRACE_MS, tooLarge, type GuardedBody, type PackageFileKind, type PackageRules } from './package-body.js';
import { safeUrl } from '../log.js';
import { configSchema } from '../config/schema.js';
import { UpstreamHttp, type UpstreamHttpOptions } from './http-client.js';
import { readJsonDocument, type DocumentLimits } from './json-body.js';
import { SecretSet } from './secrets.js';
import { discard, header } from './body-util.js';

export interface Validators {
  etag?: string;
  lastModified?: string;
}

export type JsonResult =
  | { kind: 'ok'; json: unknown; etag?: string; lastModified?: string; gzip: boolean }
  | { kind: 'not-modified'; etag?: string; lastModified?: string }
  | { kind: 'not-found' };

export type BlobResult =
  | {
      kind: 'ok';
      length?: number;
      sha512?: string; // base64, when the upstream announces it (x-ms-meta-sha512, as nuget.org's blob storage does)
      /** Only bytes that passed the package rules (src/upstream/package-body.ts); destroy() cancels the download. */
      body: GuardedBody;
      /** limits.abandonAfter: how long the download may go on once nobody reads it. */
      abandonAfterMs: number;
    }
  | { kind: 'not-found' };

/** Talks to one NuGet V3 feed. Knows the protocol's transport facts, nothing of caches or merging. */
export class NugetV3Upstream {
  /** What package bodies are held to (openBlob). */
  private readonly packageRules: PackageRules;
  readonly name: string;
  readonly serviceIndexUrl: string;
  private readonly http: UpstreamHttp;
  /** What one metadata document may cost (config upstreams[].limits); callers check entry counts against it. */
  readonly limits: DocumentLimits;
  private readonly secrets: SecretSet;
  /** The metrics' bytes fetched from this upstream. */
  private readonly fetched: ((bytes: number) => void) | undefined;

  constructor(serviceIndexUrl: string, opts: UpstreamHttpOptions) {
    this.name = opts.name;
    this.serviceIndexUrl = serviceIndexUrl;
    this.limits = opts.limits ?? defaultLimits();
    this.secrets = opts.secrets ?? SecretSet.none();
    this.http = new UpstreamHttp(opts);
    this.http.allowOrigin(serviceIndexUrl);
    this.packageRules = packageRulesOf(opts.limits, opts.secrets);
    const meter = opts.meter;
    this.fetched = meter ? (bytes) => meter.fetched(bytes) : undefined;
  }

  /** Hosts named by the upstream's service index become fetchable. */
  trustUrls(urls: Iterable<string>): void {
    for (const u of urls) this.http.allowOrigin(u);
  }

  /** GET a JSON document. 404 (and 204) are "absent"; anything that is not a JSON document throws. */
  async fetchJson(url: string, validators: Validators = {}): Promise<JsonResult> {
    const headers: Record<string, string> = { 'accept-encoding': 'gzip, deflate', accept: 'application/json' };
    if (validators.etag) headers['if-none-match'] = validators.etag;
    if (validators.lastModified) headers['if-modified-since'] = validators.lastModified;
    const res = await this.http.request(url, { headers });
    const etag = header(res.headers, 'etag');
    const lastModified = header(res.headers, 'last-modified');
    if (res.status === 304) {
      await res.body.dump().catch(() => undefined);
      return { kind: 'not-modified', ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
    }
    if (res.status === 404 || res.status === 204 || res.status === 410) {
      await res.body.dump().catch(() => undefined);
      return { kind: 'not-found' };
    }
    if (res.status !== 200) {
      await res.body.dump().catch(() => undefined);
      throw this.statusError(res.status, url);
    }
    // bounded while it streams: size (wire and decoded), depth, echoed secrets (json-body.ts)
    const json = await readJsonDocument(res, { upstream: this.name, url, limits: this.limits, secrets: this.secrets, ...(this.fetched ? { fetched: this.fetched } : {}) });
    const gzip = (header(res.headers, 'content-encoding') ?? '').trim().toLowerCase() === 'gzip';
    return { kind: 'ok', json, gzip, ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
  }

  /**
   * GET (or HEAD) a package file. The body is streamed, never buffered; the caller must consume or destroy it.
   * Its bytes are held to the package rules as they arrive (a zip or XML start, limits.packageBytes or
   * nuspecBytes, no configured secret, limits.minRate); a Content-Length over the limit is refused at once.
   * `rateGraceMs` shortens the grace before minRate applies (tests).
   */
  async openBlob(url: string, method: 'GET' | 'HEAD' = 'GET', file: PackageFileKind = 'nupkg', opts: { rateGraceMs?: number } = {}): Promise<BlobResult> {
    // identity: package bytes are stored and served exactly as published
    const res = await this.http.request(url, { method, headers: { 'accept-encoding': 'identity' }, kind: 'package' });
    if (res.status === 404 || res.status === 204 || res.status === 410) {
      await res.body.dump().catch(() => undefined);
      return { kind: 'not-found' };
    }
    if (res.status !== 200) {
      await res.body.dump().catch(() => undefined);
      throw this.statusError(res.status, url);
    }
    const encoding = header(res.headers, 'content-encoding');
    if (encoding && encoding.toLowerCase() !== 'identity') {
      discard(res.body);
      throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.name} sent a package with Content-Encoding ${encoding}`, { upstream: this.name, url: safeUrl(url) });
    }
    const contentType = header(res.headers, 'content-type') ?? '';
    if (/text\/html/i.test(contentType)) {
      discard(res.body);
      throw new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${this.name} sent an HTML page instead of a package`, { upstream: this.name, url: safeUrl(url) });
    }
    const { limits, secrets } = this.packageRules;
    const maxBytes = file === 'nupkg' ? limits.packageBytes : limits.nuspecBytes;
    const lengthHeader = header(res.headers, 'content-length');
    const length = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    if (length !== undefined && length > maxBytes) {
      discard(res.body); // the connection goes with it: nothing of the body is read
      throw tooLarge({ upstream: this.name, url, file, maxBytes }, length);
    }
    const sha = header(res.headers, 'x-ms-meta-sha512');
    const sha512 = sha && /^[A-Za-z0-9+/]{86}==$/.test(sha) ? sha : undefined;
    const body = guardPackageBody(res.body, {
      upstream: this.name,
      url,
      file,
      maxBytes,
      minRate: limits.minRate,
      graceMs: opts.rateGraceMs ?? RATE_GRACE_MS,
      secrets,
      ...(this.fetched ? { fetched: this.fetched } : {}),
    });
    if (method === 'HEAD') body.destroy(new Error('HEAD has no body'));
    return { kind: 'ok', body, abandonAfterMs: limits.abandonAfter, ...(length !== undefined ? { length } : {}), ...(sha512 ? { sha512 } : {}) };
  }

  health(): ReturnType<UpstreamHttp['breaker']['health']> {
    return this.http.breaker.health();
  }

  /** Push, delete or relist on the upstream's own publish URL; see UpstreamHttp.send. */
  send(url: string, init: Parameters<UpstreamHttp['send']>[1]): ReturnType<UpstreamHttp['send']> {
    return this.http.send(url, init);
  }

  private statusError(status: number, url: string): NuproxyError {
    const why = status === 401 || status === 403 ? ' (check the upstream credentials)' : '';
    return new NuproxyError('UPSTREAM_STATUS', `upstream ${this.name} answered ${status}${why}`, { upstream: this.name, status, url: safeUrl(url) });
  }

  close(opts?: { abandon?: boolean }): Promise<void> {
    return this.http.close(opts);
  }
}

let defaults: DocumentLimits | undefined;
/** The schema's limits (the one place of defaults), for a client built without a config. */
function defaultLimits(): DocumentLimits {
  return (defaults ??= configSchema.parse({}).upstreams[0]!.limits);
}
