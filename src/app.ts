import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Server } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { secretSources, type LoadedConfig } from './config/load.js';
import { redisTarget } from './config/redis-seeds.js';
import { divideMemory, type MemoryShares } from './config/memory-budget.js';
import type { Config } from './config/schema.js';
import { SecretSet } from './upstream/secrets.js';
import { relaySecrets } from './feed/relay-secrets.js';
import type { BlobStore } from './cache/blob-store.js';
import { FsBlobStore } from './cache/fs-blob-store.js';
import { createMemoryMetadataStore } from './cache/keyv-metadata-store.js';
import type { RedisBlobTier } from './cache/redis-blob-tier.js';
import type { RedisLink } from './cache/redis-link.js';
import type { MetadataStore } from './cache/metadata-store.js';
import { BoxLink, type BoxChannel } from './cache/box-link.js';
import { createBoxMetadataStore } from './cache/box-metadata-store.js';
import { NuproxyError } from './errors.js';
import { Feed } from './feed/feed.js';
import { systemClock, type Clock } from './feed/freshness.js';
import { MetadataCache } from './feed/metadata-cache.js';
import { PackageFiles } from './feed/packages.js';
import { UpstreamSource } from './feed/upstream-source.js';
import { UpstreamDocs } from './feed/upstream-docs.js';
import { OfflineUpstream } from './feed/offline-upstream.js';
import type { Upstream } from './feed/upstream.js';
import { createRequestListener } from './http/app.js';
import { keepSecretsOut, type Logger, type Redactor } from './log.js';
import { NugetV3Upstream } from './upstream/nuget-upstream.js';
import { IdRouter } from './protocol/id-rules.js';
import { noMetrics, type Metrics } from './metrics/metrics.js';
import { policyFromConfig } from './policy/from-config.js';
import { evictRules, Evictor, isBounded } from './feed/evictor.js';
import { runEviction } from './feed/evict-box.js';
import { UsageBook } from './feed/usage-state.js';
import { AdminOps } from './feed/admin-ops.js';
import { IdTally } from './http/id-tally.js';
import { createAdminRoutes } from './admin/routes.js';
import { authenticatorFor } from './access/from-config.js';
import { certificateToken } from './access/client-cert.js';
import { clusterTopIds } from './admin/cluster-tally.js';
import { createUiRoutes } from './ui/routes.js';

/** nuproxy's version: package.json's (shipped next to dist/ in the npm package and in the container image). */
export const VERSION = packageVersion();

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0-unknown';
  } catch {
    return '0.0.0-unknown';
  }
}

export interface AppOptions {
  logger: Logger;
  clock?: Clock;
  /** Shorter retry backoff for tests. */
  retryDelayMs?: number;
  /**
   * Remove temp files left by a crash (default true). Commands that may run beside a live server on the same
   * cache (warm, export) pass false: the server's downloads under way live there.
   */
  sweepTemp?: boolean;
  /** This process is one worker of several (config `workers`): the IPC channel to the primary process. */
  box?: BoxChannel;
  /**
   * Redirect mode as configured (storage.s3.redirect) applies: only the server answers redirects (startApp sets
   * this); commands such as warm and export read the packages themselves.
   */
  /** How often a server looks for a new advisories import (default 30 s; tests make it short). */
  advisoryPollMs?: number;
  serving?: boolean;
  /** Where the core records its figures (startApp gives its own when config metrics.enabled; else none). */
  metrics?: Metrics;
}

/**
 * The configured blob store (`storage.kind`), not yet prepared (`init`): `nuproxy import` stores through it
 * without the rest of the core (no upstreams, no metadata store). `cacheDir`: cache.dir as the caller resolved
 * it (the disk store's root; the S3 store spools under its .tmp). The S3 client is loaded only when configured.
 */
export async function createBlobStore(loaded: Pick<LoadedConfig, 'config' | 's3Credentials'>, cacheDir = loaded.config.cache.dir, log?: Logger): Promise<BlobStore> {
  const { cache, storage } = loaded.config;
  const maxStats = divideMemory(cache.memoryMaxMB).blobInfo.entries;
  if (storage.kind === 's3' && storage.s3) {
    if (!loaded.s3Credentials) throw new NuproxyError('CONFIG_INVALID', 'storage.s3: the S3 keys were not loaded');
    const { S3BlobStore } = await import('./cache/s3-blob-store.js');
    const s3 = storage.s3;
    const bucket = new S3BlobStore({
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      bucket: s3.bucket,
      region: s3.region,
      prefix: s3.prefix,
      forcePathStyle: s3.forcePathStyle,
      credentials: loaded.s3Credentials,
      scratchDir: resolve(cacheDir, '.tmp', 's3'),
      maxStats,
      ...(s3.redirect.publicEndpoint ? { publicEndpoint: s3.redirect.publicEndpoint } : {}),
    });
    const tier = storage.localTier;
    if (tier.maxSize <= 0) return bucket;
    const { LocalTierBlobStore } = await import('./cache/local-tier-blob-store.js');
    return new LocalTierBlobStore(bucket, { dir: resolve(cacheDir, tier.dir ?? 's3-local'), maxSize: tier.maxSize, ...(log ? { log } : {}) });
  }
  return new FsBlobStore(cacheDir, { maxStats });
}

export interface RunningApp {
  server: Server;
  url: string; // http(s)://host:port/ as bound
  feed: Feed;
  store: MetadataStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

/** The composition root: the only place that knows which implementation backs each interface. */
/** The proxy without its HTTP server: stores, upstream clients and the feed (used by serve, warm, export, import). */
export interface Core {
  feed: Feed;
  store: MetadataStore;
  blobs: BlobStore;
  /** The configured secrets, for what the HTTP edge sends: cut out of error bodies and JSON answers. */
  secrets: Redactor;
  /** `cache.memoryMaxMB` divided among the memory caches (startApp hands the render cache its share). */
  memory: MemoryShares;
  /**
   * The bounded cache (cache.maxSize / cache.retention set; undefined when unbounded): started by startApp.
   * Metrics read `evictor.summary()` and set `evictor.onEvicted`.
   */
  evictor: Evictor | undefined;
  /** The channel to the other workers (config `workers`), undefined when alone. */
  box: BoxLink | undefined;
  /**
   * Closes upstream connections and the metadata store, after waiting for downloads under way; `abandon`: the
   * shutdown grace is over, so downloads still under way are cut off (their temp files never become cache files).
   */
  close(opts?: { abandon?: boolean }): Promise<void>;
}

export async function createCore(loaded: LoadedConfig, opts: AppOptions): Promise<Core> {
  const { config } = loaded;
  const log = opts.logger;
  const clock = opts.clock ?? systemClock;
  const memory = divideMemory(config.cache.memoryMaxMB);
  const metrics = opts.metrics ?? noMetrics;

  const blobs = await createBlobStore(loaded, undefined, log);
  const { swept } = await blobs.init({ sweep: opts.sweepTemp !== false });
  if (swept > 0) log.info({ swept }, 'removed temp files left by an earlier run');

  let link: RedisLink | undefined;
  let store: MetadataStore;
  let tier: RedisBlobTier | undefined;
  const box = opts.box ? new BoxLink(opts.box) : undefined;
  if (config.cache.metadata === 'memory') {
    store = createMemoryMetadataStore(memory.metadataStore);
    // workers: each keeps its own memory store; invalidations after a push reach all of them
    if (box) store = createBoxMetadataStore(store, box);
  } else {
    // the shared tier: memory in front of Redis for metadata, small packages through Redis, one fetch lock
    // (loaded only when configured: the Redis client is a fair share of an idle process's memory)
    const [{ RedisLink }, { createRedisMetadataStore }, { createOverlayMetadataStore }, { RedisBlobTier }] = await Promise.all([
      import('./cache/redis-link.js'),
      import('./cache/redis-metadata-store.js'),
      import('./cache/overlay-metadata-store.js'),
      import('./cache/redis-blob-tier.js'),
    ]);
    const redisLink = new RedisLink(redisTarget(config.cache.metadata), config.cache.redisTimeout, log);
    link = redisLink;
    link.connect();
    metrics.watchRedis(() => redisLink.health().state === 'up');
    // the first requests find Redis connected (Sentinel's first connection takes several round trips), but a
    // Redis that is down delays the start by one redisTimeout at most
    await link.firstConnection(config.cache.redisTimeout);
    const redis = createRedisMetadataStore(link, config.cache.redisTimeout, log);
    store = createOverlayMetadataStore(redis, link, { maxBytes: memory.metadataStore, localTtlMs: config.cache.localTtl });
    if (config.cache.redisBlobMaxMB > 0) tier = new RedisBlobTier(link, Math.floor(config.cache.redisBlobMaxMB * 1024 * 1024), config.cache.redisBlobTtl);
  }
  const cache = new MetadataCache(store, config.cache.maxStale, clock, log.child({ component: 'metadata' }), config.cache.freshness.notFound, metrics);

  const secretForms = secretSources(loaded);
  const secrets = new SecretSet(secretForms);
  // what nuproxy relays or writes never carries a secret: publish answers, error bodies, every log line
  const relayed = relaySecrets(secretForms);
  keepSecretsOut(log, relayed);
  for (const label of secrets.weak) log.warn({ secret: label }, 'a configured secret is shorter than 8 characters: it is kept out of relayed answers, but not looked for in package bytes and documents');
  // offline: upstreams that never connect (no client, no socket); every answer comes from the disk cache
  const clients = config.offline
    ? []
    : config.upstreams.map((u) => {
        const auth = loaded.secrets.get(u.name);
        return new NugetV3Upstream(u.serviceIndex, {
          name: u.name,
          timeouts: u.timeouts,
          retries: u.retries,
          userAgent: `nuproxy/${VERSION} (+https://github.com/nuproxy)`,
          logger: log,
          ...(auth ? { auth } : {}),
          ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
          circuit: { failures: u.circuitBreaker.failures, cooldownMs: u.circuitBreaker.cooldown },
          limits: u.limits,
          redirectAllow: u.redirects.allow,
          secrets,
          meter: metrics.upstream(u.name),
        });
      });
  for (const c of clients) metrics.watchBreaker(c.name, () => c.health().state);
  const docs = new UpstreamDocs(cache, { maxParsedDocs: memory.parsedDocs.entries });
  const upstreams: Upstream[] = config.offline
    ? config.upstreams.map((u) => new OfflineUpstream(u.name, u.writable))
    : clients.map((c, i) => new UpstreamSource(c, cache, { ...config.cache.freshness, ...definedOnly(config.upstreams[i]!.freshness ?? {}) }, config.upstreams[i]!.writable, docs));
  // redirect mode (storage.s3.redirect): committed .nupkg hits answer 302 to a presigned URL of the bucket
  const redirect = opts.serving && config.storage.kind === 's3' && config.storage.s3?.redirect.enabled ? config.storage.s3.redirect : undefined;
  const packages = new PackageFiles(blobs, log.child({ component: 'packages' }), tier, box, {
    memoryBytes: memory.packageTier,
    metrics,
    ...(redirect ? { redirectTtlSeconds: Math.floor(redirect.ttl / 1000) } : {}),
  });
  if (redirect && !blobs.presign) log.warn({ store: blobs.location }, 'redirect mode: this store cannot presign URLs; packages are served by nuproxy');
  else if (redirect) log.info({ ttlSeconds: Math.floor(redirect.ttl / 1000), to: redirect.publicEndpoint ?? config.storage.s3!.endpoint ?? 'AWS S3' }, 'redirect mode: package downloads in the bucket are answered 302 to presigned URLs');
  metrics.watchDownloads(() => packages.active);
  const router = new IdRouter(
    config.upstreams.map((u) => ({ name: u.name, include: u.include, exclude: u.exclude, owns: u.owns })),
    memory.routings.entries,
  );
  const publish = {
    keyMode: config.publish.keyMode,
    upstreamKey: loaded.publishKey,
    maxPackageSize: config.publish.maxPackageSize,
    timeoutMs: config.publish.timeout,
    // pushed packages' scratch copies: not the store's business, on the same disk as today
    tmpDir: resolve(config.cache.dir, '.tmp'),
    secrets: relayed,
  };
  // the supply-chain policy (issue #16), with the imported advisories: a server watches them (an import applies
  // without a restart), a command reads them once
  const policy = await policyFromConfig(config, blobs, {
    watch: opts.serving === true,
    ...(opts.advisoryPollMs !== undefined ? { every: opts.advisoryPollMs } : {}),
    onChange: (advisories) => log.info({ advisories }, 'imported advisories loaded'),
    onError: (message) => log.warn(message),
  });
  const feed = new Feed(upstreams, cache, packages, router, publish, log.child({ component: 'feed' }), {
    blobs,
    // Redis mode: a merged answer is kept no longer than a memory copy of a shared document may be used;
    // offline: none is kept (every answer is the disk's own, read each time)
    answerMaxAgeMs: config.offline ? 0 : config.cache.metadata === 'memory' ? Infinity : config.cache.localTtl,
    memo: { mergedVersionLists: memory.versionLists.entries, builtRegistrations: memory.registrations.entries, answerIds: memory.answers.entries },
    // inactive without policy keys (nor imported advisories), and then nothing is filtered
    policy: policy.policy,
    metrics,
  });
  // the evictor also keeps the store's running total and its "last used" state: a server with metrics on runs
  // it unbounded too (its plan is then empty: no size and no retention rule names anything), so that the store
  // gauges and the dashboard's "last used" exist before anyone sets a bound
  const bounded = isBounded(config.cache);
  const evictor = bounded || (opts.serving && config.metrics.enabled)
    ? new Evictor(blobs, packages, new UsageBook(blobs, log.child({ component: 'eviction' }), Date.now()), log.child({ component: 'eviction' }), {
        rules: evictRules(config.cache),
        everyMs: config.cache.evictEvery,
        pinPatterns: config.cache.pins,
        // offline, nothing is removed unless the config says so (usage is still tracked)
        remove: bounded && (!config.offline || config.cache.evictOffline),
      })
    : undefined;
  if (evictor) {
    metrics.watchStore(() => evictor.summary());
    evictor.onEvicted = (reason, bytes) => metrics.eviction(reason, bytes);
  }
  return {
    feed,
    store,
    blobs,
    secrets: relayed,
    memory,
    evictor,
    box,
    close: async ({ abandon = false } = {}) => {
      policy.stop();
      if (!abandon) await packages.drain();
      await Promise.all(clients.map((c) => c.close({ abandon })));
      await store.close();
      await link?.close();
    },
  };
}

export async function startApp(loaded: LoadedConfig, opts: AppOptions): Promise<RunningApp> {
  const { config } = loaded;
  const log = opts.logger;
  // read first: a missing or unreadable file stops the start before any store, connection or worker is opened
  const tls = config.tls ? readTls(config.tls) : undefined;
  // one registry per process (loaded only when enabled: the commands and a disabled /metrics never load it)
  const prom = config.metrics.enabled ? new (await import('./metrics/prom-metrics.js')).PromMetrics() : undefined;
  const core = await createCore(loaded, { ...opts, serving: true, ...(prom ? { metrics: prom } : {}) });
  const { feed, store, blobs } = core;
  // with workers the scrape asks the primary, which aggregates every worker's figures
  const scrapeMetrics = !prom ? undefined : opts.box ? (await import('./metrics/cluster.js')).workerScrape(prom.registry, opts.box) : () => prom.scrape();
  const eviction = core.evictor ? runEviction(core.evictor, blobs, feed.packages, log.child({ component: 'eviction' }), config.cache.evictEvery, core.box) : undefined;

  // the admin API and the dashboard: their own routes, off the read path (the tally is one Map update per
  // flat-container request, for the summary's top ids)
  const tally = new IdTally();
  const ops = new AdminOps(feed, blobs, core.evictor, config.cache.pins, config.cache.maxSize, log.child({ component: 'admin' }), core.box);
  // with workers, the summary adds up every worker's tally (asked over the workers' channel)
  const others = (config.workers === 'auto' ? availableParallelism() : config.workers) - 1;
  const topIds = core.box && others > 0 ? clusterTopIds(tally, core.box, others, String(process.pid)) : undefined;
  // access control (issue #15): undefined when the feed is open (anonymous reads, no token of any kind)
  // a verified client certificate (tls.clientCa; config load refuses mappings without it) acts as its mapped token
  const certificates = config.access.certificates;
  const { auth, notes } = authenticatorFor(config, certificates.length > 0 ? { certificateToken: certificateToken(certificates) } : {});
  for (const note of notes) log.info(note);
  const admin = createAdminRoutes({ auth, ops, feed, tally, topIds, logger: log, secrets: core.secrets });

  let shuttingDown = false;
  const listener = createRequestListener(feed, {
    tally,
    mounts: [
      { path: '/admin', app: admin },
      { path: '/ui', app: createUiRoutes({ ops, feed, tally, topIds, secrets: core.secrets, rootLogger: log, scrape: scrapeMetrics, auth, anonymousReads: config.access.anonymous }) },
    ],
    auth,
    publishKeyMode: config.publish.keyMode,
    metricsAccess: config.metrics.access,
    logger: log,
    secrets: core.secrets,
    renderCacheBytes: core.memory.renderCache,
    publicUrl: config.publicUrl,
    trustForwardedHeaders: config.trustForwardedHeaders,
    tls: config.tls !== undefined,
    ...(prom ? { metrics: prom } : {}),
    ...(scrapeMetrics ? { scrapeMetrics } : {}),
    readiness: () => {
      const metadata = store.health();
      return {
        ready: !shuttingDown,
        pid: process.pid,
        offline: config.offline,
        metadataStore: { kind: store.kind, ...metadata },
        upstreams: feed.upstreamHealth(),
      };
    },
  });

  if (config.tls?.clientCa !== undefined) {
    log.info({ certificateMappings: config.access.certificates.length }, 'mutual TLS: a client without a certificate signed by tls.clientCa is refused in the handshake');
  }
  const server: Server = tls ? (createHttpsServer(tls, listener) as unknown as Server) : createHttpServer(listener);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}/`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true;
      // stop accepting; idle keep-alive connections go now, busy ones when their response is done
      const closed = new Promise<void>((r) => server.close(() => r()));
      // a connection whose last response just finished turns idle: keep closing those until the server is closed
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      void closed.then(() => clearInterval(sweep));
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<false>((r) => (graceTimer = setTimeout(() => r(false), config.shutdownGrace).unref()));
      const finished = await Promise.race([Promise.all([closed, feed.packages.drain()]).then(() => true), grace]);
      clearTimeout(graceTimer);
      clearInterval(sweep);
      if (!finished) log.warn({ downloads: feed.packages.active, shutdownGrace: config.shutdownGrace }, 'shutdown grace is over: cutting off requests and downloads still under way');
      server.closeAllConnections();
      await eviction?.stop();
      await core.close({ abandon: !finished });
    })());

  return { server, url, feed, store, blobs, close };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The https server's options from `tls`. With `clientCa`, every client must present a certificate that CA signed:
 * `rejectUnauthorized` makes the handshake itself fail otherwise, so no request of an unverified client is ever
 * parsed (the access layer then maps a verified certificate's subject to a token: access/client-cert.ts).
 */
function readTls(tls: NonNullable<Config['tls']>): ServerOptions {
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new NuproxyError('CONFIG_INVALID', `tls: cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  const options: ServerOptions = { cert: read(tls.cert, 'the certificate (tls.cert)'), key: read(tls.key, 'the key (tls.key)') };
  if (tls.clientCa === undefined) return options;
  const ca = read(tls.clientCa, 'the client CA (tls.clientCa)');
  // node:tls skips what it cannot read in `ca` without a word: a DER file or a key there would refuse every client
  const blocks = ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const unreadable = blocks.findIndex((b) => !readsAsCertificate(b));
  if (blocks.length === 0 || unreadable >= 0) {
    const why = blocks.length === 0 ? 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)' : `certificate ${unreadable + 1} of ${blocks.length} cannot be read`;
    throw new NuproxyError('CONFIG_INVALID', `tls.clientCa: the file ${why}: it must be the PEM certificate(s) of the CA(s) that sign client certificates`);
  }
  return { ...options, ca, requestCert: true, rejectUnauthorized: true };
}

function readsAsCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}
