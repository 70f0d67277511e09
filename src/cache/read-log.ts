/**
 * The keys a blob store served since they were last taken (BlobStore.takeReads): what eviction (#14) needs to
 * know is in use. One Set insert per read; until something takes them, at most one key per blob served.
 */
export class ReadLog {
  private keys = new Set<string>();

  add(key: string): void {
    this.keys.add(key);
  }

  /** The keys noted so far, each once; the log starts empty again. */
  take(): string[] {
    const taken = [...this.keys];
    this.keys = new Set();
    return taken;
  }
}
