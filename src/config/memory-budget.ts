/**
 * `cache.memoryMaxMB`, the one bound of what a nuproxy process keeps in memory, divided among the caches that
 * hold it. Each share is a fixed part of the budget: the part it has of the default budget, which gives every
 * cache exactly the size it had before the budget was one number (so behaviour and benchmarks did not move).
 * A larger or smaller budget scales every share alike. Per process: with `workers`, each worker has its own.
 *
 * Caches bounded by a count of entries get a count derived from their byte share at a stated average entry
 * size (their entries are parsed objects, whose size is not known without walking them on every set).
 */

const MB = 1024 * 1024;
const KB = 1024;

/** A cache bounded by a count: its byte share and the count it gives at `avgEntryBytes`. */
export interface EntryShare {
  bytes: number;
  entries: number;
  avgEntryBytes: number;
}

/** The shares in bytes (entry-count caches: bytes and count), for the constructor of each cache. */
export interface MemoryShares {
  /** The metadata store in memory (cache/keyv-metadata-store.ts), or the memory copy in front of Redis. */
  metadataStore: number;
  /** Whole packages kept in memory for hits (feed/packages.ts `small`). */
  packageTier: number;
  /** Documents rendered for a public base, with their gzip form (http/render-cache.ts). */
  renderCache: number;
  /** Merged registrations by id (feed/feed.ts `built`). */
  registrations: EntryShare;
  /** Merged version lists by id (feed/feed.ts `mergedMemo`). */
  versionLists: EntryShare;
  /** Upstream documents kept parsed (feed/upstream-docs.ts `parsed`). */
  parsedDocs: EntryShare;
  /** Merged answers by id (feed/answer-memo.ts `maxIds`). */
  answers: EntryShare;
  /** Stat results of stored packages (cache/fs-blob-store.ts `infoCache`). */
  blobInfo: EntryShare;
  /** Which upstreams may serve an id, by id (protocol/id-rules.ts `memo`). */
  routings: EntryShare;
}

type ByteShare = 'metadataStore' | 'packageTier' | 'renderCache';
type CountShare = Exclude<keyof MemoryShares, ByteShare>;

/** Each cache's size within the default budget: what it was given before there was one budget. */
const AT_DEFAULT: Record<ByteShare, number> = {
  metadataStore: 128 * MB, // the old memoryMaxMB default, which bounded only this store
  packageTier: 128 * MB,
  renderCache: 64 * MB,
};
/** Entry-count caches: the count they had, and what an entry is taken to weigh (a guess, stated once). */
const COUNTS_AT_DEFAULT: Record<CountShare, { entries: number; avgEntryBytes: number }> = {
  registrations: { entries: 500, avgEntryBytes: 64 * KB }, // a merged index with its inlined leaves
  versionLists: { entries: 5000, avgEntryBytes: 2 * KB }, // a few dozen version strings
  parsedDocs: { entries: 2000, avgEntryBytes: 16 * KB }, // a version list, registration page or search answer
  answers: { entries: 20_000, avgEntryBytes: 1 * KB }, // an id's memo map; values mostly shared with the above
  blobInfo: { entries: 10_000, avgEntryBytes: 512 }, // a path, a size and a few fields
  routings: { entries: 10_000, avgEntryBytes: 320 }, // an id, the allowed upstreams and one decision each
};

/**
 * The default budget: the sum of the sizes above (419.7 MB) rounded up; the 0.3 MB left over is not given to
 * any cache (it scales with the budget too, so the shares never add up to more than the budget).
 */
export const DEFAULT_MEMORY_MB = 420;
/**
 * Below this the smallest caches hold too little to be worth having (at 16 MB: 19 merged registrations,
 * 380 package stats, a 4.9 MB metadata store).
 */
export const MIN_MEMORY_MB = 16;

/** The budget (in MB, as configured) divided among the caches; floors, so the shares never exceed it. */
export function divideMemory(memoryMaxMB: number): MemoryShares {
  if (!(memoryMaxMB >= MIN_MEMORY_MB)) throw new RangeError(`a memory budget of ${memoryMaxMB} MB is below the minimum of ${MIN_MEMORY_MB} MB`);
  const scale = memoryMaxMB / DEFAULT_MEMORY_MB;
  const bytes = (atDefault: number): number => Math.floor(atDefault * scale);
  const counted = (c: { entries: number; avgEntryBytes: number }): EntryShare => {
    const b = bytes(c.entries * c.avgEntryBytes);
    return { bytes: b, entries: Math.floor(b / c.avgEntryBytes), avgEntryBytes: c.avgEntryBytes };
  };
  return {
    metadataStore: bytes(AT_DEFAULT.metadataStore),
    packageTier: bytes(AT_DEFAULT.packageTier),
    renderCache: bytes(AT_DEFAULT.renderCache),
    registrations: counted(COUNTS_AT_DEFAULT.registrations),
    versionLists: counted(COUNTS_AT_DEFAULT.versionLists),
    parsedDocs: counted(COUNTS_AT_DEFAULT.parsedDocs),
    answers: counted(COUNTS_AT_DEFAULT.answers),
    blobInfo: counted(COUNTS_AT_DEFAULT.blobInfo),
    routings: counted(COUNTS_AT_DEFAULT.routings),
  };
}

/** What the shares add up to, in bytes (entry-count caches at their stated average). */
export function sharedBytes(s: MemoryShares): number {
  return Object.values(s).reduce((n: number, v: number | EntryShare) => n + (typeof v === 'number' ? v : v.entries * v.avgEntryBytes), 0);
}
