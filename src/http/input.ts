import { isValidPackageId, lowerId as toLowerId } from '../protocol/id.js';
import { lowerNormalizedVersion } from '../protocol/version.js';
import { badRequest } from './errors.js';

const MAX_PATH = 2048;

/**
 * The paths of nearly every request (ids, versions, file names in plain ASCII: no escapes, no controls, no
 * backslash): for these decoding changes nothing, so only dot segments and empty segments are left to look for,
 * in one pass each instead of a split and a decode per segment (the warm hit's path).
 */
const PLAIN_PATH = /^[\x21-\x24\x26-\x5b\x5d-\x7e]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

/**
 * Refuses paths that could address anything outside the proxy's own URL space: encoded slashes and
 * backslashes, NUL, dot segments, empty segments, over-long paths. Runs on the raw (still encoded) path.
 */
export function checkRawPath(rawPath: string): void {
  if (rawPath.length > MAX_PATH) throw badRequest('path too long');
  if (PLAIN_PATH.test(rawPath)) {
    if (DOT_SEGMENT.test(rawPath)) throw badRequest('path contains a dot segment');
    if (/\/\/./.test(rawPath)) throw badRequest('path contains an empty segment');
    return;
  }
  if (/%(?:2f|5c|00)/i.test(rawPath) || rawPath.includes('\\') || rawPath.includes('\0')) {
    throw badRequest('path contains an encoded slash, backslash or NUL');
  }
  const segments = rawPath.split('/').slice(1);
  for (const seg of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      throw badRequest('path is not valid percent-encoding');
    }
    if (decoded === '.' || decoded === '..' || seg === '.' || seg === '..') throw badRequest('path contains a dot segment');
    if (/[\u0000-\u001f\u007f]/.test(decoded)) throw badRequest('path contains control characters');
  }
  if (/\/\/./.test(rawPath)) throw badRequest('path contains an empty segment');
}

export function parseId(raw: string): string {
  if (!isValidPackageId(raw)) throw badRequest('invalid package id', { id: raw.slice(0, 120) });
  return toLowerId(raw);
}

export function parseVersionParam(raw: string): string {
  const v = lowerNormalizedVersion(raw);
  if (!v) throw badRequest('invalid package version', { version: raw.slice(0, 120) });
  return v;
}

/** Query strings are forwarded raw (the client pre-encodes `q`); only their size is bounded here. */
export function rawQueryOf(url: string): string {
  const i = url.indexOf('?');
  const q = i < 0 ? '' : url.slice(i + 1).split('#')[0]!;
  if (q.length > 4096) throw badRequest('query string too long');
  return q;
}
