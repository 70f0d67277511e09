// What the blob store's conformance suite (blob-store.contract.ts) shares between its parts: the fixture a
// backend provides, the keys every backend refuses, and helpers for streams and timing.
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import type { BlobStore } from '../../src/cache/blob-store.js';
import type { SharedDownload } from '../../src/cache/shared-download.js';
import { NuproxyError } from '../../src/errors.js';

export type BlobStoreUnderTest = BlobStore;

export interface BlobStoreFixture {
  /** An initialised, empty store. */
  store: BlobStoreUnderTest;
  /** Every item the backend holds, temp area included (sorted names): proves refused or failed writes left nothing. */
  listAll(): Promise<string[]>;
  /** The committed bytes at `key`, read straight from the backend (undefined when absent). */
  readBlob(key: string): Promise<Buffer | undefined>;
  /** Leaves `n` items in the temp area the way a crash would. */
  plantLeftovers(n: number): Promise<void>;
  /** A fresh store instance over the same data (no in-process caches); not initialised. */
  reopen(): BlobStoreUnderTest;
  cleanup(): Promise<void>;
}

export const BAD_KEYS: readonly [string, string][] = [
  ['parent', '../x'],
  ['parent after a segment', 'a/../../x'],
  ['dot segment', 'a/./b'],
  ['absolute', '/abs'],
  ['empty segment', 'a//b'],
  ['trailing slash', 'a/b/'],
  ['empty', ''],
  ['backslash', 'a\\b'],
  ['backslash parent', '..\\x'],
  ['temp area', '.tmp/x'],
  ['hidden segment', 'a/.hidden'],
  ['NUL', 'a\0b'],
  ['newline', 'a\nb'],
  ['600-char segment', 'a'.repeat(600)],
  ['600-char path of valid segments', Array.from({ length: 6 }, () => 'b'.repeat(99)).join('/')],
];

export const sha512b64 = (bytes: Uint8Array): string => createHash('sha512').update(bytes).digest('base64');

export const TOTAL = 1024 * 1024;
const CHUNK = 16 * 1024;

/** Collects a stream; never rejects: an error is returned with the bytes received before it. */
export function readAll(stream: Readable): Promise<{ bytes: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ bytes: Buffer.concat(chunks) }));
    stream.on('error', (error) => resolve({ bytes: Buffer.concat(chunks), error }));
  });
}

/** Counts bytes as they arrive, for watching a reader mid-download. */
export function watch(stream: Readable): { received: () => number; result: Promise<{ bytes: Buffer; error?: Error }> } {
  let n = 0;
  stream.on('data', (c: Buffer) => (n += c.length));
  return { received: () => n, result: readAll(stream) };
}

export const tick = (ms = 1): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await tick(5);
  }
}

/** Readers of `dl` that have caught up and wait for its next progress event (the download's own emitter). */
export function parked(dl: SharedDownload): number {
  return (dl as unknown as { events: EventEmitter }).events.listenerCount('progress');
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** An async source of `data` in CHUNK pieces with a real await between them; optional hooks per chunk index. */
export async function* chunked(data: Buffer, hooks: { before?: (i: number, last: boolean) => Promise<void> } = {}): AsyncGenerator<Uint8Array> {
  const count = Math.ceil(data.length / CHUNK);
  for (let i = 0; i < count; i++) {
    await tick(0);
    await hooks.before?.(i, i === count - 1);
    // a copy, so nothing downstream can alias the test's buffer
    yield Uint8Array.prototype.slice.call(data.subarray(i * CHUNK, (i + 1) * CHUNK));
  }
}

export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a NuproxyError ${code}`).toBeInstanceOf(NuproxyError);
  expect((caught as NuproxyError).code).toBe(code);
}

/** What each part of the suite gets: the fixture and store of the test running now (set in beforeEach). */
export interface ContractContext {
  fx: () => BlobStoreFixture;
  store: () => BlobStoreUnderTest;
}

/** Stores `bytes` at `key` through a writer (the one way every backend has). */
export async function storeBytes(store: BlobStoreUnderTest, key: string, bytes: Buffer, upstream?: string) {
  const w = await store.createWriter(key);
  w.write(bytes);
  return w.commit(sha512b64(bytes), upstream ? { upstream } : {});
}
