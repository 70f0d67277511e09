// Issue #11 item 2 (first half): no byte sequence equal to a configured secret (nor its base64 form in a Basic
// header) leaves nuproxy, however the upstream answers. The hostile upstream echoes the request it was sent (the
// credentials nuproxy added included) into the reason phrase, Content-Type, X-NuGet-Warning and body of every
// publish answer, and into the text of a service index that nuproxy turns into an error message.
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/feed/publish.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile/server.js';
import { ECHO_INDEX_WITH_SYMBOLS, ECHO_STATUS, installEchoingServiceIndex, installPublishEcho } from '../support/hostile/publish.js';

const REDACTED = '[redacted]';

/** Everything the client receives for one request, byte for byte: status line, headers, body. */
async function exchange(baseUrl: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<{ status: number; all: string; body: string }> {
  const u = new URL(baseUrl);
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${u.host}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (body) head.push(`Content-Length: ${body.length}`);
  const socket = connect(Number(u.port), u.hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  if (body) socket.write(body);
  await new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  const all = Buffer.concat(chunks).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(all)?.[1] ?? 0);
  return { status, all, body: all.slice(all.indexOf('\r\n\r\n') + 4) };
}

function multipart(pkg: Uint8Array): { contentType: string; body: Buffer } {
  const boundary = `----nuproxy${randomBytes(6).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name=package; filename=package.nupkg\r\n\r\n`),
    Buffer.from(pkg),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { contentType: `multipart/form-data; boundary="${boundary}"`, body };
}

const secret = (prefix: string): string => `${prefix}-${randomBytes(12).toString('hex')}`;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Case {
  name: string;
  /** The upstream entry's auth and the env it reads, the publish config, the key the client sends. */
  auth?: Record<string, string>;
  env: Record<string, string>;
  publish?: Record<string, unknown>;
  clientKey: string;
  /** Custom auth header to echo (header auth). */
  extraHeader?: string;
  /** The upstream compresses its echo (nuproxy never asked it to). */
  gzip?: boolean;
  /** Every form of every secret that must not reach the client or the logs. */
  forms: string[];
}

function cases(): Case[] {
  const token = secret('bearer');
  const user = 'ci-user';
  const password = secret('basicpw');
  const headerValue = secret('hdr');
  const mappedKey = secret('mapped');
  const agentKey = secret('agent');
  const pass1 = secret('client');
  const pass2 = secret('client');
  const pass3 = secret('client');
  const pass4 = secret('client');
  const quoted = `${secret('bearer')}"\\q`; // ends in a quote and a backslash, which JSON bodies and log lines escape
  const quotedInJson = JSON.stringify(quoted).slice(1, -1);
  return [
    { name: 'bearer token (pass-through key)', auth: { type: 'bearer', tokenEnv: 'UP_TOKEN' }, env: { UP_TOKEN: token }, clientKey: pass1, forms: [token, b64(token), pass1] },
    {
      name: 'basic password and its base64 user:password (pass-through key)',
      auth: { type: 'basic', username: user, passwordEnv: 'UP_PASSWORD' },
      env: { UP_PASSWORD: password },
      clientKey: pass2,
      forms: [password, b64(`${user}:${password}`), pass2],
    },
    {
      name: 'header auth (pass-through key)',
      auth: { type: 'header', header: 'X-Feed-Token', valueEnv: 'UP_HEADER' },
      env: { UP_HEADER: headerValue },
      clientKey: pass3,
      extraHeader: 'X-Feed-Token',
      forms: [headerValue, pass3],
    },
    {
      name: 'mapped push key',
      env: { PUSH_KEY: mappedKey },
      publish: { keyMode: 'mapped', keys: [{ name: 'ci', sha256: hashKey(agentKey) }], upstreamKeyEnv: 'PUSH_KEY' },
      clientKey: agentKey,
      forms: [mappedKey],
    },
    {
      name: 'bearer token with a quote and a backslash, echoed gzip-compressed',
      auth: { type: 'bearer', tokenEnv: 'UP_TOKEN' },
      env: { UP_TOKEN: quoted },
      clientKey: pass4,
      gzip: true,
      forms: [quoted, quotedInJson, b64(quoted), pass4],
    },
  ];
}

describe('secrets in relayed publish answers', () => {
  let upstream: HostileUpstream | undefined;
  let proxy: TestProxy | undefined;
  afterEach(async () => {
    await proxy?.stop();
    await upstream?.close();
    proxy = undefined;
    upstream = undefined;
  });

  it.each(cases())('$name: not in the status line, headers or body of push, symbols push, delete and relist, nor in the logs', async (c) => {
    upstream = await startHostileUpstream({ publish: true });
    installPublishEcho(upstream, { ...(c.extraHeader ? { extraHeader: c.extraHeader } : {}), ...(c.gzip ? { gzip: true } : {}) });
    proxy = await startTestProxy({
      upstreams: [{ name: 'company', serviceIndex: `${upstream.origin}${ECHO_INDEX_WITH_SYMBOLS}`, writable: true, retries: 0, ...(c.auth ? { auth: c.auth } : {}) }],
      config: c.publish ? { publish: c.publish } : {},
      env: c.env,
    });
    const pkg = multipart(makeNupkg({ id: 'Team.Echo', version: '1.0.0' }));
    const key = { 'X-NuGet-ApiKey': c.clientKey };
    const answers = {
      push: await exchange(proxy.url, 'PUT', '/v3/package/', { ...key, 'Content-Type': pkg.contentType }, pkg.body),
      symbols: await exchange(proxy.url, 'PUT', '/v3/symbolpackage/', { ...key, 'Content-Type': pkg.contentType }, pkg.body),
      delete: await exchange(proxy.url, 'DELETE', '/v3/package/Team.Echo/1.0.0', key),
      relist: await exchange(proxy.url, 'POST', '/v3/package/Team.Echo/1.0.0', key),
    };
    // the upstream did get the secrets, and did echo them: what the client got was redacted, not absent
    const seen = upstream.requests.filter((r) => r.method !== 'GET').flatMap((r) => Object.values(r.headers)).join('\n');
    expect(seen).toContain(c.auth?.type === 'basic' ? c.forms[1] : c.forms[0]);
    for (const [route, a] of Object.entries(answers)) {
      expect(a.status, route).toBe(ECHO_STATUS[route as keyof typeof ECHO_STATUS]);
      const [statusLine, ...rest] = a.all.split('\r\n');
      expect(statusLine, route).toContain(`Echo auth=`);
      expect(statusLine, route).toContain(REDACTED);
      expect(a.all.toLowerCase(), route).toMatch(/x-nuget-warning: your request: auth=/);
      expect(a.body, route).toContain('"echoed"');
      expect(a.body, route).toContain(REDACTED);
      // a Basic header is echoed decoded too: the raw password is there to find
      if (c.auth?.type === 'basic') expect(a.all, route).toContain(`decoded=ci-user:${REDACTED}`);
      for (const form of c.forms) {
        expect(statusLine, `${route}: status line`).not.toContain(form);
        expect(rest.join('\r\n'), `${route}: headers and body`).not.toContain(form);
      }
    }
    const logs = proxy.logs.raw();
    for (const form of c.forms) expect(logs).not.toContain(form);
  });

  it('a secret shorter than 8 characters: start-up warns (naming it, not its value), and relayed answers still lose it', async () => {
    const weak = 'Zq7#x!';
    upstream = await startHostileUpstream({ publish: true });
    installPublishEcho(upstream);
    proxy = await startTestProxy({
      upstreams: [{ name: 'tiny', serviceIndex: `${upstream.origin}${ECHO_INDEX_WITH_SYMBOLS}`, writable: true, retries: 0, auth: { type: 'bearer', tokenEnv: 'UP_TOKEN' } }],
      env: { UP_TOKEN: weak },
    });
    const warnings = proxy.logs.lines.filter((l) => l.level === 40 && /shorter than 8 characters/.test(String(l.msg)));
    expect(warnings.map((l) => l.secret)).toEqual(['upstream tiny token']);
    const a = await exchange(proxy.url, 'DELETE', '/v3/package/Team.Echo/1.0.0', { 'X-NuGet-ApiKey': secret('client') });
    expect(upstream.requests.some((r) => r.headers.authorization === `Bearer ${weak}`)).toBe(true);
    expect(a.status).toBe(ECHO_STATUS.delete);
    expect(a.all).toContain(`auth=Bearer ${REDACTED}`);
    expect(a.all).not.toContain(weak);
    expect(proxy.logs.raw()).not.toContain(weak);
  });

  it('an upstream text that becomes an error message (service index version) reaches neither the error body nor the logs', async () => {
    const token = secret('bearer');
    upstream = await startHostileUpstream();
    installEchoingServiceIndex(upstream, '/evil/index.json');
    proxy = await startTestProxy({
      upstreams: [{ name: 'evil', serviceIndex: `${upstream.origin}/evil/index.json`, retries: 0, auth: { type: 'bearer', tokenEnv: 'UP_TOKEN' } }],
      env: { UP_TOKEN: token },
    });
    const index = await exchange(proxy.url, 'GET', '/v3/index.json', {});
    const versions = await exchange(proxy.url, 'GET', '/v3/flat/some.id/index.json', {});
    const explain = await exchange(proxy.url, 'GET', '/explain/some.id', {});
    const ready = await exchange(proxy.url, 'GET', '/health/ready', {});
    expect(upstream.hits('/evil/index.json')).toBeGreaterThan(0);
    expect(JSON.stringify(upstream.requests.map((r) => r.headers))).toContain(token);
    // the service index is nuproxy's own (answered partial); the version list has only the failed upstream: 502
    expect(index.status).toBe(200);
    expect(versions.status).toBe(502);
    expect(JSON.parse(versions.body)).toMatchObject({ error: 'upstream_bad_response', upstream: 'evil' });
    // a document holding a configured secret is refused whole (src/upstream/json-body.ts): the messages say why,
    // and none of them quotes the upstream's text
    expect(JSON.parse(versions.body).message).toMatch(/configured secrets/);
    expect(JSON.parse(explain.body).upstreams[0].error).toMatch(/configured secrets/);
    expect(ready.status).toBe(200);
    for (const a of [index, versions, explain, ready]) {
      expect(a.all).not.toContain(token);
      expect(a.all).not.toContain(b64(token));
    }
    expect(proxy.logs.raw()).not.toContain(token);
  });
});
