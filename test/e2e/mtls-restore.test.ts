// The real `dotnet restore` through nuproxy over https with mutual TLS (issue #15, tls.clientCa): the client
// presents the certificate NuGet.Config's <clientCertificates><fileCert> names (a password-protected PKCS#12),
// which access.certificates maps to a token (reads without a token are off); without a certificate, or with one
// another CA signed, the handshake fails; with a verified one that maps to nothing, the client gets 401. The test CA reaches the dotnet child only
// through SSL_CERT_FILE in its own environment: the machine's trust store is never touched.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, nugetConfigXml, removeProject, restore, restoredPackages, skipReason, type DotnetProject } from '../support/dotnet.js';
import { escapeXml } from '../support/nupkg.js';
import { findRealPackagesDir } from '../support/real-packages.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { makeTestCerts, MAPPED_SUBJECT, tlsCertsSkipReason, type TestCerts } from '../support/tls-certs.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';

const what = 'mtls-restore (dotnet restore with a client certificate)';
const reason = skipReason(what) ?? tlsCertsSkipReason(what);

const REFS = [{ id: 'Newtonsoft.Json', version: '13.0.3' }];

/** .NET's words when IT refuses nuproxy's server certificate: a failure for that reason would prove nothing here. */
const SERVER_CERT_REFUSED = /remote certificate is invalid|UntrustedRoot|RemoteCertificate/i;

function explain(r: { code: number; stdout: string; stderr: string }): string {
  return `dotnet restore exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

describe.skipIf(reason !== undefined)('dotnet restore through nuproxy with a client certificate (mutual TLS)', () => {
  let certs: TestCerts;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  /** The server side of each refused handshake (node:tls's error code). */
  const refusals: string[] = [];
  const projects: DotnetProject[] = [];

  /** A project whose NuGet.Config lists only the proxy (key "test-source"), with `pfx` as its client certificate. */
  const project = async (pfx: string | undefined): Promise<DotnetProject> => {
    const p = await createProject({ sourceUrl: proxy.index, packages: REFS, allowInsecure: false, properties: { NuGetAudit: 'false' } });
    projects.push(p);
    const clientCertificates = pfx
      ? // packageSource is the source's key, not its URL (NuGet.Configuration FileClientCertItem)
        `  <clientCertificates>\n    <fileCert packageSource="test-source" path="${escapeXml(pfx)}" clearTextPassword="${escapeXml(certs.pfxPassword)}" />\n  </clientCertificates>\n</configuration>`
      : '</configuration>';
    await writeFile(join(p.dir, 'NuGet.Config'), nugetConfigXml(proxy.index, false, p.packagesDir).replace('</configuration>', clientCertificates));
    return p;
  };
  /** The dotnet child trusts the test CA (which signed nuproxy's server certificate) and nothing else. */
  const trustTestCa = (): Record<string, string> => ({ SSL_CERT_FILE: certs.ca.certFile });

  beforeAll(async () => {
    certs = await makeTestCerts();
    upstream = await startTestUpstream({ packageDirs: [findRealPackagesDir()!] });
    proxy = await startTestProxy({
      upstreams: [upstream.serviceIndexUrl],
      config: {
        tls: { cert: certs.server.certFile, key: certs.server.keyFile, clientCa: certs.ca.certFile },
        // no token in any NuGet.Config here: only the mapped certificate may read
        access: {
          anonymous: false,
          tokens: [{ name: 'build-agent', permissions: ['read'] }],
          certificates: [{ subject: MAPPED_SUBJECT, token: 'build-agent' }],
        },
      },
    });
    proxy.server.on('tlsClientError', (err: NodeJS.ErrnoException) => refusals.push(err.code ?? err.message));
  });
  afterAll(async () => {
    await Promise.all(projects.map((p) => removeProject(p)));
    await proxy?.stop();
    await upstream?.close();
    await certs?.remove();
  });

  it('restores with the client certificate of NuGet.Config, which acts as its mapped token', async () => {
    expect(proxy.url.startsWith('https://')).toBe(true);
    const p = await project(certs.clientPfx);
    const r = await restore(p, [], { env: trustTestCa() });
    expect(r.code, explain(r)).toBe(0);
    expect(restoredPackages(p)).toContain('newtonsoft.json/13.0.3');
    // the package came through the proxy (answered to the verified client)
    expect(upstream.hits('/v3-flatcontainer/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg')).toBe(1);
    const line = proxy.logs.lines.find((l) => l.path === '/v3/flat/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg' && l.status === 200);
    expect(line?.principal).toBe('build-agent');
  });

  it("fails with the client's 401 message when a verified certificate maps to no token (and no credentials)", async () => {
    const p = await project(certs.unmappedPfx);
    const r = await restore(p, [], { env: trustTestCa() });
    expect(r.code, explain(r)).not.toBe(0);
    // the handshake passed (the CA signed it); the feed then asked for credentials the client does not have
    expect(r.stdout, explain(r)).toMatch(/401 \(Unauthorized\)/);
    expect(restoredPackages(p)).toEqual([]);
    expect(proxy.logs.lines.some((l) => l.path === '/v3/flat/newtonsoft.json/index.json' && l.status === 401)).toBe(true);
  });

  it('fails without a client certificate: the handshake is refused, nothing is restored', async () => {
    const before = proxy.logs.lines.length;
    refusals.length = 0;
    const p = await project(undefined);
    const r = await restore(p, [], { env: trustTestCa() });
    expect(r.code, explain(r)).not.toBe(0);
    // NU1301: the client could not load the service index (no HTTP answer came)
    expect(r.stdout, explain(r)).toMatch(/NU1301/);
    expect(r.stdout).not.toMatch(SERVER_CERT_REFUSED);
    expect(restoredPackages(p)).toEqual([]);
    expect(proxy.logs.lines.slice(before).filter((l) => typeof l.status === 'number')).toEqual([]);
    // nuproxy's TLS layer refused it for the reason under test
    expect(refusals).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
  });

  it('fails with a certificate of the right subject that another CA signed', async () => {
    const before = proxy.logs.lines.length;
    const p = await project(certs.foreignPfx);
    const r = await restore(p, [], { env: trustTestCa() });
    expect(r.code, explain(r)).not.toBe(0);
    expect(r.stdout, explain(r)).toMatch(/NU1301/);
    expect(r.stdout).not.toMatch(SERVER_CERT_REFUSED);
    expect(restoredPackages(p)).toEqual([]);
    // the connection was cut after the handshake, before any request was read: no access line
    expect(proxy.logs.lines.slice(before).filter((l) => typeof l.status === 'number')).toEqual([]);
  });
});
