/**
 * Where an upstream may send nuproxy with a redirect. Metadata is fetched from the upstream's own origins only
 * (http-client.ts); a package download may also go to an origin matching upstreams[].redirects.allow (real feeds
 * send .nupkg downloads to blob hosts: GitHub Packages, Azure Artifacts). An origin is scheme, host and port: the
 * same address on another port is another origin.
 *
 * A wildcard pattern is trusted with names, not with addresses: a target it matches is connected to only if the
 * address its name resolves to is public (checked at connect time, on the address actually used, so a name that
 * resolves to 127.0.0.1 or 169.254.169.254 is refused). Only an origin listed exactly may be a loopback, private
 * or link-local address.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';

/** How a target origin stands with the allow list. */
export type AllowMatch = 'exact' | 'wildcard' | undefined;

interface Pattern {
  protocol: string;
  port: string;
  /** Exact: the host; wildcard: the suffix after "*." */
  host: string;
  wildcard: boolean;
}

/** upstreams[].redirects.allow, compiled once per upstream. */
export class RedirectAllowList {
  private readonly patterns: Pattern[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.flatMap((p) => {
      const m = /^(https?):\/\/(\*\.)?(.+)$/i.exec(p.trim());
      if (!m) return [];
      try {
        // the URL parser normalises the host (case, IPv6 form, default port) as it does for targets
        const u = new URL(`${m[1]}://${m[2] ? 'x.' : ''}${m[3]}`);
        return [{ protocol: u.protocol, port: u.port, host: m[2] ? u.hostname.slice(2) : u.hostname, wildcard: m[2] !== undefined }];
      } catch {
        return [];
      }
    });
  }

  /** 'exact' when this very origin is listed, 'wildcard' when only a "*." pattern matches it. */
  match(target: URL): AllowMatch {
    let found: AllowMatch;
    for (const p of this.patterns) {
      if (p.protocol !== target.protocol || p.port !== target.port) continue;
      if (!p.wildcard && p.host === target.hostname) return 'exact';
      // a wildcard matches names (any depth of subdomain), never an IP literal
      if (p.wildcard && target.hostname.endsWith(`.${p.host}`) && isIP(bare(target.hostname)) === 0) found = 'wildcard';
    }
    return found;
  }
}

const special = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", unspecified (0.0.0.0 reaches the local host on Linux)
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  special.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible (IPv4-mapped ones are checked as IPv4 by BlockList)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  special.addSubnet(net, bits, 'ipv6');
}

/** True for a loopback, private, link-local, CGNAT, unspecified, multicast or reserved address (IPv4-mapped too). */
export function isSpecialAddress(address: string): boolean {
  const ip = bare(address);
  const family = isIP(ip);
  if (family === 0) return false;
  return special.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** The error a refused address fails a connection with (http-client.ts turns it into a 502). */
export const ADDRESS_REFUSED = 'ENUPROXY_ADDRESS_REFUSED';

export function addressRefused(host: string, address: string): Error {
  return Object.assign(new Error(`${host} resolves to ${address}, a loopback, private or link-local address`), { code: ADDRESS_REFUSED, address });
}

/**
 * A resolver for connections to wildcard-allowed origins: resolves with `resolve` (dns.lookup unless a test gives
 * its own names) and fails the connection when any address it returns is special.
 */
export function guardedLookup(resolve: LookupFunction = dnsLookup as LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const all: LookupAddress[] = Array.isArray(address) ? address : [{ address, family: family ?? 4 }];
      const bad = all.find((a) => isSpecialAddress(a.address));
      if (bad) return callback(addressRefused(hostname, bad.address) as NodeJS.ErrnoException, address, family);
      callback(null, address, family);
    });
  };
}

/**
 * The connector of the package pool: an origin `trusted` says (the upstream's own, or listed exactly) is connected
 * to as usual; any other (matched by a wildcard) only if its address is public, checked on the address the name
 * resolves to, the one the socket then connects to.
 */
export function addressCheckingConnector(opts: { timeout: number; lookup?: LookupFunction; trusted: (origin: URL) => boolean }): buildConnector.connector {
  // half-open: see src/upstream/paused-end-guard.ts (the guard the pools put on these sockets)
  const plain = buildConnector({ timeout: opts.timeout, allowHalfOpen: true, ...(opts.lookup ? { lookup: opts.lookup } : {}) });
  const guarded = buildConnector({ timeout: opts.timeout, allowHalfOpen: true, lookup: guardedLookup(opts.lookup) });
  return (o, callback) => {
    if (opts.trusted(new URL(`${o.protocol}//${o.host}`))) return plain(o, callback);
    // a bare address is never looked up: checked here (a wildcard never matches one, so this is a second guard)
    if (isIP(o.hostname) !== 0 && isSpecialAddress(o.hostname)) return callback(addressRefused(o.hostname, o.hostname), null);
    return guarded(o, callback);
  };
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
