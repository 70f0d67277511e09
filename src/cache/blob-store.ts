/**
 * The one storage interface for immutable blobs (packages, their nuspecs, vulnerability documents). It speaks
 * keys, streams and metadata, never file paths: a backend (the disk today, an object store next) keeps where
 * and how bytes live to itself, together with its fast paths. Every backend passes the contract suite in
 * test/contract/blob-store.contract.ts.
 *
 * Keys are "/"-separated relative names of safe segments (`packages/{id}/{version}/{file}`,
 * `vulnerabilities/...`; see feed/cache-keys.ts for what lives where). A key that is not one is refused with
 * BAD_REQUEST before the backend is touched.
 */
import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';

/** What is known about a stored blob, from the record written when it was committed. */
export interface BlobInfo {
  size: number;
  /** Base64 SHA-512 of the bytes, recorded at commit time (absent only for blobs an old version stored). */
  sha512?: string;
  /** Who supplied it: an upstream's name, `import` for a bundle, absent when unknown. */
  upstream?: string;
  /** When it was committed (ms since the epoch). */
  mtimeMs: number;
}

/** Random access to a complete body: the blob under check before its commit, or a stored one. */
export interface ByteReader {
  readonly size: number;
  /** Up to `length` bytes at `position` (fewer only at the end). */
  read(position: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Checks a writer runs on the complete body before it commits; any that throws refuses the blob. */
export interface CommitCheck {
  expectedLength?: number;
  /** Base64. */
  expectedSha512?: string;
  /**
   * Extra content check on the complete body (e.g. "is a zip whose nuspec names the package asked for").
   * `tail` holds the body's last bytes as the writer kept them (up to 22 + 65535: a zip's end record area).
   */
  verify?: (content: ByteReader, tail: Buffer) => Promise<void>;
  /** Called once every check has passed, before the blob becomes visible at its key. */
  onVerified?: () => void;
  /** Recorded with the blob: who supplied it. */
  upstream?: string;
}

/** Where a following reader takes its limit from (the writer's rule: the last byte only once verified). */
export interface FollowLimits {
  /** Bytes that may be read now. */
  limit: () => number;
  /** The limit is final. */
  finished: () => boolean;
  /** Aborts the reader with this error. */
  failed?: () => Error | undefined;
  /** Emits 'progress' whenever the limit may have moved. */
  events: EventEmitter;
}

/** A blob being written. Nothing is visible at its key until `commit` has passed every check. */
export interface BlobWriter {
  readonly key: string;
  /** Bytes written so far. */
  readonly written: number;
  /**
   * Appends bytes; they are readable through `follow` when this returns. `owned`: the caller made `chunk` a
   * copy of its own and never changes it (the writer may keep it without copying).
   */
  write(chunk: Uint8Array, owned?: boolean): void;
  /**
   * A reader of the bytes from `start`, following the writer up to a moving limit (and through the commit: a
   * reader opened after it reads the committed blob). Throws (synchronously) once the bytes are gone: the writer
   * was aborted or its commit failed; the caller then follows the outcome instead.
   */
  follow(start: number, limits: FollowLimits): Readable;
  /**
   * An opaque reference another process of this nuproxy on the same machine can follow with
   * `BlobStore.followShared` (the disk: the temp file); undefined when the backend cannot share.
   */
  readonly shareRef: string | undefined;
  /** Runs the checks on the complete body, then makes it visible at its key atomically. */
  commit(sha512: string, check?: CommitCheck): Promise<BlobInfo>;
  /** Drops everything written; nothing is left behind. */
  abort(): Promise<void>;
}

/** Minimal sink a stored blob is sent to (a Node ServerResponse is one). */
export type ByteSink = Pick<Writable, 'write' | 'end' | 'destroy' | 'once' | 'writableFinished'>;

/** Where a sender counts the bytes it has handed to the sink. */
export interface SendProgress {
  bytesSent: number;
}

export interface BlobStore {
  /** `disk`, `s3`, ... (health and logs). */
  readonly kind: string;
  /** Where it stores, for logs and the start-up line (a directory, a bucket URL): never a secret. */
  readonly location: string;
  /**
   * Every instance configured alike sees what one stores (an object store: true; a disk: false, unless the
   * operator shares the volume, which the store cannot know). The package path then holds its shared fetch lock
   * until a download of any size is stored, so the other instances read it instead of fetching it too.
   */
  readonly sharedAcrossInstances: boolean;
  /** Prepares the store; sweeps what a crashed writer of this host left behind unless `sweep` is false. */
  init(opts?: { sweep?: boolean }): Promise<{ swept: number }>;
  stat(key: string): Promise<BlobInfo | undefined>;
  /** The blob's bytes from `start` to `endInclusive` (default: all), or undefined when absent. */
  open(key: string, range?: { start: number; endInclusive: number }): Promise<Readable | undefined>;
  /** The whole blob in memory (small blobs: nuspecs, documents, packages of the memory tier). */
  read(key: string): Promise<Buffer | undefined>;
  /** Random access to a stored blob (nuspec extraction reads the zip directory, not the whole package). */
  reader(key: string): Promise<ByteReader | undefined>;
  /**
   * Sends bytes start..endInclusive of a stored blob to `sink` and ends it; a failed read destroys the sink
   * (the client sees a truncated body, never a wrong one), and a sink that closes early stops the reads. The
   * caller has written the response head. `info` is what `stat` gave for the key (the backend may keep what it
   * needs to find the bytes with it). The backend's fast path (the disk: file descriptors and reused buffers).
   */
  send(key: string, info: BlobInfo, sink: ByteSink, start: number, endInclusive: number, progress?: SendProgress): void;
  /** Names directly under a key prefix (blobs and deeper prefixes alike; empty when there is nothing there). */
  list(prefix: string): Promise<string[]>;
  /** A writer for `key`. An invalid key throws (synchronously, BAD_REQUEST) before anything is created. */
  createWriter(key: string): Promise<BlobWriter>;
  /** Stores a small blob whole (atomic like every write). */
  put(key: string, bytes: Uint8Array, opts?: { upstream?: string; check?: CommitCheck }): Promise<BlobInfo>;
  /**
   * Stores a blob from a stream (bundle import), with the same checks and atomicity as a download. Refuses
   * (CONFLICT) when a blob with other bytes is already at the key, unless `replace`; the same bytes again are
   * no change (the stored blob's info is returned).
   */
  import(key: string, body: AsyncIterable<Uint8Array>, check: CommitCheck & { replace?: boolean }): Promise<BlobInfo>;
  /** Removes a blob (and its record); false when there was none. */
  delete(key: string): Promise<boolean>;
  /**
   * A cheap "was read" signal for eviction (issue #14): the keys served since the last call, at most once
   * each, and the call clears them. Costs the serving path one Set insert.
   */
  takeReads(): string[];
  /**
   * Counts a read served from a copy outside the store (the package memory tier answers small packages without
   * asking the store), so takeReads sees every blob in use. A key the store was never asked about is still
   * noted (eviction skips what it no longer has).
   */
  noteRead(key: string): void;
  /**
   * Follows another process's writer on this machine (see BlobWriter.shareRef); undefined when the backend
   * cannot (then workers of one nuproxy coordinate through the lock alone). Throws (synchronously) when the
   * writer's bytes are no longer there (committed or failed): the caller then follows the outcome.
   */
  followShared?(ref: string, start: number, limits: FollowLimits): Readable;
  /**
   * A short-lived URL at which a client GETs the committed blob from the backend itself (redirect mode: an S3
   * presigned URL, valid `ttlSeconds`); undefined when the blob is absent or the backend cannot. It holds a
   * signature: never logged (log the key, or the URL without its query string).
   */
  presign?(key: string, ttlSeconds: number): Promise<string | undefined>;
}
