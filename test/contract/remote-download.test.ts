import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventEmitter } from 'node:events';
import type { BlobWriter } from '../../src/cache/blob-store.js';
import { FsBlobStore } from '../../src/cache/fs-blob-store.js';
import { RemoteDownload } from '../../src/cache/shared-download.js';
import { waitFor } from '../support/wait.js';

// A download another worker writes: the follower reads the writer's bytes through its own store instance (the
// share reference: the real temp file on this disk) as progress is reported, and the last byte only comes once
// the writer says the whole passed its checks. Once committed, the blob is read from the store at its key.

/** Collects a reader's bytes; resolves with them and whether it ended or failed, once either happens. */
function drain(r: Readable): { bytes: () => Buffer; outcome: Promise<'end' | Error> } {
  const chunks: Buffer[] = [];
  r.on('data', (c: Buffer) => chunks.push(c));
  const outcome = new Promise<'end' | Error>((resolve) => {
    r.on('end', () => resolve('end'));
    r.on('error', (err) => resolve(err));
  });
  return { bytes: () => Buffer.concat(chunks), outcome };
}

/**
 * Resolves once a reader of `dl` has caught up: it has `bytes` and waits for the next progress report (the
 * download's own event). A reader that would give more than it may has given it by then, with no sleep to
 * guess how long "by then" is on a busy machine.
 */
function caughtUp(dl: RemoteDownload, r: { bytes: () => Buffer }, bytes: number): Promise<unknown> {
  const events = (dl as unknown as { events: EventEmitter }).events;
  return waitFor(`a reader with ${bytes} bytes, waiting for progress`, () => r.bytes().length >= bytes && events.listenerCount('progress') > 0, { stepMs: 2 });
}

describe('RemoteDownload (following another worker\'s temp file)', () => {
  let dir: string;
  /** The writing worker's store and writer, and the following worker's own store over the same disk. */
  let writer: BlobWriter;
  let follower: FsBlobStore;
  const key = 'packages/x/1.0.0/x.1.0.0.nupkg';
  const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const remote = (idleMs: number, ref = writer.shareRef!): RemoteDownload => new RemoteDownload(follower, key, ref, data.length, 'u', idleMs);
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-remote-'));
    const store = new FsBlobStore(dir);
    await store.init();
    follower = new FsBlobStore(dir);
    writer = await store.createWriter(key);
    writer.write(data.subarray(0, 100_000));
  });
  afterEach(async () => {
    await writer.abort();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives what was reported, holds the last byte until verified, then ends with every byte', async () => {
    const dl = remote(60_000);
    dl.progress(100_000, false);
    const r = drain(dl.createReader());
    await caughtUp(dl, r, 99_999);
    expect(r.bytes().length).toBe(99_999);
    writer.write(data.subarray(100_000));
    dl.progress(data.length, false); // all bytes are there, not yet checked
    await caughtUp(dl, r, data.length - 1);
    expect(r.bytes().length).toBe(data.length - 1);
    dl.progress(data.length, true);
    expect(await r.outcome).toBe('end');
    expect(r.bytes().equals(data)).toBe(true);
  });

  it('fails its readers when the writer reports a failure after the last byte arrived: no complete body', async () => {
    writer.write(data.subarray(100_000));
    const dl = remote(60_000);
    dl.progress(data.length, false);
    const r = drain(dl.createReader());
    await caughtUp(dl, r, data.length - 1);
    dl.fail('zip end record missing');
    const outcome = await r.outcome;
    expect(outcome).toBeInstanceOf(Error);
    expect(r.bytes().length).toBeLessThan(data.length);
    await expect(dl.done).rejects.toThrow(/zip end record/);
  });

  it('fails when the writer goes quiet, and reads the stored file when it is already in place', async () => {
    const quiet = remote(50);
    const r = drain(quiet.createReader());
    expect(await r.outcome).toBeInstanceOf(Error);
    writer.write(data.subarray(100_000));
    const ref = writer.shareRef!;
    const info = await writer.commit(createHash('sha512').update(data).digest('base64'));
    const done = remote(60_000, ref); // its temp file is gone: moved into place
    done.finish(info);
    const r2 = drain(done.createReader());
    expect(await r2.outcome).toBe('end');
    expect(r2.bytes().equals(data)).toBe(true);
  });
});
