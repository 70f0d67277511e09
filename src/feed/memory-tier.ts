import { LRUCache } from 'lru-cache';

/** Default byte bound of the memory tier (until the memory budget of config hands one in). */
export const MEMORY_TIER_BYTES = 128 * 1024 * 1024;
/** Files up to this size (most packages) are kept; larger ones are always sent from the store. */
export const MEMORY_TIER_FILE_BYTES = 2 * 1024 * 1024;

/**
 * Small package files kept in memory once read (LRU by bytes): a warm hit then costs no store call and one
 * socket write. The bytes are immutable like the files; a key is dropped only when its file is replaced (a
 * nuspec rewritten from its package) or the bound needs room.
 */
export class MemoryTier {
  private readonly files: LRUCache<string, Buffer>;

  constructor(opts: { maxBytes?: number; maxFileBytes?: number } = {}) {
    this.maxFileBytes = opts.maxFileBytes ?? MEMORY_TIER_FILE_BYTES;
    this.files = new LRUCache<string, Buffer>({ maxSize: opts.maxBytes ?? MEMORY_TIER_BYTES, sizeCalculation: (b) => b.length || 1 });
  }

  /** The largest file kept. */
  readonly maxFileBytes: number;

  get(key: string): Buffer | undefined {
    return this.files.get(key);
  }

  /** Whether a file of `size` bytes belongs here (worth reading into memory on a hit). */
  fits(size: number): boolean {
    return size <= this.maxFileBytes;
  }

  set(key: string, bytes: Buffer): void {
    if (bytes.length <= this.maxFileBytes) this.files.set(key, bytes);
  }

  delete(key: string): void {
    this.files.delete(key);
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.files.calculatedSize;
  }
}
