// The durable state of the bounded cache (issue #14): when each package was last used, and the packages pinned
// by `nuproxy warm --pin`. Kept in the blob store itself (state/usage.json, state/pins.json): the same code on
// every backend, under cache.dir on the disk, in the bucket with S3 (so instances sharing a bucket share usage:
// a flush merges with what is there, newest use wins). Written whole and atomically (BlobStore.put).
//
// Both files are untrusted input: bounded in size, validated entry by entry; a corrupt file is ignored with a
// warning and counts as "usage unknown", never as "nothing was used".
import type { BlobStore } from '../cache/blob-store.js';
import type { Logger } from '../log.js';
import { PACKAGES } from './cache-keys.js';

export const USAGE_KEY = 'state/usage.json';
export const PINS_KEY = 'state/pins.json';
/** Largest state file read (about 40 bytes an entry: a million packages). */
const MAX_STATE_BYTES = 48 * 1024 * 1024;
/** Most entries kept: past it the oldest uses are dropped (they fall back to their commit time). */
export const MAX_USAGE_ENTRIES = 1_000_000;
const ENTRY = /^[a-z0-9_][a-z0-9._-]{0,199}\/[a-z0-9._+-]{1,200}$/;

/** `{lowerId}/{lowerVersion}`: what usage and pins are kept by. */
export function packageRef(lowerId: string, lowerVersion: string): string {
  return `${lowerId}/${lowerVersion}`;
}

/** The package a blob key belongs to (`packages/{id}/{version}/{file}`), undefined for other keys. */
export function refOfKey(key: string): string | undefined {
  if (!key.startsWith(`${PACKAGES}/`)) return undefined;
  const a = key.indexOf('/', PACKAGES.length + 1);
  const b = a < 0 ? -1 : key.indexOf('/', a + 1);
  return b < 0 ? undefined : key.slice(PACKAGES.length + 1, b);
}

export type StateRead = 'ok' | 'absent' | 'corrupt';

async function readJson(blobs: BlobStore, key: string, log: Logger): Promise<{ state: StateRead; value?: unknown }> {
  try {
    const info = await blobs.stat(key);
    if (!info) return { state: 'absent' };
    if (info.size > MAX_STATE_BYTES) {
      log.warn({ key, size: info.size }, 'eviction state file too large: ignored');
      return { state: 'corrupt' };
    }
    const bytes = await blobs.read(key);
    if (!bytes) return { state: 'absent' };
    return { state: 'ok', value: JSON.parse(bytes.toString('utf8')) };
  } catch (err) {
    log.warn({ key, err: (err as Error).message }, 'eviction state file unreadable: ignored (usage counts as unknown)');
    return { state: 'corrupt' };
  }
}

/** Validates a usage document: `{v: 1, since, used: {ref: ms}}`. Undefined when it is not one. */
export function parseUsage(value: unknown): { since: number; used: Map<string, number> } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const doc = value as { v?: unknown; since?: unknown; used?: unknown };
  if (doc.v !== 1 || !isTime(doc.since) || typeof doc.used !== 'object' || doc.used === null || Array.isArray(doc.used)) return undefined;
  const used = new Map<string, number>();
  for (const [ref, ms] of Object.entries(doc.used as Record<string, unknown>)) {
    if (used.size >= MAX_USAGE_ENTRIES) break;
    if (!ENTRY.test(ref) || !isTime(ms)) return undefined; // one bad entry: the file is not ours, trust none of it
    used.set(ref, ms);
  }
  return { since: doc.since, used };
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Last-used times of packages, in memory, flushed now and then. `note` is what the batched reader calls with
 * the keys a store served (BlobStore.takeReads): no work per request.
 */
export class UsageBook {
  private used = new Map<string, number>();
  private dirty = false;
  /** When tracking started (the file's `since`): nothing counts as unused for longer than tracking has run. */
  since: number;
  /** The stored state was read (or there was none yet). False after a corrupt file: see PlanOptions.usageKnown. */
  known = true;

  constructor(
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    now: number,
  ) {
    this.since = now;
  }

  async load(): Promise<StateRead> {
    const { state, value } = await readJson(this.blobs, USAGE_KEY, this.log);
    if (state !== 'ok') {
      this.known = state === 'absent';
      return state;
    }
    const parsed = parseUsage(value);
    if (!parsed) {
      this.log.warn({ key: USAGE_KEY }, 'eviction usage state is not valid: ignored (usage counts as unknown until it is written again)');
      this.known = false;
      return 'corrupt';
    }
    this.since = Math.min(this.since, parsed.since);
    for (const [ref, ms] of parsed.used) this.touch(ref, ms);
    this.dirty = false;
    return 'ok';
  }

  /** Records the keys a store served at `now`. */
  note(keys: readonly string[], now: number): void {
    for (const key of keys) {
      const ref = refOfKey(key);
      if (ref !== undefined) this.touch(ref, now);
    }
  }

  touch(ref: string, ms: number): void {
    const was = this.used.get(ref);
    if (was === undefined || ms > was) {
      this.used.set(ref, ms);
      this.dirty = true;
    }
  }

  lastUsed(ref: string): number | undefined {
    return this.used.get(ref);
  }

  forget(ref: string): void {
    if (this.used.delete(ref)) this.dirty = true;
  }

  get size(): number {
    return this.used.size;
  }

  /** Writes the state (merged with what another instance sharing the store wrote meanwhile). */
  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      const { state, value } = await readJson(this.blobs, USAGE_KEY, this.log);
      const other = state === 'ok' ? parseUsage(value) : undefined;
      if (other) for (const [ref, ms] of other.used) if (!this.used.has(ref) || this.used.get(ref)! < ms) this.used.set(ref, ms);
      // after a corrupt file, a new one starts: usage is known again from here on
      this.known = true;
      await this.blobs.put(USAGE_KEY, Buffer.from(JSON.stringify({ v: 1, since: this.since, used: Object.fromEntries(this.bounded()) })));
    } catch (err) {
      this.dirty = true;
      this.log.warn({ err: (err as Error).message }, 'could not write the eviction usage state (tried again later)');
    }
  }

  private bounded(): Map<string, number> {
    if (this.used.size <= MAX_USAGE_ENTRIES) return this.used;
    const newest = [...this.used].sort((a, b) => b[1] - a[1]).slice(0, MAX_USAGE_ENTRIES);
    this.used = new Map(newest);
    return this.used;
  }
}

/** Packages pinned by `nuproxy warm --pin` (refs), validated like the usage state. */
export async function readPins(blobs: BlobStore, log: Logger): Promise<{ state: StateRead; pins: Set<string> }> {
  const { state, value } = await readJson(blobs, PINS_KEY, log);
  if (state !== 'ok') return { state, pins: new Set() };
  const doc = value as { v?: unknown; pins?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || doc.v !== 1 || !Array.isArray(doc.pins) || doc.pins.length > MAX_USAGE_ENTRIES || !doc.pins.every((p) => typeof p === 'string' && ENTRY.test(p))) {
    log.warn({ key: PINS_KEY }, 'pins file is not valid: ignored');
    return { state: 'corrupt', pins: new Set() };
  }
  return { state, pins: new Set(doc.pins as string[]) };
}

/** Adds and removes pinned refs (`warm --pin` / `--unpin`); refuses to overwrite a pins file it cannot read. */
export async function updatePins(blobs: BlobStore, log: Logger, add: readonly string[], remove: readonly string[] = []): Promise<Set<string>> {
  const { state, pins } = await readPins(blobs, log);
  if (state === 'corrupt') throw new Error(`${PINS_KEY} is not valid: fix or remove it before pinning`);
  for (const r of add) pins.add(r);
  for (const r of remove) pins.delete(r);
  await blobs.put(PINS_KEY, Buffer.from(JSON.stringify({ v: 1, pins: [...pins].sort() })));
  return pins;
}
