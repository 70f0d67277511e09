// Small pieces the `nuproxy warm` closure walk uses: a concurrency limit, the version NuGet picks for a range, and
// reading a package stream while counting its bytes.
import type { Readable } from 'node:stream';
import { isNuproxyError } from '../errors.js';
import { bestMatch, parseRange } from '../protocol/range.js';
import { compareVersions, isPrerelease, normalizeVersion, parseVersion, type NuGetVersion } from '../protocol/version.js';
import { parseFloating } from './warm-inputs.js';

/** Runs a function when a slot is free. */
export type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

/** At most `n` functions running at once; a finished one hands its slot straight to the next in line. */
export function createLimit(n: number): Limit {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (active < n) active++;
    else await new Promise<void>((resolve) => queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}

/** The message of an error, for a failure line. */
export function reasonOf(err: unknown): string {
  if (isNuproxyError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The version NuGet picks for a requested range among the listed ones: the lowest in range (prereleases only
 * when a bound is one), or for a floating version ('1.*', '1.0.0-beta*', '*-*') the highest that matches.
 */
export function pickVersion(spec: string, listed: readonly string[]): string | undefined {
  const candidates = listed.map((v) => parseVersion(v)).filter((v): v is NuGetVersion => v !== undefined);
  let chosen: NuGetVersion | undefined;
  if (spec.includes('*')) {
    const f = parseFloating(spec);
    if (!f) return undefined;
    const core = f.exactCore ? parseVersion(spec.slice(0, spec.indexOf('-'))) : undefined;
    const nums = (v: NuGetVersion): number[] => [v.major, v.minor, v.patch, v.revision];
    for (const v of candidates) {
      if (f.exactCore && core) {
        if (nums(v).some((n, i) => n !== nums(core)[i])) continue;
      } else if (f.prefix.some((n, i) => nums(v)[i] !== n)) continue;
      if (isPrerelease(v)) {
        if (f.releasePrefix === undefined) continue;
        if (!v.release.join('.').toLowerCase().startsWith(f.releasePrefix.toLowerCase())) continue;
      }
      if (!chosen || compareVersions(v, chosen) > 0) chosen = v;
    }
  } else {
    const range = parseRange(spec);
    if (!range) return undefined;
    chosen = bestMatch(range, candidates);
  }
  return chosen && normalizeVersion(chosen).toLowerCase();
}

/** Reads a stream to its end, counting bytes; returns the total. */
export async function drain(stream: Readable, onBytes: (n: number) => void): Promise<number> {
  let total = 0;
  for await (const chunk of stream) {
    const n = (chunk as Buffer).length;
    total += n;
    onBytes(n);
  }
  return total;
}

/** Reads a stream into one buffer, counting bytes. */
export async function collect(stream: Readable, onBytes: (n: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    onBytes((chunk as Buffer).length);
  }
  return Buffer.concat(chunks);
}
