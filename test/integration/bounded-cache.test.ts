// The bounded cache (issue #14) with real parts, on the disk and on S3 (s3rver): nuproxy filled past
// cache.maxSize through the test upstream stays under the cap once eviction has run, keeps the packages read most
// and the pinned ones, fetches an evicted package again on demand with the right bytes, and an offline version
// list built from the store no longer lists what went. A package being sent is never removed under its reader;
// offline nothing is evicted; `nuproxy prune --dry-run` changes nothing and `prune` applies the same plan.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunningApp } from '../../src/app.js';
import { pruneCommand } from '../../src/cli/prune.js';
import { warmCommand } from '../../src/cli/warm.js';
import { validateConfig } from '../../src/config/load.js';
import { walkStore } from '../../src/feed/evictor.js';
import { createLogSink } from '../support/log-sink.js';
import { makeNupkg } from '../support/nupkg.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const sha512 = (b: Uint8Array): string => createHash('sha512').update(b).digest('base64');
const KB = 1024;
const PAD = 200 * KB;
const eventuallyEvery = <T>(probe: () => Promise<T>, timeoutMs = 20_000): Promise<T> => eventually(probe, timeoutMs, 100);
const env = { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET };

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(url);
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}


const pkgPath = (id: string, v: string): string => `v3/flat/${id.toLowerCase()}/${v}/${id.toLowerCase()}.${v}.nupkg`;

describe.each(['fs', 's3'] as const)('bounded cache on %s', (kind) => {
  let upstream: TestUpstream;
  let s3: TestS3 | undefined;
  const dirs: string[] = [];
  const apps: RunningApp[] = [];
  const bytes = new Map<string, Buffer>();
  const add = (id: string, version: string, pad = PAD): void => {
    const b = Buffer.from(makeNupkg({ id, version, padBytes: pad }));
    bytes.set(`${id.toLowerCase()}/${version}`, b);
    upstream.addPackage(b);
  };

  beforeAll(async () => {
    upstream = await startTestUpstream();
    if (kind === 's3') s3 = await startS3(`evict-${process.pid % 1000}`);
    for (let i = 0; i < 10; i++) add('Cold.Lib', `1.0.${i}`);
    add('Hot.A', '1.0.0');
    add('Hot.B', '1.0.0');
    add('Pinned.Lib', '1.0.0');
    add('Big.Lib', '1.0.0', 8 * 1024 * KB);
    for (let i = 0; i < 4; i++) add('Filler', `2.0.${i}`);
  }, 60_000);

  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => undefined);
    await upstream?.close();
    await s3?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const rawConfig = (cacheDir: string, cache: Record<string, unknown>, extra: Record<string, unknown> = {}, prefix = 'a/'): Record<string, unknown> => ({
    listen: { host: '127.0.0.1', port: 0 },
    cache: { dir: cacheDir, ...cache },
    upstreams: [{ name: 'up', serviceIndex: upstream.serviceIndexUrl, retries: 1 }],
    ...(s3 ? { storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } } } : {}),
    ...extra,
  });
  const start = async (raw: Record<string, unknown>): Promise<RunningApp & { logs: ReturnType<typeof createLogSink> }> => {
    const logs = createLogSink('info');
    const app = await startApp(validateConfig(raw, env, 'test'), { logger: logs.logger, retryDelayMs: 10 });
    apps.push(app);
    return Object.assign(app, { logs });
  };
  const stored = async (app: RunningApp): Promise<{ bytes: number; refs: string[] }> => {
    const index = await walkStore(app.blobs, createLogSink('warn').logger);
    let n = 0;
    for (const e of index.values()) n += e.bytes;
    return { bytes: n, refs: [...index.keys()].sort() };
  };
  const fetchOk = async (app: RunningApp, id: string, v: string): Promise<void> => {
    const r = await get(`${app.url}${pkgPath(id, v)}`);
    expect(r.status).toBe(200);
    expect(sha512(r.body)).toBe(sha512(bytes.get(`${id.toLowerCase()}/${v}`)!));
  };
  const newDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'nuproxy-evict-'));
    dirs.push(d);
    return d;
  };

  it('stays under cache.maxSize, keeps the hottest and the pinned, fetches an evicted package again, and offline lists only what is left', async () => {
    const dir = await newDir();
    // ~ 6 packages of 200 KB fit
    const cache = { maxSize: 1300 * KB, evictTo: 0.8, evictEvery: '1s', pins: ['Pinned.*'] };
    const app = await start(rawConfig(dir, cache));
    await fetchOk(app, 'Pinned.Lib', '1.0.0');
    await fetchOk(app, 'Hot.A', '1.0.0');
    await fetchOk(app, 'Hot.B', '1.0.0');
    for (let i = 0; i < 10; i++) {
      await fetchOk(app, 'Cold.Lib', `1.0.${i}`);
      // the hot ones are read again and again (what a restore of the busy projects does)
      await fetchOk(app, 'Hot.A', '1.0.0');
      await fetchOk(app, 'Hot.B', '1.0.0');
    }
    const after = await eventuallyEvery(async () => {
      const s = await stored(app);
      expect(s.bytes).toBeLessThanOrEqual(1300 * KB);
      return s;
    });
    expect(after.refs).toEqual(expect.arrayContaining(['hot.a/1.0.0', 'hot.b/1.0.0', 'pinned.lib/1.0.0']));
    // each eviction is logged (id, version, rule, bytes), and what it names is gone from the store
    const evictedLines = app.logs.lines.filter((l) => l.msg === 'evicted');
    const gone = evictedLines.map((l) => `${String(l.id)}/${String(l.version)}`);
    expect(gone.length).toBeGreaterThanOrEqual(4);
    expect(gone.every((r) => r.startsWith('cold.lib/'))).toBe(true);
    expect(gone[0]).toBe('cold.lib/1.0.0'); // the least recently used went first
    // (read after the lines: a round may have evicted more since `after`; a package is removed before it is logged)
    const now = await stored(app);
    for (const r of gone) expect(now.refs).not.toContain(r);
    expect(evictedLines[0]).toMatchObject({ id: 'cold.lib', rule: 'size' });
    expect(typeof evictedLines[0]!.bytes).toBe('number');

    // an evicted package is fetched again on demand, with the right bytes
    const asked = (): number => upstream.requests.filter((r) => r.path.includes('cold.lib.1.0.0.nupkg')).length;
    const before = asked();
    await fetchOk(app, 'Cold.Lib', '1.0.0');
    expect(asked()).toBeGreaterThan(before);
    await app.close();

    // offline on the same store: the version list built from it lists exactly what is stored; nothing is evicted
    // there although the cap is far lower (offline, eviction needs cache.evictOffline)
    const offline = await start(rawConfig(dir, { ...cache, maxSize: 100 * KB }, { offline: true }));
    const storedNow = await stored(offline);
    const list = await get(`${offline.url}v3/flat/cold.lib/index.json`);
    expect(list.status).toBe(200);
    const versions = (JSON.parse(list.body.toString()) as { versions: string[] }).versions;
    expect(versions.map((v) => `cold.lib/${v}`).sort()).toEqual(storedNow.refs.filter((r) => r.startsWith('cold.lib/')));
    for (const g of gone.filter((r) => r !== 'cold.lib/1.0.0')) expect(versions).not.toContain(g.split('/')[1]);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await stored(offline)).refs).toEqual(storedNow.refs);
    expect(offline.logs.lines.filter((l) => l.msg === 'evicted')).toEqual([]);
    await offline.close();
  }, 120_000);

  it('never removes a package while it is being sent', async () => {
    const dir = await newDir();
    const cache = { maxSize: 8 * 1024 * KB + 300 * KB, evictTo: 0.9, evictEvery: '1s' };
    const app = await start(rawConfig(dir, cache, {}, 'b/'));
    await fetchOk(app, 'Big.Lib', '1.0.0'); // stored; the next GET is sent from the store (too big for memory)
    // a client that reads slowly: the send stays under way while the store fills past the cap
    const slow = await request(`${app.url}${pkgPath('Big.Lib', '1.0.0')}`);
    expect(slow.statusCode).toBe(200);
    for (let i = 0; i < 4; i++) await fetchOk(app, 'Filler', `2.0.${i}`);
    await new Promise((r) => setTimeout(r, 2500)); // two eviction runs at least
    expect((await stored(app)).refs).toContain('big.lib/1.0.0');
    const chunks: Buffer[] = [];
    for await (const c of slow.body) chunks.push(c as Buffer);
    // once the reader is done, the next run may take it (the least recently used)
    expect(sha512(Buffer.concat(chunks))).toBe(sha512(bytes.get('big.lib/1.0.0')!));
    await eventuallyEvery(async () => expect((await stored(app)).bytes).toBeLessThanOrEqual(cache.maxSize));
    await app.close();
  }, 120_000);

  it('nuproxy prune --dry-run changes nothing; prune applies the same plan', async () => {
    const dir = await newDir();
    const prefix = 'c/';
    const app = await start(rawConfig(dir, {}, {}, prefix)); // unbounded: fills freely
    for (let i = 0; i < 6; i++) await fetchOk(app, 'Cold.Lib', `1.0.${i}`);
    await app.close(); // the nuspecs are kept by then
    const first = await start(rawConfig(dir, {}, {}, prefix));
    const full = await stored(first);
    await first.close();
    const loaded = validateConfig(rawConfig(dir, { maxSize: 700 * KB, evictTo: 0.8, retention: { keepVersions: 5 } }, {}, prefix), env, 'test');
    const run = async (args: string[]): Promise<{ code: number; out: string }> => {
      let out = '';
      const stdout = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
      const stderr = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
      const code = await pruneCommand(args, { loaded, logger: createLogSink('warn').logger, stdout, stderr, cwd: dir });
      return { code, out };
    };
    // `warm --pin` of one version: no rule may take it
    await writeFile(join(dir, 'pin.txt'), 'Cold.Lib@1.0.1\n');
    const warmOut = new Writable({ write: (_c, _e, cb) => cb() });
    const warmErr = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
    expect(await warmCommand(['--pin', '--quiet', 'pin.txt'], { loaded, logger: createLogSink('warn').logger, stdout: warmOut, stderr: warmErr, cwd: dir })).toBe(0);
    const dry = await run(['--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.out) as { dryRun: boolean; remove: { id: string; version: string; rule: string; bytes: number }[]; freed: number; keptPinned: number };
    expect(plan.dryRun).toBe(true);
    expect(plan.remove.map((r) => r.version)).not.toContain('1.0.1');
    expect(plan.keptPinned).toBeGreaterThan(0);
    expect(plan.remove[0]).toMatchObject({ id: 'cold.lib', version: '1.0.0', rule: 'versions' });
    expect(plan.remove.filter((r) => r.rule === 'size').length).toBeGreaterThan(0);
    expect(plan.freed).toBe(plan.remove.reduce((n, r) => n + r.bytes, 0));
    const check = await start(rawConfig(dir, {}, {}, prefix));
    expect(await stored(check)).toEqual(full); // the dry run removed nothing
    await check.close();

    const text = await run([]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/cold\.lib 1\.0\.0 {2}versions/);
    expect(text.out).toMatch(/removed \d+ of 6 packages/);
    const check2 = await start(rawConfig(dir, {}, {}, prefix));
    const left = await stored(check2);
    expect(left.bytes).toBeLessThanOrEqual(700 * KB * 0.8);
    expect(left.refs).toEqual(full.refs.filter((r) => !plan.remove.some((p) => `${p.id}/${p.version}` === r)));
    await check2.close();
  }, 120_000);
});
