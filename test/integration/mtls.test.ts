// Mutual TLS (issue #15, tls.clientCa): nuproxy over https with real sockets and certificates made by openssl at
// run time. A client without a certificate the configured CA signed gets no HTTP answer at all (the handshake
// fails); with one, it is served. certificateToken (access/client-cert.ts) maps a verified connection's
// certificate subject to a token name, and never an unverified one.
import { once } from 'node:events';
import { Agent, createServer as createHttpsServer, request, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateToken } from '../../src/access/client-cert.js';
import { isNuproxyError } from '../../src/errors.js';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { makeTestCerts, MAPPED_SUBJECT, tlsCertsSkipReason, tlsRequest, type CertPair, type TestCerts, type TlsOutcome } from '../support/tls-certs.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const reason = tlsCertsSkipReason('the mutual TLS tests');

const get = (url: string, ca: string, client?: CertPair): Promise<TlsOutcome> => tlsRequest(url, ca, client);

/**
 * What a refused handshake looks like to the client: a TLS alert (no certificate), or the connection cut right
 * after the handshake (node:tls destroys a socket whose certificate fails verification before any request is read).
 */
const REFUSED = /alert|certificate|ECONNRESET|EPIPE|socket hang up/i;

describe.skipIf(reason !== undefined)('mutual TLS (tls.clientCa)', () => {
  let certs: TestCerts;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  /** The server side of each refused handshake: node:tls's error code (why nuproxy refused it). */
  const refusals: string[] = [];

  beforeAll(async () => {
    certs = await makeTestCerts();
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Contoso.Tools', version: '1.0.0' })] });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: { tls: { cert: certs.server.certFile, key: certs.server.keyFile, clientCa: certs.ca.certFile } },
    });
    proxy.server.on('tlsClientError', (err: NodeJS.ErrnoException) => refusals.push(err.code ?? err.message));
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await certs?.remove();
  });

  it('serves over https a client whose certificate the configured CA signed', async () => {
    expect(proxy.url.startsWith('https://')).toBe(true);
    const r = await get(proxy.index, certs.ca.cert, certs.client);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body!).version).toBe('3.0.0');
    // and the package itself, through the upstream
    const versions = await get(`${proxy.url}v3/flat/contoso.tools/index.json`, certs.ca.cert, certs.client);
    expect(versions.status).toBe(200);
    expect(JSON.parse(versions.body!)).toEqual({ versions: ['1.0.0'] });
  });

  it('gives a client without a certificate no HTTP answer: the handshake fails', async () => {
    const before = proxy.logs.lines.length;
    refusals.length = 0;
    const r = await get(`${proxy.index}?no-cert`, certs.ca.cert);
    expect(r.status).toBeUndefined();
    expect(r.error?.message ?? '').toMatch(REFUSED);
    // refused for the reason under test: the server's TLS layer saw no client certificate
    expect(refusals).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    // the request never reached nuproxy's HTTP layer: no access line for it
    expect(proxy.logs.lines.slice(before).some((l) => typeof l.path === 'string' && (l.path as string).includes('no-cert'))).toBe(false);
  });

  it('refuses a certificate with the mapped subject signed by another CA', async () => {
    const before = proxy.logs.lines.length;
    const r = await get(`${proxy.index}?foreign`, certs.ca.cert, certs.foreign);
    expect(r.status).toBeUndefined();
    expect(r.error?.message ?? '').toMatch(REFUSED);
    expect(proxy.logs.lines.slice(before).some((l) => typeof l.path === 'string' && (l.path as string).includes('foreign'))).toBe(false);
  });

  it('refuses a self-signed CA certificate presented as a client certificate', async () => {
    const r = await get(proxy.index, certs.ca.cert, certs.otherCa);
    expect(r.status).toBeUndefined();
    expect(r.error?.message ?? '').toMatch(REFUSED);
  });

  it('says at start-up that client certificates are required', () => {
    expect(proxy.logs.lines.some((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('mutual TLS:') && l.certificateMappings === 0)).toBe(true);
  });

  it('keeps serving verified clients after refusing others', async () => {
    const r = await get(proxy.index, certs.ca.cert, certs.unmapped);
    expect(r.status).toBe(200);
  });
});

describe.skipIf(reason !== undefined)('tls.clientCa at start-up', () => {
  let certs: TestCerts;
  beforeAll(async () => {
    certs = await makeTestCerts();
  });
  afterAll(async () => {
    await certs?.remove();
  });

  it('an unreadable client CA file is a CONFIG_INVALID naming tls.clientCa (and no server starts)', async () => {
    const started = startTestProxy({
      upstreams: ['http://127.0.0.1:9/v3/index.json'],
      config: { tls: { cert: certs.server.certFile, key: certs.server.keyFile, clientCa: join(certs.dir, 'missing-ca.pem') } },
    });
    const err = await started.then(
      async (p) => {
        await p.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isNuproxyError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/tls\.clientCa.*ENOENT/);
  });

  // node:tls would take these without a word and then refuse every client: nuproxy refuses to start instead
  it.each([
    ['a private key', (c: TestCerts) => c.ca.key, /holds no PEM certificate/],
    ['DER bytes', (c: TestCerts) => Buffer.from(c.ca.cert.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'), /holds no PEM certificate/],
    ['a broken certificate after a good one', (c: TestCerts) => `${c.ca.cert}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`, /certificate 2 of 2 cannot be read/],
  ])('a client CA file holding %s is a CONFIG_INVALID', async (_what, content, message) => {
    const file = join(certs.dir, 'bad-ca.pem');
    await writeFile(file, content(certs));
    const err = await startTestProxy({
      upstreams: ['http://127.0.0.1:9/v3/index.json'],
      config: { tls: { cert: certs.server.certFile, key: certs.server.keyFile, clientCa: file } },
    }).then(
      async (p) => {
        await p.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isNuproxyError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe.skipIf(reason !== undefined)('certificateToken on real TLS connections', () => {
  let certs: TestCerts;
  let server: Server;
  let url: string;
  const lookup = () =>
    certificateToken([
      { subject: 'CN=nobody', token: 'never' },
      { subject: MAPPED_SUBJECT, token: 'ci' },
      { subject: 'O=Contoso', token: 'contoso-any' },
    ]);
  let tokenOf = lookup();
  /** What certificateToken said for each request, and how many distinct sockets served them. */
  const seen: { token: string | undefined; authorized: boolean }[] = [];

  beforeAll(async () => {
    certs = await makeTestCerts();
    // rejectUnauthorized false: an unverified certificate reaches the request, so the check inside
    // certificateToken (never map an unverified connection) is what is tested, not the handshake
    server = createHttpsServer({ cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const token = tokenOf(req.socket);
      seen.push({ token, authorized: (req.socket as TLSSocket).authorized });
      res.end(JSON.stringify({ token: token ?? null }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await certs?.remove();
  });

  const tokenFor = async (client?: CertPair): Promise<string | null> => {
    const r = await get(url, certs.ca.cert, client);
    expect(r.status, String(r.error)).toBe(200);
    return (JSON.parse(r.body!) as { token: string | null }).token;
  };

  it('maps the verified certificate to the first mapping whose every attribute it has', async () => {
    expect(await tokenFor(certs.client)).toBe('ci');
  });

  it('a verified certificate that only a later, looser mapping fits gets that one', async () => {
    expect(await tokenFor(certs.unmapped)).toBe('contoso-any');
  });

  it('never maps an unverified certificate, even with the mapped subject', async () => {
    seen.length = 0;
    expect(await tokenFor(certs.foreign)).toBeNull();
    expect(seen).toEqual([{ token: undefined, authorized: false }]);
  });

  it('maps a resumed TLS session like the first (the session keeps the verified certificate)', async () => {
    // one agent without keep-alive: each request is a new connection, the second and third resume the first's session
    const agent = new Agent({ keepAlive: false, ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key });
    seen.length = 0;
    const reused: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(url, { agent }, (res) => {
          reused.push((res.socket as TLSSocket).isSessionReused());
          res.resume().on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
    }
    agent.destroy();
    expect(reused.slice(1)).toContain(true);
    expect(seen.map((s) => s.token)).toEqual(['ci', 'ci', 'ci']);
  });

  it('maps nothing without a certificate', async () => {
    expect(await tokenFor()).toBeNull();
  });

  it('with no mappings, maps nothing', async () => {
    tokenOf = certificateToken([]);
    try {
      expect(await tokenFor(certs.client)).toBeNull();
    } finally {
      tokenOf = lookup();
    }
  });
});
