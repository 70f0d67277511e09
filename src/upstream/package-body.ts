/**
 * The rules a package body (.nupkg or .nuspec) from an upstream obeys while it streams, before any of its bytes
 * reach the blob store or a client: it starts as what it claims to be (a zip local file header; XML), it stays
 * within its size limit, it carries none of the configured secrets, and it keeps up an average rate. A body
 * breaking a rule ends in an error (the upstream connection is destroyed, so its pool slot is free again); the
 * bytes it had not yet passed on are never passed on.
 *
 * Why here: everything read from an upstream is untrusted and bounded before anything else sees it (the cache
 * layer below only stores and shares what this lets through).
 */
import { NuproxyError } from '../errors.js';
import { safeUrl } from '../log.js';
import { toUpstreamError } from './http-client.js';
import { SecretSet } from './secrets.js';
import { configSchema, type UpstreamConfig } from '../config/schema.js';

/** Which file a body claims to be: decides its first-bytes check and its size limit. */
export type PackageFileKind = 'nupkg' | 'nuspec';

export interface PackageBodyRules {
  upstream: string;
  url: string;
  file: PackageFileKind;
  /** limits.packageBytes or limits.nuspecBytes. */
  maxBytes: number;
  /** limits.minRate: bytes per second the body keeps up on average once the grace is over. */
  minRate: number;
  /** How long a body may be slower than minRate at its start (connection set-up, a slow first byte). */
  graceMs: number;
  secrets: SecretSet;
  /** Told of the bytes as they arrive (the metrics' bytes fetched). */
  fetched?: (bytes: number) => void;
}


/** A package body as the rest of nuproxy reads it: only bytes that passed the rules; destroy() cancels it. */
export interface GuardedBody extends AsyncIterable<Uint8Array> {
  destroy(err?: Error): void;
}

export type UpstreamLimits = UpstreamConfig['limits'];

/** What one upstream's package bodies are held to: its limits and every configured secret. */
export interface PackageRules {
  limits: UpstreamLimits;
  secrets: SecretSet;
}

let defaults: UpstreamLimits | undefined;
/**
 * An upstream's package rules from its client options; without them (a client built without a config: tools,
 * tests) the schema's limits (the one place for defaults) and no secrets.
 */
export function packageRulesOf(limits: UpstreamLimits | undefined, secrets: SecretSet | undefined): PackageRules {
  return { limits: limits ?? (defaults ??= configSchema.parse({}).upstreams[0]!.limits), secrets: secrets ?? SecretSet.none() };
}

/** The grace before minRate applies (a cold connection, TLS, a slow first byte). */
export const RATE_GRACE_MS = 10_000;
/** Rate checks are at least this far apart (a body exactly at minRate would otherwise be checked constantly). */
const MIN_CHECK_MS = 200;
const ZIP_LOCAL_HEADER = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Whitespace a .nuspec may start with before its first "<" (beyond this it is not XML). */
const MAX_LEADING_WHITESPACE = 1024;

/** The name of the limit a file kind is held to, for messages. */
export function limitName(file: PackageFileKind): 'packageBytes' | 'nuspecBytes' {
  return file === 'nupkg' ? 'packageBytes' : 'nuspecBytes';
}

/** "260 MB", "4 MB", "16 KB": sizes in messages, as the config writes them. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= n) return `${Math.round((bytes / n) * 10) / 10} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** The refusal of a body over its size limit (announced or counted). */
export function tooLarge(r: Pick<PackageBodyRules, 'upstream' | 'url' | 'file' | 'maxBytes'>, announced?: number): NuproxyError {
  const what = r.file === 'nupkg' ? 'package' : '.nuspec';
  const size = announced !== undefined ? `announced a ${what} of ${formatSize(announced)}` : `sent a ${what} larger than`;
  const tail = announced !== undefined ? `, more than limits.${limitName(r.file)} (${formatSize(r.maxBytes)})` : ` limits.${limitName(r.file)} (${formatSize(r.maxBytes)})`;
  return new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${r.upstream} ${size}${tail}`, { upstream: r.upstream, url: safeUrl(r.url), limit: limitName(r.file), maxBytes: r.maxBytes });
}

/**
 * Judges the first bytes: true once they are right, false while more are needed; throws when they are wrong.
 * `ended`: no more bytes will come (what there is must decide).
 */
function headCheck(r: PackageBodyRules): (head: Buffer, ended: boolean) => boolean {
  const refuse = (what: string): NuproxyError =>
    new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${r.upstream} sent a body that is not a ${what}`, { upstream: r.upstream, url: safeUrl(r.url) });
  if (r.file === 'nupkg') {
    return (head, ended) => {
      if (head.length < ZIP_LOCAL_HEADER.length && !ended) return false;
      if (head.length >= ZIP_LOCAL_HEADER.length && head.subarray(0, ZIP_LOCAL_HEADER.length).equals(ZIP_LOCAL_HEADER)) return true;
      throw refuse('package (it does not start as a zip archive)');
    };
  }
  return (head, ended) => {
    if (!ended && head.length < 3 && UTF8_BOM.subarray(0, head.length).equals(head)) return false; // a BOM, maybe
    let i = head.length >= 3 && head.subarray(0, 3).equals(UTF8_BOM) ? 3 : 0;
    while (i < head.length && (head[i] === 0x20 || head[i] === 0x09 || head[i] === 0x0a || head[i] === 0x0d)) i++;
    if (i < head.length) {
      if (head[i] === 0x3c) return true; // "<"
      throw refuse('.nuspec (it does not start as XML)');
    }
    if (ended || head.length > MAX_LEADING_WHITESPACE) throw refuse('.nuspec (it does not start as XML)');
    return false;
  };
}

/**
 * Wraps an upstream package body in its rules. Bytes are passed on only once judged: the first ones after the
 * head check, and (with secrets configured) always all but the last `longest secret - 1`, so that not even the
 * beginning of a secret split across two chunks leaves before the chunk that completes it is scanned.
 */
export function guardPackageBody(body: AsyncIterable<unknown> & { destroy(err?: Error): unknown; on(e: 'error', fn: () => void): unknown }, r: PackageBodyRules): GuardedBody {
  const started = Date.now();
  let received = 0;
  let failure: Error | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stop = (err: Error): void => {
    failure ??= err;
    if (timer) clearTimeout(timer);
    body.on('error', () => undefined);
    body.destroy(failure);
  };
  // the deadline: after the grace, the average rate since the headers may not fall below minRate. One timer,
  // set for the moment the bytes received so far stop being enough.
  const check = (): void => {
    const elapsed = Date.now() - started;
    if (received < (r.minRate * elapsed) / 1000) {
      stop(
        new NuproxyError('UPSTREAM_TIMEOUT', `upstream ${r.upstream} sent the ${r.file === 'nupkg' ? 'package' : '.nuspec'} slower than limits.minRate (${formatSize(r.minRate)}/s on average)`, {
          upstream: r.upstream,
          url: safeUrl(r.url),
          limit: 'minRate',
        }),
      );
      return;
    }
    arm(started + (received / r.minRate) * 1000);
  };
  const arm = (at: number): void => {
    timer = setTimeout(check, Math.max(MIN_CHECK_MS, at - Date.now()));
    timer.unref();
  };
  if (r.minRate > 0) arm(started + r.graceMs);

  const head = headCheck(r);
  const scanner = r.secrets.empty ? undefined : r.secrets.scanner();
  const keep = scanner ? Math.max(0, r.secrets.maxLength - 1) : 0;
  const secretFound = (): NuproxyError =>
    new NuproxyError('UPSTREAM_BAD_RESPONSE', `upstream ${r.upstream} sent a ${r.file === 'nupkg' ? 'package' : '.nuspec'} that contains a configured secret: refused`, { upstream: r.upstream, url: safeUrl(r.url) });

  async function* iterate(): AsyncGenerator<Uint8Array> {
    let headOk = false;
    let held: Buffer | undefined; // bytes not passed on yet: the head before it is judged, then the last `keep`
    try {
      for await (const raw of body) {
        const chunk = raw as Buffer;
        received += chunk.length;
        r.fetched?.(chunk.length);
        if (received > r.maxBytes) throw tooLarge(r);
        if (scanner?.push(chunk)) throw secretFound();
        if (!headOk) {
          held = held ? Buffer.concat([held, chunk]) : chunk;
          if (!head(held, false)) continue;
          headOk = true;
          if (held.length > keep) {
            yield held.subarray(0, held.length - keep);
            held = held.subarray(held.length - keep);
          }
          continue;
        }
        if (keep === 0) {
          yield chunk;
          continue;
        }
        if (chunk.length >= keep) {
          // a secret ending later starts inside this chunk's last `keep` bytes: what was held is safe now
          if (held && held.length > 0) yield held;
          if (chunk.length > keep) yield chunk.subarray(0, chunk.length - keep);
          held = chunk.subarray(chunk.length - keep);
        } else {
          held = held ? Buffer.concat([held, chunk]) : chunk;
          if (held.length > keep) {
            yield held.subarray(0, held.length - keep);
            held = held.subarray(held.length - keep);
          }
        }
      }
      if (failure) throw failure;
      if (!headOk) head(held ?? Buffer.alloc(0), true); // throws: the body ended before its head was right
      if (held && held.length > 0) yield held;
    } catch (err) {
      const e = failure ?? toUpstreamError(err, r.upstream, r.url);
      stop(e);
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  const it = iterate();
  return {
    [Symbol.asyncIterator]: () => it,
    destroy: (err?: Error) => stop(err ?? new NuproxyError('UPSTREAM_UNREACHABLE', `the download from upstream ${r.upstream} was cancelled`, { upstream: r.upstream })),
  };
}
