// Test certificates for mutual TLS, made at run time by the `openssl` CLI in a temp dir (never committed, never
// in the machine's trust store): a test CA, a server certificate for 127.0.0.1/localhost, client certificates the
// CA signed (the mapped subject CN=build-agent,O=Contoso and an unmapped one), the same subject signed by ANOTHER
// CA (a subject alone must never be enough), and a password-protected PKCS#12 of the mapped client certificate
// (what NuGet.Config's <clientCertificates><fileCert> loads). P-256 keys: quick to make, and every client takes them.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { needTool, opensslAvailable } from './need.js';

const run = promisify(execFile);

/** A certificate and its key: paths of PEM files, and their text (what node:tls and undici take). */
export interface CertPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface TestCerts {
  readonly dir: string;
  /** The CA that tls.clientCa names; it signed the server certificate too, so clients trust the server with it. */
  readonly ca: CertPair;
  /** CN=localhost, subjectAltName IP:127.0.0.1 and DNS:localhost. */
  readonly server: CertPair;
  /** CN=build-agent,O=Contoso, signed by `ca`. */
  readonly client: CertPair;
  /** CN=stranger,O=Contoso, signed by `ca`: verified, but no mapping names it. */
  readonly unmapped: CertPair;
  /** A second CA, that nuproxy does not trust. */
  readonly otherCa: CertPair;
  /** CN=build-agent,O=Contoso again, signed by `otherCa`. */
  readonly foreign: CertPair;
  /** `client` (certificate and key) as PKCS#12, protected by `pfxPassword`. */
  readonly clientPfx: string;
  /** `foreign` as PKCS#12, same password: the right subject from the wrong CA. */
  readonly foreignPfx: string;
  /** `unmapped` as PKCS#12, same password: verified, but no mapping names it. */
  readonly unmappedPfx: string;
  readonly pfxPassword: string;
  /** Deletes the temp dir. */
  remove(): Promise<void>;
}

export const MAPPED_SUBJECT = 'CN=build-agent,O=Contoso';

/** Why tests that need the test certificates cannot run (openssl missing): a loud skip, or a failure under CI. */
export function tlsCertsSkipReason(what: string): string | undefined {
  return needTool('openssl', opensslAvailable(), what);
}

// Our own config, so nothing of the machine's openssl.cnf (default extensions, policies) gets into the certificates.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir, timeout: 30_000 });
  } catch (err) {
    // openssl is there (checked by the caller's skip): a failure here is a failure of the test, never a skip
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

async function pair(dir: string, name: string): Promise<CertPair> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, cert, key };
}

async function makeCa(dir: string, name: string, cn: string): Promise<CertPair> {
  await openssl(dir, ['req', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca_ext', ...KEY_ARGS, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`]);
  return pair(dir, name);
}

async function makeLeaf(dir: string, name: string, subj: string, ext: 'server_ext' | 'client_ext', ca: string): Promise<CertPair> {
  await openssl(dir, ['req', '-new', '-config', 'openssl.cnf', ...KEY_ARGS, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
  const serial = `0x${randomBytes(16).toString('hex')}`;
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', serial, '-days', '2', '-extfile', 'openssl.cnf', '-extensions', ext, '-out', `${name}.pem`]);
  return pair(dir, name);
}

/** Makes every test certificate in a new temp dir (a second or so). Call remove() when done. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'nuproxy-certs-'));
  try {
    await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CNF);
    const [ca, otherCa] = await Promise.all([makeCa(dir, 'ca', 'nuproxy test CA'), makeCa(dir, 'other-ca', 'some other CA')]);
    const [server, client, unmapped, foreign] = await Promise.all([
      makeLeaf(dir, 'server', '/CN=localhost', 'server_ext', 'ca'),
      makeLeaf(dir, 'client', '/CN=build-agent/O=Contoso', 'client_ext', 'ca'),
      makeLeaf(dir, 'unmapped', '/CN=stranger/O=Contoso', 'client_ext', 'ca'),
      makeLeaf(dir, 'foreign', '/CN=build-agent/O=Contoso', 'client_ext', 'other-ca'),
    ]);
    const pfxPassword = randomBytes(12).toString('hex');
    const pfx = (name: string): Promise<void> => openssl(dir, ['pkcs12', '-export', '-in', `${name}.pem`, '-inkey', `${name}.key`, '-out', `${name}.pfx`, '-passout', `pass:${pfxPassword}`]);
    await Promise.all([pfx('client'), pfx('foreign'), pfx('unmapped')]);
    return {
      dir,
      ca,
      server,
      client,
      unmapped,
      otherCa,
      foreign,
      clientPfx: join(dir, 'client.pfx'),
      foreignPfx: join(dir, 'foreign.pfx'),
      unmappedPfx: join(dir, 'unmapped.pfx'),
      pfxPassword,
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface TlsOutcome {
  status?: number;
  headers?: IncomingHttpHeaders;
  body?: string;
  /** Set when no HTTP answer came: the TLS or socket error the client saw. */
  error?: NodeJS.ErrnoException;
}

/**
 * One request on a fresh connection (no agent: each does its own handshake), trusting `ca` for the server and
 * presenting `client` when given. Never rejects: a refused handshake is an outcome with `error`.
 */
export function tlsRequest(url: string, ca: string, client?: CertPair, init: { method?: string; headers?: Record<string, string> } = {}): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, ca, method: init.method ?? 'GET', headers: init.headers ?? {}, ...(client ? { cert: client.cert, key: client.key } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end();
  });
}
