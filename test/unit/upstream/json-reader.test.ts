import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonDepthError, JsonReader, JsonSyntaxError } from '../../../src/upstream/json-reader.js';

const CAPTURED = new URL('../../fixtures/captured/', import.meta.url).pathname;

/** A small deterministic PRNG (mulberry32): failures can be replayed from the seed in the test name. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Feeds `bytes` to a reader in random-sized chunks; returns the value or the error thrown. */
function read(bytes: Buffer, opts: { sliceBytes: number; maxDepth?: number; rand: () => number; onEscapedString?: (s: string) => void }): { value?: unknown; err?: unknown } {
  const reader = new JsonReader({ maxDepth: opts.maxDepth ?? 1000, sliceBytes: opts.sliceBytes, ...(opts.onEscapedString ? { onEscapedString: opts.onEscapedString } : {}) });
  try {
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + Math.floor(opts.rand() * (opts.rand() < 0.5 ? 8 : 4096));
      reader.push(bytes.subarray(i, i + n));
      i += n;
    }
    return { value: reader.end() };
  } catch (err) {
    return { err };
  }
}

function expected(bytes: Buffer): { value?: unknown; err?: unknown } {
  try {
    return { value: JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, '')) };
  } catch (err) {
    return { err };
  }
}

const WORDS = ['a', 'versions', '@id', '__proto__', 'ké', '日本', 'x\\"y', 'tab\\t', '\\u002Bplus', '\\\\', 'emoji 😀', ''];

function randomJson(rand: () => number, depth: number, budget = { left: 400 }): string {
  const r = rand();
  if (depth > 6 || r < 0.3 || --budget.left <= 0) {
    const s = rand();
    if (s < 0.4) return `"${WORDS[Math.floor(rand() * WORDS.length)]}${Math.floor(rand() * 1000)}"`;
    if (s < 0.7) return String(Math.floor(rand() * 1e6) / (rand() < 0.5 ? 1 : 100) * (rand() < 0.2 ? -1 : 1));
    return ['true', 'false', 'null', '1e3', '-0.5E-2'][Math.floor(rand() * 5)]!;
  }
  const n = Math.floor(rand() * (rand() < 0.2 ? 40 : 6));
  const ws = (): string => (rand() < 0.2 ? [' ', '\n', '\t ', '\r\n  '][Math.floor(rand() * 4)]! : '');
  const items: string[] = [];
  if (r < 0.65) {
    for (let i = 0; i < n; i++) items.push(`${ws()}${randomJson(rand, depth + 1, budget)}${ws()}`);
    return `[${items.join(',')}${ws()}]`;
  }
  for (let i = 0; i < n; i++) items.push(`${ws()}"${WORDS[Math.floor(rand() * WORDS.length)]}${rand() < 0.7 ? i : ''}"${ws()}:${ws()}${randomJson(rand, depth + 1, budget)}${ws()}`);
  return `{${items.join(',')}${ws()}}`;
}

describe('JsonReader', () => {
  it('gives exactly what JSON.parse gives for every captured document, whatever the chunks and slice size', () => {
    const files = readdirSync(CAPTURED, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json'));
    expect(files.length).toBeGreaterThan(3);
    const rand = prng(1);
    for (const f of files) {
      const bytes = readFileSync(join(f.parentPath, f.name));
      for (const sliceBytes of [1, 64, 4096, 1 << 20]) {
        const got = read(bytes, { sliceBytes, rand });
        expect(got.err, `${f.name} slice ${sliceBytes}`).toBeUndefined();
        expect(got.value, `${f.name} slice ${sliceBytes}`).toStrictEqual(expected(bytes).value);
      }
    }
  });

  it('gives exactly what JSON.parse gives for random documents, and fails where JSON.parse fails on damaged ones', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed);
      const doc = `${rand() < 0.1 ? '\uFEFF' : ''}${rand() < 0.2 ? ' \n' : ''}${randomJson(rand, 0)}${rand() < 0.2 ? '\n' : ''}`;
      let bytes = Buffer.from(doc);
      if (seed % 2 === 0 && bytes.length > 2) {
        // damage: drop, double or replace one byte with a structural one
        const at = Math.floor(rand() * bytes.length);
        const op = Math.floor(rand() * 3);
        const ch = Buffer.from([',', ':', '"', '[', ']', '{', '}', ' ', '\\'][Math.floor(rand() * 9)]!);
        bytes = op === 0 ? Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]) : op === 1 ? Buffer.concat([bytes.subarray(0, at), ch, bytes.subarray(at)]) : Buffer.concat([bytes.subarray(0, at), ch, bytes.subarray(at + 1)]);
      }
      const want = expected(bytes);
      for (const sliceBytes of [1, 16, 256]) {
        const got = read(bytes, { sliceBytes, rand });
        const what = `seed ${seed} slice ${sliceBytes}: ${bytes.toString('utf8').slice(0, 200)}`;
        if (want.err) {
          expect(got.err, what).toBeInstanceOf(JsonSyntaxError);
        } else {
          expect(got.err, what).toBeUndefined();
          expect(got.value, what).toStrictEqual(want.value);
        }
      }
    }
  });

  it('keeps "__proto__" an own member, never the prototype, in containers built piecewise', () => {
    const doc = Buffer.from(`{"a":[1,2,3],"__proto__":{"polluted":true},"b":[${'1,'.repeat(50)}1]}`);
    const got = read(doc, { sliceBytes: 4, rand: prng(7) }).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.hasOwn(got, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(got).toStrictEqual(JSON.parse(doc.toString()));
  });

  it('refuses nesting deeper than maxDepth the moment it is reached, and accepts maxDepth itself', () => {
    const deep = (n: number): Buffer => Buffer.from('['.repeat(n) + ']'.repeat(n));
    const ok = new JsonReader({ maxDepth: 64 });
    ok.push(deep(64));
    expect(ok.end()).toBeInstanceOf(Array);
    const reader = new JsonReader({ maxDepth: 64 });
    // 100,000 deep: refused while pushing, before the end of the document
    expect(() => reader.push(Buffer.from('{"a":' + '['.repeat(100_000)))).toThrow(JsonDepthError);
    // brackets inside strings do not count
    const strings = new JsonReader({ maxDepth: 8 });
    strings.push(Buffer.from(`{"a":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}`));
    expect(strings.end()).toEqual({ a: `${'['.repeat(100)}"${'{'.repeat(100)}` });
  });

  it('hands every string that holds an escape to onEscapedString, decoded, even when cut across chunks', () => {
    const seen: string[] = [];
    const doc = Buffer.from('{"plain":"abc","k\\u0065y":["to\\u002Bken","x\\\\y\\"z"]}');
    for (let cut = 1; cut < doc.length; cut++) {
      seen.length = 0;
      const reader = new JsonReader({ maxDepth: 8, onEscapedString: (s) => seen.push(s) });
      reader.push(doc.subarray(0, cut));
      reader.push(doc.subarray(cut));
      expect(reader.end()).toEqual({ plain: 'abc', key: ['to+ken', 'x\\y"z'] });
      expect(seen).toEqual(['key', 'to+ken', 'x\\y"z']);
    }
  });

  it('lets go of parsed bytes: a large document is held as objects, not as bytes plus objects', () => {
    const reader = new JsonReader({ maxDepth: 8, sliceBytes: 1024 });
    reader.push(Buffer.from('{"versions":['));
    const chunk = Buffer.from('"1.0.0-some.prerelease",'.repeat(1000));
    for (let i = 0; i < 200; i++) reader.push(chunk);
    reader.push(Buffer.from('"2.0.0"]}'));
    // what is still held is at most about a slice and a chunk, not the 4.8 MB pushed
    const held = (reader as unknown as { chunks: Buffer[] }).chunks.reduce((n, c) => n + c.length, 0);
    expect(held).toBeLessThan(chunk.length + 4096);
    const doc = reader.end() as { versions: string[] };
    expect(doc.versions).toHaveLength(200_001);
  });
});
