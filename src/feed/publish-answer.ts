import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate } from 'node:zlib';
import type { SecretSet } from '../upstream/secrets.js';
import { relaySecrets } from './relay-secrets.js';

/** What the client gets back for a push, delete or relist. */
export interface PublishAnswer {
  status: number;
  statusText?: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** The writable upstream's answer, as its client returns it. */
export interface UpstreamAnswer {
  status: number;
  statusText?: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** The upstream headers that go back to the client (with secrets cut out). */
const RETURNED = ['content-type', 'x-nuget-warning'];
/** A compressed answer is decoded before it is redacted, up to this size; beyond it the body is dropped. */
const MAX_DECODED_ANSWER = 4 * 1024 * 1024;
const DECODERS: Record<string, (b: Buffer, o: { maxOutputLength: number }) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress),
};

/**
 * The upstream's answer as the client gets it: status, reason phrase, Content-Type, X-NuGet-Warning and body,
 * with every configured secret cut out, and `clientKey` too (pass-through mode: the key the client sent went on
 * to the upstream). An upstream, or anything in front of it, that echoes the request would otherwise hand out
 * the credentials nuproxy added, the mapped push key among them.
 */
export async function relayedAnswer(a: UpstreamAnswer, secrets: SecretSet, clientKey: string | undefined): Promise<PublishAnswer> {
  const keys = clientKey ? relaySecrets([{ label: 'client API key', value: clientKey }]) : undefined;
  const redact = (text: string): string => (keys ? keys.redact(secrets.redact(text)) : secrets.redact(text));
  const headers: Record<string, string | string[]> = {};
  for (const name of RETURNED) {
    const v = a.headers[name];
    if (v !== undefined) headers[name] = Array.isArray(v) ? v.map(redact) : redact(v);
  }
  let body = secrets.redactBytes(await decodedBody(a.headers['content-encoding'], a.body));
  if (keys) body = keys.redactBytes(body);
  // the client prints the reason phrase (nuget.org puts its messages there): printable ASCII only
  const statusText = a.statusText ? redact(a.statusText.replace(/[^\t\x20-\x7e]/g, '')) : '';
  return { status: a.status, ...(statusText ? { statusText } : {}), headers, body };
}

/**
 * A relayed body as plain bytes: a compressed one (never asked for) is decoded, so that the redaction sees what
 * the client would see once it decodes it; one that cannot be decoded within MAX_DECODED_ANSWER is dropped.
 */
async function decodedBody(encoding: string | string[] | undefined, body: Buffer): Promise<Buffer> {
  const name = (Array.isArray(encoding) ? encoding.join(',') : (encoding ?? '')).trim().toLowerCase();
  if (name === '' || name === 'identity' || body.length === 0) return body;
  const decode = DECODERS[name];
  if (!decode) return Buffer.alloc(0);
  try {
    return await decode(body, { maxOutputLength: MAX_DECODED_ANSWER });
  } catch {
    return Buffer.alloc(0);
  }
}
