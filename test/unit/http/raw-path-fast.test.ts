// checkRawPath has a fast path for plain ASCII paths (no escapes, controls or backslash). It must decide
// exactly as the full check does: the full check below is the one the fast path short-cuts, and both are run
// over every path built from pieces that matter (dots, slashes, escapes, backslash, controls, plain names).
import { describe, expect, it } from 'vitest';
import { checkRawPath } from '../../../src/http/input.js';

function fullCheck(rawPath: string): string | undefined {
  if (rawPath.length > 2048) return 'path too long';
  if (/%(?:2f|5c|00)/i.test(rawPath) || rawPath.includes('\\') || rawPath.includes('\0')) return 'path contains an encoded slash, backslash or NUL';
  for (const seg of rawPath.split('/').slice(1)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      return 'path is not valid percent-encoding';
    }
    if (decoded === '.' || decoded === '..' || seg === '.' || seg === '..') return 'path contains a dot segment';
    if (/[\u0000-\u001f\u007f]/.test(decoded)) return 'path contains control characters';
  }
  if (/\/\/./.test(rawPath)) return 'path contains an empty segment';
  return undefined;
}

function outcome(rawPath: string): string | undefined {
  try {
    checkRawPath(rawPath);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const PIECES = ['/', '.', '..', 'a', 'Newtonsoft.Json', '13.0.3', '%2e', '%2E%2e', '%2f', '%41', '%', '%zz', '\\', '\u0001', '\u007f', ' ', '~', 'é', '?x=1', '-'];

describe('checkRawPath: the plain-path fast path decides as the full check', () => {
  it('every path of up to four pieces, and typical feed paths', () => {
    const paths: string[] = ['/v3/flat/newtonsoft.json/13.0.3/newtonsoft.json.13.0.3.nupkg', '/v3/registration/x/index.json', '/', ''];
    const build = (prefix: string, depth: number): void => {
      paths.push(prefix);
      if (depth === 0) return;
      for (const p of PIECES) build(prefix + p, depth - 1);
    };
    build('/', 4);
    expect(paths.length).toBeGreaterThan(100_000);
    let plain = 0;
    for (const p of paths) {
      if (/^[\x21-\x24\x26-\x5b\x5d-\x7e]*$/.test(p)) plain++;
      const got = outcome(p);
      if (got !== fullCheck(p)) expect({ path: p, got }).toEqual({ path: p, got: fullCheck(p) });
    }
    expect(plain).toBeGreaterThan(1000); // the fast path was really taken on many of them
  });
});
