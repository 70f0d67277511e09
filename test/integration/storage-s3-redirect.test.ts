// Redirect mode (storage.s3.redirect) against a real S3-compatible server (s3rver, which checks a presigned
// URL's key id and expiry, though not its SigV4 signature: its V4 check is unimplemented) and the test upstream: a miss is streamed by nuproxy; once the package is committed
// in the bucket a GET or HEAD answers 302 to a presigned URL whose GET at the bucket returns the exact bytes (a
// Range too) and which stops working when its TTL is over. Nuspecs are never redirected, redirect off changes
// nothing, publicEndpoint is what the URL is signed for, and no log line holds the signature.
import { createHash, createHmac } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore } from '../../src/app.js';
import { isNuproxyError } from '../../src/errors.js';
import { createLogSink } from '../support/log-sink.js';
import { validateConfig } from '../../src/config/load.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const env = { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET };
const TTL_S = 10; // the shortest TTL allowed: the expiry test waits it out

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function get(url: string, opts: { method?: 'GET' | 'HEAD'; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await request(url, { method: opts.method ?? 'GET', ...(opts.headers ? { headers: opts.headers } : {}) });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}


/** A plain TCP forwarder: the bucket at another address, as clients outside would reach it. */
async function forwarder(port: number): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    const up = connect(port, '127.0.0.1');
    sockets.add(s).add(up);
    s.pipe(up).pipe(s);
    const end = (): void => {
      s.destroy();
      up.destroy();
    };
    s.once('error', end).once('close', end);
    up.once('error', end).once('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${own}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * Checks a presigned URL's SigV4 query signature as S3 would for a GET sent to `host` (s3rver skips this check:
 * its V4 verification is unimplemented). Written from the SigV4 description, not with the SDK that signed it.
 */
function signatureValid(location: string, host: string, secret = S3RVER_SECRET): boolean {
  const u = new URL(location);
  const pairs = u.search
    .slice(1)
    .split('&')
    .map((kv) => kv.split('=') as [string, string]);
  const given = pairs.find(([k]) => k === 'X-Amz-Signature')?.[1];
  const query = pairs
    .filter(([k]) => k !== 'X-Amz-Signature')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const amzDate = u.searchParams.get('X-Amz-Date')!;
  const [keyId, date, region, service, terminal] = u.searchParams.get('X-Amz-Credential')!.split('/');
  if (keyId !== S3RVER_KEY || service !== 's3' || terminal !== 'aws4_request' || u.searchParams.get('X-Amz-SignedHeaders') !== 'host') return false;
  const canonical = ['GET', u.pathname, query, `host:${host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/s3/aws4_request`, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let k: Buffer = createHmac('sha256', `AWS4${secret}`).update(date!).digest();
  for (const part of [region!, 's3', 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
  return createHmac('sha256', k).update(toSign).digest('hex') === given;
}

describe('storage.s3.redirect: config', () => {
  const s3 = (redirect: Record<string, unknown>) => ({
    storage: { kind: 's3', s3: { endpoint: 'http://127.0.0.1:9', bucket: 'nupkgs', accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET', redirect } },
  });
  const problems = (raw: Record<string, unknown>): string[] => {
    try {
      validateConfig(raw, env, 'test');
      return [];
    } catch (err) {
      if (isNuproxyError(err, 'CONFIG_INVALID')) return err.details.problems as string[];
      throw err;
    }
  };

  it('is off by default with a 5 minute TTL', () => {
    const c = validateConfig(s3({}), env, 'test').config;
    expect(c.storage.s3!.redirect).toEqual({ enabled: false, ttl: 300_000 });
  });

  it('holds the TTL to 10 s .. 7 d and publicEndpoint to an http(s) URL without credentials', () => {
    expect(validateConfig(s3({ enabled: true, ttl: '10s' }), env, 'test').config.storage.s3!.redirect.ttl).toBe(10_000);
    expect(validateConfig(s3({ enabled: true, ttl: '7d' }), env, 'test').config.storage.s3!.redirect.ttl).toBe(604_800_000);
    expect(problems(s3({ ttl: '9s' }))).toEqual([expect.stringMatching(/^storage\.s3\.redirect\.ttl: must be between 10s and 7d/)]);
    expect(problems(s3({ ttl: '8d' }))).toEqual([expect.stringMatching(/^storage\.s3\.redirect\.ttl: must be between 10s and 7d/)]);
    expect(problems(s3({ ttl: 'soon' }))).toEqual([expect.stringMatching(/^storage\.s3\.redirect\.ttl: not a duration/)]);
    expect(problems(s3({ publicEndpoint: 'ftp://bucket.example.com' }))).toEqual([expect.stringMatching(/^storage\.s3\.redirect\.publicEndpoint: /)]);
    expect(problems(s3({ publicEndpoint: 'https://k:s@bucket.example.com' }))).toEqual([expect.stringMatching(/^storage\.s3\.redirect\.publicEndpoint: must not contain credentials/)]);
    expect(problems(s3({ enable: true }))).toEqual([expect.stringMatching(/^storage\.s3\.redirect: /)]);
  });
});

describe('storage.s3.redirect: package GETs answered with a presigned URL of the bucket', () => {
  let s3: TestS3;
  let upstream: TestUpstream;
  const proxies: TestProxy[] = [];
  const small = Buffer.from(makeNupkg({ id: 'Redirect.Small', version: '1.0.0' }));
  const large = Buffer.from(makeNupkg({ id: 'Redirect.Large', version: '2.0.0', padBytes: 3 * 1024 * 1024 }));
  const paths = {
    small: 'v3/flat/redirect.small/1.0.0/redirect.small.1.0.0.nupkg',
    large: 'v3/flat/redirect.large/2.0.0/redirect.large.2.0.0.nupkg',
    nuspec: 'v3/flat/redirect.small/1.0.0/redirect.small.nuspec',
  };
  const keys = { small: 'packages/redirect.small/1.0.0/redirect.small.1.0.0.nupkg', large: 'packages/redirect.large/2.0.0/redirect.large.2.0.0.nupkg' };
  /** A presigned URL handed out early, and when: the last test checks that it has expired. */
  let early: { location: string; at: number } | undefined;

  const start = async (redirect: Record<string, unknown>, extra: { localTier?: Record<string, unknown> } = {}): Promise<TestProxy> => {
    const p = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: { storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET', redirect }, ...extra } },
      env,
    });
    proxies.push(p);
    return p;
  };
  const committed = (key: string) => eventually(() => s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })));
  const requestLines = (p: TestProxy) => p.logs.lines.filter((l) => l.msg === 'request');

  beforeAll(async () => {
    s3 = await startS3('nupkgs');
    upstream = await startTestUpstream({ packages: [small, large] });
  });
  afterAll(async () => {
    for (const p of proxies) await p.stop().catch(() => undefined);
    await upstream?.close();
    await s3?.close();
  });

  it('a miss is streamed by nuproxy (200); once committed, GET answers 302 to a URL whose GET at the bucket is the exact bytes', async () => {
    const p = await start({ enabled: true, ttl: `${TTL_S}s` });
    for (const which of ['small', 'large'] as const) {
      const miss = await get(p.url + paths[which]);
      expect(miss.status, which).toBe(200);
      expect(miss.headers['x-nuproxy-cache'], which).toBe('miss');
      expect(miss.body.equals(which === 'small' ? small : large), which).toBe(true);
    }
    for (const which of ['small', 'large'] as const) {
      await committed(keys[which]);
      const bytes = which === 'small' ? small : large;
      const r = await get(p.url + paths[which]);
      expect(r.status, which).toBe(302);
      expect(r.body.length, which).toBe(0);
      expect(r.headers['content-length']).toBe('0');
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['x-nuproxy-cache']).toBe('hit');
      expect(r.headers['x-nuproxy-upstream']).toBe('up0');
      const location = String(r.headers.location);
      const u = new URL(location);
      expect(`${u.origin}${u.pathname}`).toBe(`${s3.endpoint}/${s3.bucket}/${keys[which]}`);
      expect(u.searchParams.get('X-Amz-Expires')).toBe(String(TTL_S));
      expect(u.searchParams.get('X-Amz-SignedHeaders')).toBe('host'); // a plain GET is all a client must send
      expect(u.searchParams.get('response-content-type')).toBe('application/octet-stream');
      expect(signatureValid(location, u.host), 'signed for the bucket host').toBe(true);
      expect(signatureValid(location, u.host, 'another-secret'), 'the check can fail').toBe(false);
      if (which === 'small') early ??= { location, at: Date.now() };

      const fromBucket = await get(location);
      expect(fromBucket.status, which).toBe(200);
      expect(fromBucket.headers['content-type']).toBe('application/octet-stream');
      expect(fromBucket.body.equals(bytes), which).toBe(true);
    }
    // nothing was read into nuproxy's memory tier: the same answer again is a redirect, not a memory hit
    expect((await get(p.url + paths.small)).status).toBe(302);
  });

  it('HEAD and ranged GETs redirect too; the bucket honours the Range; a matching If-None-Match is a 304', async () => {
    const p = proxies[0]!;
    const head = await get(p.url + paths.large, { method: 'HEAD' });
    expect(head.status).toBe(302);
    expect(head.headers['cache-control']).toBe('no-store');
    expect(String(head.headers.location)).toContain(`/${s3.bucket}/${keys.large}?`);

    const ranged = await get(p.url + paths.large, { headers: { range: 'bytes=100-1099' } });
    expect(ranged.status).toBe(302);
    const part = await get(String(ranged.headers.location), { headers: { range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.body.equals(large.subarray(100, 1100))).toBe(true);

    // the client holds it already (its ETag, from an instance without redirects): no redirect, no bytes
    const plain = await start({});
    const tag = String((await get(plain.url + paths.large, { method: 'HEAD' })).headers.etag);
    expect(tag).toMatch(/^"/);
    const conditional = await get(p.url + paths.large, { headers: { 'if-none-match': tag } });
    expect(conditional.status).toBe(304);
    expect(conditional.headers.location).toBeUndefined();
  });

  it('nuspecs are never redirected', async () => {
    const p = proxies[0]!;
    for (let i = 0; i < 2; i++) {
      const r = await get(p.url + paths.nuspec);
      expect(r.status).toBe(200);
      expect(r.headers.location).toBeUndefined();
      expect(r.body.toString('utf8')).toContain('<id>Redirect.Small</id>');
    }
  });

  it('the request log counts and names each redirect, never with its signature', async () => {
    const p = proxies[0]!;
    const redirected = requestLines(p).filter((l) => l.status === 302);
    expect(redirected.length).toBeGreaterThanOrEqual(5);
    for (const l of redirected) {
      expect(String(l.path)).toMatch(/\.nupkg$/);
      expect(String(l.redirect)).toMatch(new RegExp(`^${s3.endpoint}/${s3.bucket}/packages/redirect\\.(small|large)/`));
      expect(String(l.redirect)).not.toContain('?');
    }
    expect(requestLines(p).filter((l) => l.redirect !== undefined && l.status !== 302)).toEqual([]);
    const raw = proxies.map((x) => x.logs.raw()).join('');
    expect(raw).not.toContain('X-Amz-Signature');
    expect(raw).not.toContain(new URL(early!.location).searchParams.get('X-Amz-Signature')!);
    expect(raw).not.toContain(`"${S3RVER_SECRET}"`);
  });

  it('with the local tier on too, a committed package still redirects to the bucket (the tier forwards presign)', async () => {
    const tiered = await start({ enabled: true }, { localTier: { maxSize: '64MB' } });
    const r = await get(tiered.url + paths.large);
    expect(r.status).toBe(302);
    const location = String(r.headers.location);
    expect(new URL(location).pathname).toBe(`/${s3.bucket}/${keys.large}`);
    expect((await get(location)).body.equals(large)).toBe(true);
  });

  it('with redirect off (the default) nothing changes: the same committed package is a 200 hit with its bytes', async () => {
    const off = await start({});
    for (const which of ['small', 'large'] as const) {
      const r = await get(off.url + paths[which]);
      expect(r.status, which).toBe(200);
      expect(r.headers.location).toBeUndefined();
      expect(r.headers['x-nuproxy-cache']).toBe('hit');
      expect(r.body.equals(which === 'small' ? small : large), which).toBe(true);
    }
    expect(requestLines(off).filter((l) => l.redirect !== undefined)).toEqual([]);
  });

  it('publicEndpoint: the URL points at (and is signed for) the address clients reach the bucket at', async () => {
    const fwd = await forwarder(s3.port);
    try {
      const p = await start({ enabled: true, publicEndpoint: fwd.url });
      const r = await get(p.url + paths.small);
      expect(r.status).toBe(302);
      const location = String(r.headers.location);
      expect(location.startsWith(`${fwd.url}/${s3.bucket}/${keys.small}?`)).toBe(true);
      expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('300');
      // signed for the public host, so it holds there and nowhere else
      expect(signatureValid(location, new URL(fwd.url).host)).toBe(true);
      expect(signatureValid(location, new URL(s3.endpoint).host)).toBe(false);
      const fromBucket = await get(location);
      expect(fromBucket.status).toBe(200);
      expect(fromBucket.body.equals(small)).toBe(true);
    } finally {
      await fwd.close();
    }
  });

  it('only the server redirects: the core the commands use (warm, export) reads the package itself', async () => {
    const s3cfg = { endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET', redirect: { enabled: true } };
    const loaded = validateConfig({ cache: { dir: proxies[0]!.cacheDir }, storage: { kind: 's3', s3: s3cfg }, upstreams: [{ name: 'up0', serviceIndex: upstream.serviceIndexUrl }] }, env, 'test');
    const core = await createCore(loaded, { logger: createLogSink().logger, sweepTemp: false });
    try {
      const h = await core.feed.openPackage('redirect.small', '1.0.0', 'nupkg', 'GET');
      expect(h?.kind).toBe('file');
    } finally {
      await core.close();
    }
  });

  it(`a presigned URL stops working once its TTL (${TTL_S} s) is over`, async () => {
    expect(early, 'a URL from the first test').toBeDefined();
    // X-Amz-Date is in whole seconds: the URL may expire up to 1 s early, never late
    const wait = early!.at + (TTL_S + 1.5) * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const r = await get(early!.location);
    expect(r.status).toBe(403);
    expect(r.body.toString('utf8')).toContain('Request has expired');
    // and nuproxy hands out a fresh one
    const again = await get(proxies[0]!.url + paths.small);
    expect(again.status).toBe(302);
    expect((await get(String(again.headers.location))).body.equals(small)).toBe(true);
  }, 30_000);
});
