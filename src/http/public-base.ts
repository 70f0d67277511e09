import { badRequest } from './errors.js';

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const PREFIX = /^(?:\/[A-Za-z0-9._~-]+)*\/?$/;

export interface BaseOptions {
  publicUrl: string | undefined;
  trustForwardedHeaders: boolean;
  tls: boolean;
}

/**
 * The base URL every resource URL is built on (ends with "/"). From config when set; else from the request's
 * Host, and X-Forwarded-Proto/Host/Prefix only when config says to trust them (pitfall 19). Values are checked
 * so a forged header cannot inject anything into the documents.
 */
export function publicBase(header: (name: string) => string | undefined, opts: BaseOptions): string {
  if (opts.publicUrl) return opts.publicUrl.endsWith('/') ? opts.publicUrl : opts.publicUrl + '/';
  const first = (name: string): string | undefined => header(name)?.split(',')[0]?.trim() || undefined;
  let proto = opts.tls ? 'https' : 'http';
  let host = header('host');
  let prefix = '';
  if (opts.trustForwardedHeaders) {
    const fp = first('x-forwarded-proto')?.toLowerCase();
    if (fp === 'http' || fp === 'https') proto = fp;
    host = first('x-forwarded-host') ?? host;
    prefix = first('x-forwarded-prefix') ?? '';
    if (!PREFIX.test(prefix)) throw badRequest('invalid X-Forwarded-Prefix header');
    prefix = prefix.replace(/\/$/, '');
  }
  if (!host || !HOST.test(host)) throw badRequest('missing or invalid Host header');
  return `${proto}://${host}${prefix}/`;
}
