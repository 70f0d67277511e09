// Package files from a hostile upstream (test/support/hostile), through the built nuproxy in its own process: bodies
// that are not what they claim, the upstream's bearer token inside a package, announced lengths far over the limit,
// endless and slow bodies, abandoned downloads, packages whose nuspec names another package. For every case: the
// documented answer (checked at the socket: a 502 JSON is a 502 JSON, not a 200 cut short), nothing of it in the
// cache (test/support/cache-audit.ts), no secret in any answer or log line, the process alive with its memory back
// near where it started.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { auditCache, waitForEmptyTmp } from '../support/cache-audit.js';
import { get } from '../support/http.js';
import { makeNupkg } from '../support/nupkg.js';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { rssOf, startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import {
  announces,
  echoAuthorization,
  endless,
  everyIdHas,
  flatPath,
  identity,
  notAZip,
  nuspecClaiming,
  serveBytes,
  trickle,
  VERSION_LISTS,
  ZIP_START,
  type Watch,
} from '../support/hostile/packages.js';

const TOKEN = `hostile-bearer-${randomBytes(16).toString('hex')}`;
const MB = 1024 * 1024;
/** nuproxy answers packages up to this size only once verified (src/feed/packages.ts ANSWER_WHEN_VERIFIED). */
const VERIFIED_FIRST = 2 * MB;

type Outcome = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; cut?: string };

/** A GET that also reports a body cut off (the proxy's way to refuse bytes it has started to send). */
async function fetchOutcome(url: string, dispatcher?: Agent): Promise<Outcome> {
  const res = await request(url, { headersTimeout: 30_000, bodyTimeout: 30_000, ...(dispatcher ? { dispatcher } : {}) });
  const chunks: Buffer[] = [];
  try {
    for await (const c of res.body) chunks.push(c as Buffer);
  } catch (err) {
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), cut: (err as Error).message };
  }
  const body = Buffer.concat(chunks);
  const declared = res.headers['content-length'];
  const cut = typeof declared === 'string' && Number(declared) !== body.length ? `body ${body.length} of ${declared} bytes` : undefined;
  return { status: res.statusCode, headers: res.headers, body, ...(cut ? { cut } : {}) };
}

async function until(probe: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const newWatch = (): Watch => ({ started: 0, closed: 0, bytes: 0 });

describe('package files from a hostile upstream', () => {
  let dir: string;
  let cacheDir: string;
  let hostile: HostileUpstream;
  let proxy: NuproxyProcess;
  let rssStart = 0;
  const pkgUrl = (lowerId: string, lowerVersion = '1.0.0', file: 'nupkg' | 'nuspec' = 'nupkg'): string =>
    `${proxy.url}v3/flat/${lowerId}/${lowerVersion}/${file === 'nupkg' ? `${lowerId}.${lowerVersion}.nupkg` : `${lowerId}.nuspec`}`;

  /** The answer is the documented 502: JSON, naming the upstream; never a byte of the body, never the token. */
  const expectRefused = (o: Outcome, message: RegExp): void => {
    expect(o.cut, 'a status, not a cut body').toBeUndefined();
    expect(o.status).toBe(502);
    expect(String(o.headers['content-type'])).toMatch(/^application\/json/);
    const body = JSON.parse(o.body.toString('utf8')) as Record<string, unknown>;
    expect(body.upstream).toBe('hostile');
    expect(String(body.message)).toMatch(message);
    expect(o.body.toString('latin1')).not.toContain(TOKEN);
  };

  /** Nothing of `lowerId` in the cache, nothing left in .tmp, and the cache sound. */
  const expectNothingStored = async (lowerId: string): Promise<void> => {
    expect(await waitForEmptyTmp(cacheDir, 10_000)).toEqual([]);
    const audit = await auditCache(cacheDir);
    expect(audit.problems).toEqual([]);
    expect(audit.blobs.filter((b) => b.startsWith(`packages/${lowerId}/`))).toEqual([]);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-hostile-pkg-'));
    cacheDir = join(dir, 'cache');
    hostile = await startHostileUpstream();
    hostile.on(VERSION_LISTS, everyIdHas(['1.0.0', '2.0.0-beta']));
    proxy = await startNuproxy(
      dir,
      'hostile',
      {
        cache: { dir: cacheDir },
        upstreams: [
          {
            name: 'hostile',
            serviceIndex: hostile.serviceIndexUrl,
            auth: { type: 'bearer', tokenEnv: 'HOSTILE_TOKEN' },
            retries: 0,
            timeouts: { connect: '2s', headers: '10s', body: '20s' },
            circuitBreaker: { failures: 1000 },
            limits: { packageBytes: '3MB', nuspecBytes: '64KB', abandonAfter: '1s' },
          },
        ],
      },
      [],
      { HOSTILE_TOKEN: TOKEN },
    );
    expect((await get(`${proxy.url}v3/index.json`)).status).toBe(200);
    // a first good package, so the baseline includes a download's working set
    hostile.on(flatPath('good.first', '1.0.0'), serveBytes(makeNupkg({ id: 'Good.First', version: '1.0.0' })));
    expect((await fetchOutcome(pkgUrl('good.first'))).status).toBe(200);
    rssStart = await rssOf(proxy.child.pid!);
  });
  afterAll(async () => {
    await proxy?.stop();
    await hostile?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a body that does not start as a zip gets a 502 JSON before one byte of it is sent, and is not stored', async () => {
    hostile.on(flatPath('not.a.zip', '1.0.0'), notAZip(VERIFIED_FIRST + 512 * 1024));
    expectRefused(await fetchOutcome(pkgUrl('not.a.zip')), /^upstream hostile sent a body that is not a package \(it does not start as a zip archive\)$/);
    await expectNothingStored('not.a.zip');
    // a .nuspec fetched on its own must start as XML
    hostile.on(flatPath('not.xml', '1.0.0', 'nuspec'), serveBytes(Buffer.from('{"id": "not.xml", "version": "1.0.0"}')));
    expectRefused(await fetchOutcome(pkgUrl('not.xml', '1.0.0', 'nuspec')), /not a \.nuspec \(it does not start as XML\)/);
    await expectNothingStored('not.xml');
  });

  it('a package carrying the upstream token is refused: a 502 while nothing was sent, a cut connection before the token once streaming', async () => {
    hostile.on(flatPath('echo.small', '1.0.0'), echoAuthorization({ id: 'Echo.Small', version: '1.0.0' }));
    expectRefused(await fetchOutcome(pkgUrl('echo.small')), /contains a configured secret: refused/);
    await expectNothingStored('echo.small');
    // a large one streams before the token arrives: the connection is cut, and not even its first half went out
    hostile.on(flatPath('echo.large', '1.0.0'), echoAuthorization({ id: 'Echo.Large', version: '1.0.0' }, { padBefore: VERIFIED_FIRST + 256 * 1024 }));
    const o = await fetchOutcome(pkgUrl('echo.large'));
    expect(o.status).toBe(200);
    expect(o.cut, 'the connection is cut').toBeDefined();
    expect(o.body.toString('latin1')).not.toContain(TOKEN.slice(0, TOKEN.length / 2));
    await expectNothingStored('echo.large');
    expect(hostile.requests.some((r) => r.headers.authorization === `Bearer ${TOKEN}`), 'the upstream did get the token').toBe(true);
  });

  it('a Content-Length over the limit is refused at once with a 502 naming the limit, and the upstream connection is let go', async () => {
    const w = newWatch();
    hostile.on(flatPath('huge.length', '1.0.0'), announces(10 * 1024 ** 3, ZIP_START, w));
    const started = Date.now();
    const o = await fetchOutcome(pkgUrl('huge.length'));
    expectRefused(o, /^upstream hostile announced a package of 10 GB, more than limits\.packageBytes \(3 MB\)$/);
    expect(o.headers['content-length']).not.toBe(String(10 * 1024 ** 3));
    await until(() => w.closed === w.started && w.started === 1, 'the upstream connection to be closed');
    // a HEAD does not relay it either
    const head = await request(pkgUrl('huge.length'), { method: 'HEAD' });
    await head.body.dump();
    expect(head.statusCode).toBe(502);
    expect(head.headers['content-length']).not.toBe(String(10 * 1024 ** 3));
    // and a .nuspec has its own, smaller limit
    hostile.on(flatPath('huge.nuspec', '1.0.0', 'nuspec'), announces(200 * MB, Buffer.from('<'), w));
    expectRefused(await fetchOutcome(pkgUrl('huge.nuspec', '1.0.0', 'nuspec')), /announced a \.nuspec of 200 MB, more than limits\.nuspecBytes \(64 KB\)/);
    await expectNothingStored('huge.length');
    await expectNothingStored('huge.nuspec');
    console.log(`[hostile] 10 GB Content-Length refused in ${Date.now() - started} ms (a HEAD and a 200 MB .nuspec too)`);
  });

  it('a body without Content-Length is cut at the limit, nothing stored, the upstream connection let go', async () => {
    const w = newWatch();
    hostile.on(flatPath('endless.chunked', '1.0.0'), endless(ZIP_START, w));
    const o = await fetchOutcome(pkgUrl('endless.chunked'));
    // past VERIFIED_FIRST it was streaming: the connection is cut at the limit
    expect(o.status).toBe(200);
    expect(o.cut).toBeDefined();
    expect(o.body.length).toBeLessThanOrEqual(3 * MB);
    await until(() => w.closed === 1, 'the upstream connection to be closed');
    await expectNothingStored('endless.chunked');
    // an endless .nuspec is under the size that is answered only once verified: a 502
    hostile.on(flatPath('endless.nuspec', '1.0.0', 'nuspec'), endless(Buffer.from('<package>'), w, 4096));
    expectRefused(await fetchOutcome(pkgUrl('endless.nuspec', '1.0.0', 'nuspec')), /sent a \.nuspec larger than limits\.nuspecBytes \(64 KB\)/);
    await until(() => w.closed === 2, 'the upstream connection to be closed');
    await expectNothingStored('endless.nuspec');
  });

  it('32 downloads whose clients left are cancelled after abandonAfter: upstream connections closed, .tmp empty, the next package downloads', async () => {
    const w = newWatch();
    const N = 32;
    hostile.on(/^\/v3-flatcontainer\/slow\.p\d+\/1\.0\.0\/slow\.p\d+\.1\.0\.0\.nupkg$/, trickle(ZIP_START, w, 16, 50));
    const agent = new Agent({ connections: N + 4 });
    const clients = Array.from({ length: N }, (_, i) => {
      const ac = new AbortController();
      const done = request(pkgUrl(`slow.p${i}`), { dispatcher: agent, signal: ac.signal, headersTimeout: 60_000, bodyTimeout: 60_000 })
        .then(async (res) => {
          for await (const _ of res.body) void _;
        })
        .catch(() => undefined);
      return { ac, done };
    });
    await until(() => w.started === N, `${N} downloads to reach the upstream`);
    const rssBusy = await rssOf(proxy.child.pid!);
    for (const c of clients) c.ac.abort();
    await Promise.all(clients.map((c) => c.done));
    const left = Date.now();
    await until(() => w.closed === N, `the upstream to see all ${N} connections closed (${w.closed} so far)`);
    const ms = Date.now() - left;
    expect(await waitForEmptyTmp(cacheDir, 10_000)).toEqual([]);
    for (let i = 0; i < N; i++) expect((await auditCache(cacheDir)).blobs.some((b) => b.startsWith(`packages/slow.p${i}/`))).toBe(false);
    // the upstream's connections are free again: a package nobody has fetched downloads at once
    const fresh = Buffer.from(makeNupkg({ id: 'Fresh.After', version: '1.0.0', padBytes: 300 * 1024 }));
    hostile.on(flatPath('fresh.after', '1.0.0'), serveBytes(fresh));
    const o = await fetchOutcome(pkgUrl('fresh.after'));
    expect(o.status).toBe(200);
    expect(o.body.equals(fresh)).toBe(true);
    await agent.close();
    console.log(`[hostile] ${N} abandoned downloads: all upstream connections closed ${ms} ms after the clients left (abandonAfter 1 s); RSS while busy ${(rssBusy / MB).toFixed(0)} MB`);
  });

  it('a client asking within the budget keeps the download going after the first one left, and gets the whole package', async () => {
    let release!: () => void;
    const rest = new Promise<void>((r) => (release = r));
    const bytes = Buffer.from(makeNupkg({ id: 'Kept.Alive', version: '1.0.0', padBytes: VERIFIED_FIRST + 512 * 1024 }));
    const half = VERIFIED_FIRST + 128 * 1024;
    const w = newWatch();
    hostile.on(flatPath('kept.alive', '1.0.0'), async (_req, res) => {
      w.started++;
      res.once('close', () => w.closed++);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, half));
      await rest;
      res.end(bytes.subarray(half));
    });
    const first = new AbortController();
    const a = await request(pkgUrl('kept.alive'), { signal: first.signal });
    expect(a.statusCode).toBe(200);
    let seen = 0;
    for await (const c of a.body) {
      seen += (c as Buffer).length;
      if (seen > VERIFIED_FIRST) break; // the first client leaves in the middle
    }
    first.abort();
    const leftAt = Date.now();
    const second = fetchOutcome(pkgUrl('kept.alive'));
    await until(() => Date.now() > leftAt + 1500, 'the budget (1 s) to have passed since the first client left');
    expect(w.closed, 'the upstream download is still going').toBe(0);
    release();
    const b = await second;
    expect(b.cut).toBeUndefined();
    expect(b.headers['x-nuproxy-cache']).toBe('shared');
    expect(b.body.equals(bytes)).toBe(true);
    await until(async () => (await auditCache(cacheDir)).blobs.includes('packages/kept.alive/1.0.0/kept.alive.1.0.0.nupkg'), 'the package in the cache');
  });

  it('a package whose nuspec names another id or version is a 502 and is not stored; NuGet-equal identities are taken', async () => {
    hostile.on(flatPath('wrongid', '1.0.0'), identity('Evil.Other', '6.6.6'));
    expectRefused(await fetchOutcome(pkgUrl('wrongid')), /^upstream hostile sent a package whose nuspec names another id than wrongid$/);
    hostile.on(flatPath('rightid', '1.0.0'), identity('RightId', '2.0.0'));
    expectRefused(await fetchOutcome(pkgUrl('rightid')), /^upstream hostile sent a package whose nuspec names another version than 1\.0\.0$/);
    hostile.on(flatPath('lone.wrong', '1.0.0', 'nuspec'), nuspecClaiming('Evil.Other', '6.6.6'));
    expectRefused(await fetchOutcome(pkgUrl('lone.wrong', '1.0.0', 'nuspec')), /sent a \.nuspec whose nuspec names another id than lone\.wrong/);
    // asked again: refused again (nothing was remembered as good)
    expectRefused(await fetchOutcome(pkgUrl('wrongid')), /another id/);
    for (const id of ['wrongid', 'rightid', 'lone.wrong']) await expectNothingStored(id);
    // equal the way NuGet compares: id in another case, 2.0.0-BETA for 2.0.0-beta, 1.0 for 1.0.0
    hostile.on(flatPath('case.id', '2.0.0-beta'), identity('CASE.Id', '2.0.0-BETA'));
    const ok = await fetchOutcome(pkgUrl('case.id', '2.0.0-beta'));
    expect(ok.status).toBe(200);
    expect(ok.cut).toBeUndefined();
    hostile.on(flatPath('short.version', '1.0.0'), identity('Short.Version', '1.0'));
    expect((await fetchOutcome(pkgUrl('short.version'))).status).toBe(200);
    // answered once verified, moved into place right after
    const stored = ['packages/case.id/2.0.0-beta/case.id.2.0.0-beta.nupkg', 'packages/short.version/1.0.0/short.version.1.0.0.nupkg'];
    await until(async () => {
      const blobs = (await auditCache(cacheDir)).blobs;
      return stored.every((b) => blobs.includes(b));
    }, 'both packages in the cache');
  });

  it('is alive afterwards, its memory back near the start, and no log line holds the token', async () => {
    expect(proxy.child.exitCode).toBeNull();
    expect((await get(`${proxy.url}health/live`)).status).toBe(200);
    let rssEnd = await rssOf(proxy.child.pid!);
    // memory settles after the downloads' buffers are released; poll instead of waiting a fixed time
    await until(async () => (rssEnd = await rssOf(proxy.child.pid!)) < rssStart + 96 * MB, `RSS back near its start (start ${(rssStart / MB).toFixed(0)} MB)`, 10_000).catch(() => undefined);
    console.log(`[hostile] RSS at start ${(rssStart / MB).toFixed(0)} MB, at the end ${(rssEnd / MB).toFixed(0)} MB`);
    expect(rssEnd).toBeLessThan(rssStart + 96 * MB);
    const logText = proxy.lines.map((l) => JSON.stringify(l)).join('\n') + proxy.invalid.join('\n');
    expect(logText).not.toContain(TOKEN);
    expect(logText).not.toContain(Buffer.from(TOKEN).toString('base64'));
    // the refusals were logged as failed downloads, naming the upstream
    expect(proxy.lines.some((l) => l.msg === 'package download failed; nothing stored' && l.upstream === 'hostile')).toBe(true);
  });

  it('offline on the same cache: nothing of the refused packages or of Evil.Other in registration, versions or search', async () => {
    await proxy.stop();
    const offline = await startNuproxy(dir, 'offline', {
      offline: true,
      cache: { dir: cacheDir },
      upstreams: [{ name: 'hostile', serviceIndex: hostile.serviceIndexUrl }],
    });
    try {
      for (const id of ['wrongid', 'rightid', 'evil.other', 'echo.small', 'not.a.zip']) {
        expect((await get(`${offline.url}v3/flat/${id}/index.json`)).status, id).toBe(404);
        expect((await get(`${offline.url}v3/registration/semver2/${id}/index.json`)).status, id).not.toBe(200);
      }
      // no cached id matches: 404 (offline search answers over cached packages only)
      const search = await get(`${offline.url}v3/query?q=evil&prerelease=true&semVerLevel=2.0.0`);
      expect(search.status === 404 || (search.status === 200 && !search.text.toLowerCase().includes('evil')), `${search.status} ${search.text.slice(0, 200)}`).toBe(true);
      const all = await get(`${offline.url}v3/query?q=&take=1000&prerelease=true&semVerLevel=2.0.0`);
      expect(all.text.toLowerCase()).not.toMatch(/evil|wrongid|rightid/);
      // what was taken is there
      expect(all.text.toLowerCase()).toContain('case.id');
    } finally {
      await offline.stop();
    }
  });
});
