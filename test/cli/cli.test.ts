// The `nuproxy` command as a user runs it: the built dist/main.js in its own process.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { get } from '../support/http.js';
import { MAIN, startNuproxy } from '../support/process.js';
import { needTool, opensslAvailable } from '../support/need.js';
import { waitFor } from '../support/wait.js';

const noOpenssl = needTool('openssl', opensslAvailable(), 'the HTTPS serving test');

function run(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('nuproxy command', () => {
  let dir: string;
  let upstream: TestUpstream;
  const big = makeNupkg({ id: 'Slow.Package', version: '1.0.0', padBytes: 2 * 1024 * 1024 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-cli-'));
    upstream = await startTestUpstream({ packages: [big] });
  });
  afterAll(async () => {
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints its version and usage', () => {
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/nuproxy serve \[--config FILE\]/);
    expect(help.stdout).toMatch(/NUPROXY_REDIS_URL/);
  });

  it('hashes a key for publish.keys', () => {
    const out = execFileSync(process.execPath, [MAIN, 'hash-key'], { input: 'password\n', encoding: 'utf8' });
    expect(out.trim()).toBe('5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8');
  });

  it('refuses an invalid config: every problem with its key path, non-zero exit, nothing served', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'listen:\n  port: 99999\ncache:\n  metadata: mongodb://x\nupstreams:\n  - name: "bad name"\n    serviceIndex: not-a-url\n');
    const r = run(['serve', '--config', file]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/listen\.port/);
    expect(r.stderr).toMatch(/cache\.metadata/);
    expect(r.stderr).toMatch(/upstreams\[0\]\.name/);
    expect(r.stderr).toMatch(/upstreams\[0\]\.serviceIndex/);
    expect(run(['check-config', '--config', file]).code).toBe(78);
  });

  it('serves with a config file and finishes a download under way on SIGTERM before exiting', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(
      file,
      `listen: { host: 127.0.0.1, port: 0 }\ncache:\n  dir: ${JSON.stringify(join(dir, 'data'))}\nupstreams:\n  - name: test\n    serviceIndex: ${upstream.serviceIndexUrl}\nlog: { level: info }\n`,
    );
    expect(run(['check-config', '--config', file]).stdout).toMatch(/configuration OK/);
    const s = await startNuproxy(dir, 'cli', file);
    expect((await get(`${s.url}v3/index.json`)).status).toBe(200);
    upstream.setFault('/v3-flatcontainer/slow.package/1.0.0/slow.package.1.0.0.nupkg', { kind: 'throttle', bytesPerSecond: 2 * 1024 * 1024 });
    const download = get(`${s.url}v3/flat/slow.package/1.0.0/slow.package.1.0.0.nupkg`);
    // the download is under way (throttled, it takes about a second): the upstream has been asked for the bytes
    await waitFor('the upstream download to start', () => upstream.hits('/v3-flatcontainer/slow.package/1.0.0/slow.package.1.0.0.nupkg') === 1);
    s.child.kill('SIGTERM');
    const r = await download;
    expect(r.status).toBe(200);
    expect(r.body.equals(Buffer.from(big))).toBe(true);
    expect(await s.exited).toBe(0);
    expect(s.lines.some((l) => l.signal === 'SIGTERM')).toBe(true);
    expect(existsSync(join(dir, 'data', 'packages', 'slow.package', '1.0.0', 'slow.package.1.0.0.nupkg'))).toBe(true);
    upstream.setFault('/v3-flatcontainer/slow.package/1.0.0/slow.package.1.0.0.nupkg', undefined);
  });

  it('takes the port, cache dir and log level from the environment', () => {
    const r = run(['check-config'], { NUPROXY_PORT: '6123', NUPROXY_LOG_LEVEL: 'warn', NUPROXY_CACHE_DIR: '/srv/nuproxy', NUPROXY_REDIS_URL: 'redis://r:6379' });
    expect(r.code).toBe(0);
    const config = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(config.listen.port).toBe(6123);
    expect(config.log.level).toBe('warn');
    expect(config.cache.dir).toBe('/srv/nuproxy');
    expect(config.cache.metadata).toBe('redis://r:6379');
  });

  it.skipIf(noOpenssl !== undefined)('serves HTTPS when tls is configured', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    // openssl is there (checked above): a failure here is a failure of the test, never a skip
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'pipe' });
    const file = join(dir, 'tls.yaml');
    await writeFile(
      file,
      `listen: { host: 127.0.0.1, port: 0 }\ntls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }\ncache: { dir: ${JSON.stringify(join(dir, 'tls-data'))} }\nupstreams:\n  - name: test\n    serviceIndex: ${upstream.serviceIndexUrl}\n`,
    );
    const s = await startNuproxy(dir, 'cli', file);
    try {
      expect(s.url.startsWith('https://')).toBe(true);
      const agent = new Agent({ connect: { rejectUnauthorized: false } });
      const r = await get(`${s.url}v3/index.json`, {}, 'GET', agent);
      expect(r.status).toBe(200);
      expect(r.json().resources.every((x: { '@id': string }) => x['@id'].startsWith('https://'))).toBe(true);
      await agent.close();
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  });
});
