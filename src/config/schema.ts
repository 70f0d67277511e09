import { z } from 'zod';
import { DEFAULT_MEMORY_MB, MIN_MEMORY_MB } from './memory-budget.js';
import { clusterSeeds, sentinelTarget } from './redis-seeds.js';
import { ownershipConflicts } from '../protocol/id-rules.js';
import { accessSchema } from './access-schema.js';
import { globalPolicy, upstreamPolicy } from './policy-schema.js';
import { byteSize, byteSizeOrZero, duration, envName, idPatterns, optionalDuration } from './schema-kit.js';

export { policyEntryError, POLICY_SEVERITIES } from './policy-schema.js';

/**
 * The one place where config defaults live. config/default.yaml documents the same values key by key, and a
 * test checks that the two agree. The sections of issues #15 and #16 live beside it (access-schema.ts,
 * policy-schema.ts), and the building blocks every section uses in schema-kit.ts.
 */

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('basic'), username: z.string().min(1), passwordEnv: envName }),
  z.strictObject({ type: z.literal('bearer'), tokenEnv: envName }),
  z.strictObject({
    type: z.literal('header'),
    header: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name'),
    valueEnv: envName,
  }),
]);

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL');

/**
 * Where real feeds send package downloads (GitHub Packages, Azure Artifacts and Artifactory in front of S3 or
 * Azure blob storage). Never a loopback, private or link-local address unless that exact origin is listed.
 */
export const DEFAULT_REDIRECT_ORIGINS = [
  'https://*.githubusercontent.com',
  'https://*.vsblob.vsassets.io',
  'https://*.blob.core.windows.net',
  'https://*.amazonaws.com',
  'https://*.cloudfront.net',
] as const;

/** An origin pattern: http(s)://host[:port], the host optionally starting with "*." (any subdomain). */
const originPattern = z
  .string()
  .regex(/^https?:\/\/(\*\.)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'must be an origin such as https://*.example.com or http://127.0.0.1:8080 (no path)');


const upstreamSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-" (at most 64)'),
  serviceIndex: httpUrl.refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not contain credentials (use auth)'),
  auth: authSchema.optional(),
  timeouts: z
    .strictObject({
      connect: duration('10s'),
      headers: duration('30s'),
      body: duration('60s'),
    })
    .prefault({}),
  retries: z.number().int().min(0).max(10).default(2),
  // Bounds on what one upstream response may cost (hostile or broken upstreams): see config/default.yaml.
  limits: z
    .strictObject({
      metadataBytes: byteSize('64MB'), // a metadata document once decoded (gzip/deflate undone)
      metadataCompressedBytes: byteSize('16MB'), // a metadata document as sent
      jsonDepth: z.number().int().min(8).max(1000).default(64), // nesting of a metadata document
      versions: z.number().int().min(1).default(100_000), // entries of a version list or registration (real: a few thousand)
      packageBytes: byteSize('260MB'), // a .nupkg (nuget.org accepts up to 250 MB)
      nuspecBytes: byteSize('4MB'), // a .nuspec fetched on its own
      minRate: byteSize('16KB'), // bytes per second a package download keeps up on average (after a grace)
      abandonAfter: duration('30s'), // how long a download may go on after its last client left
    })
    .prefault({}),
  // Origins (scheme://host[:port], "*." allowed in front of the host) package downloads may be redirected to.
  // Metadata is never fetched from an origin outside the upstream's own service index.
  redirects: z
    .strictObject({
      allow: z.array(originPattern).default([...DEFAULT_REDIRECT_ORIGINS]),
    })
    .prefault({}),
  include: idPatterns, // ids this upstream may serve (empty = all)
  exclude: idPatterns, // ids this upstream must not serve
  owns: idPatterns, // ids only this upstream serves (dependency-confusion defence)
  writable: z.boolean().default(false), // pushes, deletes and relists go here (at most one upstream)
  // after `failures` consecutive failures the upstream is not asked for `cooldown`, then probed again
  circuitBreaker: z.strictObject({ failures: z.number().int().min(1).max(1000).default(5), cooldown: duration('30s') }).prefault({}),
  // Per-upstream freshness overrides; a key left out falls back to cache.freshness.
  freshness: z
    .strictObject({
      serviceIndex: optionalDuration(),
      versions: optionalDuration(),
      registration: optionalDuration(),
      search: optionalDuration(),
      autocomplete: optionalDuration(),
      vulnerabilities: optionalDuration(),
      notFound: optionalDuration(),
    })
    .optional(),
  // overrides of the global `policy` keys for the versions this upstream wins in a merge
  policy: upstreamPolicy(),
});

/** The bounds of storage.s3.redirect.ttl (ms): 10 s, and SigV4's longest presigned URL (7 days). */
export const REDIRECT_TTL_MS = { min: 10_000, max: 7 * 24 * 3600_000 } as const;

/** An S3 bucket name (the common rules of S3 and its look-alikes: 3 to 63 lower-case letters, digits, ".", "-"). */
const bucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name: 3 to 63 lower-case letters, digits, "." and "-"');

/** Where package bytes live: the disk (cache.dir) or an S3-compatible bucket that every instance shares. */
const storageSchema = z
  .strictObject({
    kind: z.enum(['fs', 's3']).default('fs'),
    s3: z
      .strictObject({
        // absent: AWS S3 itself (the region's endpoint)
        endpoint: httpUrl.refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not contain credentials (use accessKeyIdEnv, secretAccessKeyEnv)').optional(),
        bucket: bucketName,
        region: z.string().regex(/^[a-z0-9-]{1,40}$/, 'must be a region name such as us-east-1').default('us-east-1'),
        // keys go under this prefix ("" or segments ending in "/", e.g. "nuproxy/")
        prefix: z.string().regex(/^([A-Za-z0-9_+-][A-Za-z0-9._+-]{0,99}\/){0,8}$/, 'must be "" or "/"-terminated segments of letters, digits, ".", "_", "+", "-" (e.g. "nuproxy/")').default(''),
        forcePathStyle: z.boolean().default(false), // bucket in the path, not the host name (MinIO and most self-hosted stores)
        accessKeyIdEnv: envName,
        secretAccessKeyEnv: envName,
        // redirect mode: a package GET already in the bucket answers 302 to a presigned URL (README "Redirect mode")
        redirect: z
          .strictObject({
            enabled: z.boolean().default(false),
            // how long a presigned URL is valid: 10 s .. 7 d (SigV4's longest)
            ttl: duration('5m').refine((ms) => ms >= REDIRECT_TTL_MS.min && ms <= REDIRECT_TTL_MS.max, 'must be between 10s and 7d (the longest a SigV4 presigned URL may live)'),
            // the bucket's address as clients reach it, when it differs from endpoint (URLs are signed for it)
            publicEndpoint: httpUrl.refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not contain credentials').optional(),
          })
          .prefault({}),
      })
      .optional(),
    // a bounded disk folder in front of the bucket (s3 only): warm large packages from the disk, and served while
    // the bucket is down. maxSize 0 = off; dir: absent = <cache.dir>/s3-local
    localTier: z.strictObject({ maxSize: byteSize('0', true), dir: z.string().min(1).optional() }).prefault({}),
  })
  .prefault({})
  .superRefine((st, ctx) => {
    if (st.kind === 's3' && !st.s3) ctx.addIssue({ code: 'custom', path: ['s3'], message: 'storage.kind s3 needs storage.s3 (endpoint, bucket, accessKeyIdEnv, secretAccessKeyEnv, ...)' });
    if (st.kind !== 's3' && st.localTier.maxSize > 0) ctx.addIssue({ code: 'custom', path: ['localTier'], message: 'storage.localTier is a disk tier in front of a bucket: it needs storage.kind s3 (with fs the packages are on the disk already)' });
  });


export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(5000),
    })
    .prefault({}),
  publicUrl: httpUrl.optional(),
  trustForwardedHeaders: z.boolean().default(false),
  // answer only from the cache: no connection to any upstream is ever opened
  offline: z.boolean().default(false),
  tls: z
    .strictObject({
      cert: z.string().min(1),
      key: z.string().min(1),
      // mutual TLS: a PEM file of the CA(s) client certificates must be signed by; set, a client without one is refused
      clientCa: z.string().min(1).optional(),
    })
    .optional(),
  access: accessSchema,
  cache: z
    .strictObject({
      dir: z.string().min(1).default('./data'),
      metadata: z
        .string()
        .default('memory')
        .refine(
          (v) => v === 'memory' || /^rediss?:\/\/[^\s]+$/.test(v) || clusterSeeds(v) !== undefined || sentinelTarget(v) !== undefined,
          'must be "memory", a redis:// URL, a Redis Cluster seed list redis+cluster://host1:port1,host2:port2 or Redis Sentinel redis+sentinel://host1:port1,host2:port2/<masterName>',
        ),
      // the one memory budget, shared by every cache held in memory (config/memory-budget.ts)
      memoryMaxMB: z
        .number()
        .min(MIN_MEMORY_MB, `must be at least ${MIN_MEMORY_MB} (MB): it is shared by the metadata store, the package memory tier, the render cache and the memo caches`)
        .default(DEFAULT_MEMORY_MB),
      freshness: z
        .strictObject({
          serviceIndex: duration('1h'),
          versions: duration('10m'),
          registration: duration('10m'),
          search: duration('2m'),
          autocomplete: duration('2m'),
          vulnerabilities: duration('1h'),
          notFound: duration('2m'),
        })
        .prefault({}),
      maxStale: duration('7d'),
      redisTimeout: duration('500ms'),
      localTtl: duration('5s'), // with Redis: how long this instance answers from its memory copy without asking Redis
      redisBlobMaxMB: z.number().min(0).default(4), // with Redis: packages up to this size are shared through Redis too (0: none)
      redisBlobTtl: duration('7d'),
      // the bounded cache (feed/evictor.ts): 0 = unbounded; past it the least recently used packages go
      maxSize: byteSizeOrZero('0'),
      evictTo: z.number().min(0.1).max(1).default(0.9), // eviction stops at this fraction of maxSize (low-water mark)
      evictEvery: duration('1m').refine((ms) => ms >= 1000, 'must be at least 1s'),
      retention: z
        .strictObject({
          unusedFor: optionalDuration().refine((ms) => ms === undefined || ms >= 3_600_000, 'must be at least 1h'), // absent: off
          keepVersions: z.number().int().min(1).optional(), // absent: off
        })
        .prefault({}),
      pins: idPatterns, // ids never evicted by any rule (also `nuproxy warm --pin`)
      evictOffline: z.boolean().default(false), // offline, nothing is evicted unless this is true
    })
    .prefault({}),
  storage: storageSchema,
  // supply-chain policy (README "Policies"): which versions are offered at all
  policy: globalPolicy(),
  upstreams: z
    .array(upstreamSchema)
    .min(1, 'at least one upstream is required')
    .prefault([{ name: 'nuget.org', serviceIndex: 'https://api.nuget.org/v3/index.json' }])
    .superRefine((ups, ctx) => {
      const seen = new Set<string>();
      ups.forEach((u, i) => {
        const key = u.name.toLowerCase();
        if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate upstream name "${u.name}"` });
        seen.add(key);
      });
      for (const c of ownershipConflicts(ups)) ctx.addIssue({ code: 'custom', path: [c.upstream, 'owns', c.index], message: c.message });
      const writable = ups.map((u, i) => (u.writable ? i : -1)).filter((i) => i >= 0);
      for (const i of writable.slice(1)) {
        ctx.addIssue({ code: 'custom', path: [i, 'writable'], message: `only one upstream can be writable; upstreams[${writable[0]}] (${ups[writable[0]!]!.name}) already is` });
      }
    }),
  publish: z
    .strictObject({
      // passthrough: the client's X-NuGet-ApiKey goes to the writable upstream.
      // mapped: the client's key must match one of `keys` (SHA-256 hex); the upstream gets upstreamKeyEnv's value.
      keyMode: z.enum(['passthrough', 'mapped']).default('passthrough'),
      keys: z
        .array(z.strictObject({ name: z.string().min(1).max(64), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of the key, 64 hex digits (nuproxy hash-key)') }))
        .default([]),
      upstreamKeyEnv: envName.optional(),
      maxPackageSize: byteSize('250MB'),
      timeout: duration('5m'),
    })
    .prefault({})
    .superRefine((p, ctx) => {
      if (p.keyMode !== 'mapped') return;
      if (!p.upstreamKeyEnv) ctx.addIssue({ code: 'custom', path: ['upstreamKeyEnv'], message: 'keyMode mapped needs the environment variable that holds the upstream key' });
    }),
  // the admin API (/admin/...) and the dashboard's admin actions: off without a token
  admin: z
    .strictObject({
      tokens: z
        .array(z.strictObject({ name: z.string().min(1).max(64), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of the token, 64 hex digits (nuproxy hash-key)') }))
        .max(64)
        .default([])
        .superRefine((ts, ctx) => {
          const seen = new Set<string>();
          ts.forEach((t, i) => {
            if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `admin token name ${t.name} is used twice` });
            seen.add(t.name);
          });
        }),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
  // GET /metrics (Prometheus text format); false: no route and nothing recorded
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true),
      // anonymous: anyone who reaches the port scrapes; token: a token with the metrics (or admin) permission
      access: z.enum(['anonymous', 'token']).default('anonymous'),
    })
    .prefault({}),
  shutdownGrace: duration('30s'),
  // worker processes sharing the port and the disk cache (node:cluster); "auto": one per CPU
  workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
})
  .superRefine((c, ctx) => {
    // mapped pushes need a token: publish.keys (the older setting) or an access token with push
    if (c.publish.keyMode === 'mapped' && c.publish.keys.length === 0 && !c.access.tokens.some((t) => t.permissions.includes('push'))) {
      ctx.addIssue({ code: 'custom', path: ['publish', 'keys'], message: 'keyMode mapped needs a token to push with: access.tokens with the push permission (or publish.keys)' });
    }
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type AuthConfig = NonNullable<UpstreamConfig['auth']>;
export type AccessConfig = Config['access'];
export type PolicyConfig = Config['policy'];
/** An upstream's `policy` override: every key optional (merged over the global section). */
export type PolicyOverride = NonNullable<UpstreamConfig['policy']>;
