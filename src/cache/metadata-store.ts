/**
 * A metadata document as the cache keeps it: the body (already rewritten to proxy-relative form by the feed),
 * the upstream validators for revalidation, and when it was fetched. Keys are opaque strings to this layer.
 */
export interface MetadataEntry {
  body: string;
  fetchedAt: number; // epoch ms of the last successful fetch or revalidation
  etag?: string;
  lastModified?: string;
  gzip?: boolean; // the upstream served it gzip-encoded (registration hives): serve it the same way
  upstream?: string; // name of the upstream that answered
  links?: Record<string, string>; // where related documents live upstream (opaque to the cache)
  absent?: boolean; // the upstream answered 404: remembered briefly as "not there"
}

export interface MetadataStore {
  readonly kind: string;
  get(key: string): Promise<MetadataEntry | undefined>;
  /** ttlMs bounds how long the entry may be kept at all (freshness plus the stale-serving window). */
  set(key: string, entry: MetadataEntry, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Tells other instances (or workers) sharing the store that a key changed: they drop their memory copies,
   * or take `value` when it is given (stores that share nothing else need it).
   */
  changed?(key: string, value?: { entry: MetadataEntry; ttlMs: number }): Promise<void>;
  /**
   * Called with a key another instance or worker changed or dropped (its announcement arrived): holders of
   * answers built from that key drop them.
   */
  onRemoteChange?(listener: (key: string) => void): void;
  /** "up" when the backing store answers; memory is always up. */
  health(): { state: 'up' | 'down'; detail?: string };
  close(): Promise<void>;
}
