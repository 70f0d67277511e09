// A client certificate as a token (issue #15, access.certificates): with anonymous reads off, a verified
// certificate whose subject a mapping names acts as that token, with exactly its permissions and scopes; a
// verified certificate no mapping names is anonymous (401 with the Basic challenge) unless it also sends a token.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { makeTestCerts, MAPPED_SUBJECT, tlsCertsSkipReason, tlsRequest, type CertPair, type TestCerts } from '../support/tls-certs.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const reason = tlsCertsSkipReason('the client-certificate access tests');

// made up per run: what a token looks like to the proxy, never a real secret
const READER_TOKEN = `reader-${createHash('sha256').update(String(process.pid)).digest('hex').slice(0, 16)}`;
const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const basic = (token: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`user:${token}`).toString('base64')}` });

describe.skipIf(reason !== undefined)('access.certificates: a verified client certificate acts as its mapped token', () => {
  let certs: TestCerts;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const ask = (path: string, client: CertPair, init: { method?: string; headers?: Record<string, string> } = {}) =>
    tlsRequest(`${proxy.url}${path}`, certs.ca.cert, client, init);

  beforeAll(async () => {
    certs = await makeTestCerts();
    upstream = await startTestUpstream({
      packages: [makeNupkg({ id: 'Contoso.Tools', version: '1.0.0' }), makeNupkg({ id: 'Fabrikam.Lib', version: '2.0.0' })],
    });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: {
        tls: { cert: certs.server.certFile, key: certs.server.keyFile, clientCa: certs.ca.certFile },
        access: {
          anonymous: false,
          tokens: [
            // reached only through the certificate: no sha256
            { name: 'build-agent', permissions: ['read'], scopes: ['Contoso.*'] },
            { name: 'reader', sha256: sha256(READER_TOKEN), permissions: ['read'] },
          ],
          certificates: [{ subject: MAPPED_SUBJECT, token: 'build-agent' }],
        },
      },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    await certs?.remove();
  });

  it('the mapped certificate reads the ids of its token without sending any token', async () => {
    const r = await ask('v3/flat/contoso.tools/index.json', certs.client);
    expect(r.status, r.body).toBe(200);
    expect(JSON.parse(r.body!)).toEqual({ versions: ['1.0.0'] });
    const nupkg = await ask('v3/flat/contoso.tools/1.0.0/contoso.tools.1.0.0.nupkg', certs.client);
    expect(nupkg.status).toBe(200);
    // the access line names the token the certificate acts as
    const line = proxy.logs.lines.find((l) => l.path === '/v3/flat/contoso.tools/index.json' && l.status === 200);
    expect(line?.principal).toBe('build-agent');
  });

  it("the mapped certificate gets its token's scope: an id outside it is 404, exactly like an absent id", async () => {
    const outside = await ask('v3/flat/fabrikam.lib/index.json', certs.client);
    const absent = await ask('v3/flat/contoso.nothing-here/index.json', certs.client);
    expect(outside.status).toBe(404);
    expect(absent.status).toBe(404);
    expect(outside.body).toBe(absent.body!.replaceAll('contoso.nothing-here', 'fabrikam.lib'));
  });

  it("the mapped certificate gets its token's permissions: no push, so a delete is 403", async () => {
    const r = await ask('v3/package/contoso.tools/1.0.0', certs.client, { method: 'DELETE' });
    expect(r.status).toBe(403);
    expect(r.body).toContain('build-agent');
    expect(r.body).toContain('push');
  });

  it('a verified certificate that no mapping names is anonymous: 401 with the Basic challenge', async () => {
    const r = await ask('v3/flat/contoso.tools/index.json', certs.unmapped);
    expect(r.status).toBe(401);
    expect(r.headers?.['www-authenticate']).toBe('Basic realm="nuproxy"');
  });

  it('a verified certificate that no mapping names still reaches the service index (discovery needs no token)', async () => {
    const r = await ask('v3/index.json', certs.unmapped);
    expect(r.status).toBe(200);
  });

  it('a verified, unmapped certificate with a token in Basic is that token (every id: no scope)', async () => {
    const r = await ask('v3/flat/fabrikam.lib/index.json', certs.unmapped, { headers: basic(READER_TOKEN) });
    expect(r.status, r.body).toBe(200);
    expect(JSON.parse(r.body!)).toEqual({ versions: ['2.0.0'] });
    const line = proxy.logs.lines.find((l) => l.path === '/v3/flat/fabrikam.lib/index.json' && l.status === 200);
    expect(line?.principal).toBe('reader');
  });

  it('no log line holds the token value', () => {
    const all = JSON.stringify(proxy.logs.lines);
    expect(all).not.toContain(READER_TOKEN);
    expect(all).not.toContain(Buffer.from(`user:${READER_TOKEN}`).toString('base64'));
  });
});
