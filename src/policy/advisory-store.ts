// Where imported advisories live: one JSON document, state/advisories.json, in the blob store's state area (as
// feed/usage-state.ts keeps state/usage.json), so it works the same on the disk and in an S3 bucket, and every
// instance sharing the store sees the same set. `nuproxy advisories import` writes it (merged by advisory id, or
// replaced); the server reads it at start and polls its stat to pick up an import without a restart.
//
// The store is handed in (anything with BlobStore's stat/read/put): this layer opens no file or socket itself.
// The document is untrusted input like any state file: bounded, validated as OSV entries again on every read.
import { NuproxyError } from '../errors.js';
import { AdvisorySet } from './advisories.js';
import { parseOsvValue, toOsv, type OsvParse } from './osv.js';

export const ADVISORIES_KEY = 'state/advisories.json';
/** Largest stored document read (about 1 KB an advisory: tens of thousands fit). */
export const MAX_ADVISORY_DOC_BYTES = 64 * 1024 * 1024;
/** How often a server looks at the document's stat (one cheap request; an import shows within this). */
export const ADVISORY_POLL_MS = 30_000;

/** The part of cache/'s BlobStore this file uses. */
export interface StateStore {
  stat(key: string): Promise<{ size: number; mtimeMs: number; sha512?: string | undefined } | undefined>;
  read(key: string): Promise<Buffer | undefined>;
  put(key: string, bytes: Uint8Array): Promise<unknown>;
}

export type AdvisoryRead = { state: 'ok' | 'absent'; set: AdvisorySet; stamp?: string } | { state: 'corrupt'; error: string; stamp?: string };

/** What tells one stored document from another without reading it (the hash when the store records one). */
const stampOf = (info: { size: number; mtimeMs: number; sha512?: string | undefined }): string => `${info.size}:${info.mtimeMs}:${info.sha512 ?? ''}`;

/** Reads the stored set: absent (none imported yet: an empty set), ok, or corrupt (with why). */
export async function readAdvisories(store: StateStore): Promise<AdvisoryRead> {
  const info = await store.stat(ADVISORIES_KEY);
  if (!info) return { state: 'absent', set: new AdvisorySet() };
  const stamp = stampOf(info);
  if (info.size > MAX_ADVISORY_DOC_BYTES) return { state: 'corrupt', error: `${ADVISORIES_KEY} is larger than ${MAX_ADVISORY_DOC_BYTES} bytes`, stamp };
  const bytes = await store.read(ADVISORIES_KEY);
  if (!bytes) return { state: 'absent', set: new AdvisorySet() };
  try {
    return { state: 'ok', set: new AdvisorySet(parseAdvisoryDocument(bytes.toString('utf8')).advisories), stamp };
  } catch (err) {
    return { state: 'corrupt', error: (err as Error).message, stamp };
  }
}

/** The advisories of a stored document's text (also a bundle's copy of it); throws when it is not one. */
export function parseAdvisoryDocument(text: string): OsvParse {
  const doc = JSON.parse(text) as { v?: unknown; advisories?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || doc.v !== 1 || !Array.isArray(doc.advisories)) throw new Error('not an advisories document ({"v": 1, "advisories": [...]})');
  return parseOsvValue(doc.advisories, ADVISORIES_KEY);
}

/** Writes a set whole (BlobStore.put is atomic: a reader sees the old document or the new one). */
export async function writeAdvisories(store: StateStore, set: AdvisorySet): Promise<void> {
  const advisories = [...set.advisories.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(toOsv);
  await store.put(ADVISORIES_KEY, Buffer.from(JSON.stringify({ v: 1, advisories })));
}

export interface ImportSummary {
  /** Advisories kept from the input (NuGet MAL- entries, and others with a severity). */
  read: number;
  /** Of those, the ones with a severity (for the vulnerable rule). */
  vulnerabilities: number;
  added: number;
  updated: number;
  /** Withdrawn in the input and removed from the store. */
  removed: number;
  ignored: OsvParse['ignored'];
  /** The stored set afterwards. */
  total: number;
  packageIds: number;
  mode: 'merge' | 'replace';
}

/**
 * Stores parsed advisories: merged into the stored set by advisory id (the newer `modified` wins), or replacing it.
 * A stored document that cannot be read is never overwritten by a merge (it would lose what it held): replace it.
 */
export async function importAdvisories(store: StateStore, parsed: OsvParse, mode: 'merge' | 'replace' = 'merge'): Promise<ImportSummary> {
  const before = await readAdvisories(store);
  if (before.state === 'corrupt' && mode === 'merge') {
    throw new NuproxyError('CONFLICT', `${ADVISORIES_KEY} cannot be read (${before.error}): import with --replace to write a new one`);
  }
  const base = mode === 'replace' || before.state === 'corrupt' ? new AdvisorySet() : before.set;
  const { set, added, updated, removed } = base.merge(parsed.advisories, parsed.withdrawn);
  await writeAdvisories(store, set);
  return { read: parsed.advisories.length, vulnerabilities: parsed.advisories.filter((a) => a.severity !== undefined).length, added, updated, removed, ignored: parsed.ignored, total: set.size, packageIds: set.packageIds, mode };
}

/**
 * Another store's document (a bundle's copy) merged into this store's by advisory id; a stored document that
 * cannot be read is replaced by it (there is nothing readable to keep).
 */
export async function mergeAdvisoryDocument(store: StateStore, text: string): Promise<{ added: number; updated: number; total: number }> {
  const parsed = parseAdvisoryDocument(text);
  const corrupt = (await readAdvisories(store)).state === 'corrupt';
  const s = await importAdvisories(store, parsed, corrupt ? 'replace' : 'merge');
  return { added: s.added, updated: s.updated, total: s.total };
}

export interface AdvisoryWatch {
  /** The set in force (empty until the first read finishes, and when none is stored). */
  current(): AdvisorySet;
  /** Reads the document again if its stat changed; true when the set changed. */
  check(): Promise<boolean>;
  stop(): void;
}

/**
 * Loads the stored advisories and keeps them current: the first read is done when the promise resolves, then the
 * document's stat is polled every `every` ms. A document that turns corrupt keeps the last good set in force (a
 * broken write never unblocks known-malicious packages); `onError` says so. Give compilePolicy `watch.current`.
 */
export async function watchAdvisories(
  store: StateStore,
  opts: { every?: number; onChange?: (set: AdvisorySet) => void; onError?: (message: string) => void } = {},
): Promise<AdvisoryWatch> {
  let set = new AdvisorySet();
  let stamp: string | undefined;
  let running: Promise<boolean> | undefined;
  const load = async (): Promise<boolean> => {
    try {
      const info = await store.stat(ADVISORIES_KEY);
      const now = info ? stampOf(info) : undefined;
      if (now === stamp) return false;
      const read = await readAdvisories(store);
      stamp = read.stamp;
      if (read.state === 'corrupt') {
        opts.onError?.(`imported advisories not loaded: ${read.error} (the last good set, ${set.size} advisories, stays in force)`);
        return false;
      }
      const changed = read.set.revision !== set.revision;
      set = read.set;
      if (changed) opts.onChange?.(set);
      return changed;
    } catch (err) {
      opts.onError?.(`imported advisories not read: ${(err as Error).message} (tried again later)`);
      return false;
    }
  };
  const check = (): Promise<boolean> => (running ??= load().finally(() => (running = undefined)));
  await check();
  const timer = setInterval(() => void check(), opts.every ?? ADVISORY_POLL_MS);
  timer.unref();
  return { current: () => set, check, stop: () => clearInterval(timer) };
}

/** One read, for commands (warm, export) that decide once: the stored set, or an error naming the document. */
export async function loadAdvisories(store: StateStore): Promise<AdvisorySet> {
  const read = await readAdvisories(store);
  if (read.state === 'corrupt') throw new NuproxyError('CONFIG_INVALID', `${ADVISORIES_KEY} cannot be read: ${read.error}`);
  return read.set;
}


