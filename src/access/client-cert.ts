// Mutual TLS (issue #15): which configured token a verified client certificate acts as (access.certificates).
// The https server (app.ts) already refuses, in the handshake, every client without a certificate signed by
// tls.clientCa; here a verified certificate's subject is matched against the configured subjects, and the first
// mapping (in config order) whose every attribute the certificate has gives the token's name. authenticator.ts
// turns that name into the token's Principal, before it looks at any header.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** One access.certificates entry: a subject like "CN=build-agent,O=Contoso" and the name of a token. */
export interface CertificateMapping {
  readonly subject: string;
  readonly token: string;
}

/** One attribute of a subject: the name as written (compared case-insensitively: "cn" is "CN") and its value. */
export interface SubjectAttribute {
  readonly name: string;
  readonly value: string;
}

/**
 * The attributes of a configured subject ("CN=build-agent, O=Contoso"), in order. The config schema has already
 * checked the shape (name=value pairs split by commas, no escaped commas); spaces around names and values are
 * not part of them. Throws on anything else, so a caller that skipped the schema cannot get a silent non-match.
 */
export function parseSubject(subject: string): SubjectAttribute[] {
  return subject.split(',').map((part) => {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq <= 0 || !/^[A-Za-z][A-Za-z0-9.]*$/.test(name) || value === '') {
      throw new Error(`invalid certificate subject ${JSON.stringify(subject)}: expected attributes like "CN=agent-1,O=Contoso"`);
    }
    return { name, value };
  });
}

/**
 * A certificate's subject as node:tls gives it (getPeerCertificate().subject): attribute short names (CN, O, OU,
 * emailAddress, ...) to a value, or to every value when the certificate repeats the attribute (two OUs).
 */
export type CertSubject = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * Whether the certificate's subject has every attribute of `wanted`, each with exactly that value (values are
 * compared as written: "O=contoso" is not "O=Contoso"). A repeated attribute matches when one of its values is
 * equal, so "OU=build" matches a certificate with OU=build and OU=ci; "OU=build,OU=ci" needs both.
 */
export function subjectMatches(wanted: readonly SubjectAttribute[], subject: CertSubject): boolean {
  const byName = new Map<string, string[]>();
  for (const [name, v] of Object.entries(subject)) {
    if (v === undefined) continue;
    const key = name.toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), ...(typeof v === 'string' ? [v] : v)]);
  }
  return wanted.every((a) => byName.get(a.name.toLowerCase())?.includes(a.value) === true);
}

/**
 * The token name a request's connection acts as through its client certificate, or undefined: not a TLS
 * connection, a certificate the server did not verify (`authorized` false), no certificate, or no mapping whose
 * subject it has. The subjects are parsed once here; the answer is kept per connection (a WeakMap, gone with
 * the socket), since the certificate is the connection's: a keep-alive connection pays for the match once.
 */
export function certificateToken(mappings: readonly CertificateMapping[]): (socket: Socket) => string | undefined {
  const parsed = mappings.map((m) => ({ wanted: parseSubject(m.subject), token: m.token }));
  const memo = new WeakMap<Socket, string | null>();
  return (socket) => {
    if (parsed.length === 0) return undefined;
    const known = memo.get(socket);
    if (known !== undefined) return known ?? undefined;
    const token = match(parsed, socket);
    memo.set(socket, token ?? null);
    return token;
  };
}

function match(parsed: readonly { wanted: SubjectAttribute[]; token: string }[], socket: Socket): string | undefined {
  // a plain-http socket has no certificate; an unverified one must never map, even if a server were made without
  // rejectUnauthorized (then a self-made certificate could claim any subject)
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  // no certificate: an empty object (or null once the socket is gone)
  if (cert === null || cert === undefined || cert.subject === undefined) return undefined;
  const subject = cert.subject as unknown as CertSubject;
  return parsed.find((p) => subjectMatches(p.wanted, subject))?.token;
}
