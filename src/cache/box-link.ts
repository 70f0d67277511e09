/**
 * Coordination between the worker processes of one nuproxy (config `workers`): they share the listening socket
 * and the disk cache, and the primary process keeps the few things they must agree on. A fetch lock per
 * package (concurrent misses on several workers make one upstream request; the others wait and read the file
 * the holder stored) and a broadcast (cached answers dropped after a push reach every worker).
 *
 * The channel is node:cluster's IPC (process.send / worker.send); this module only sees `send` and `onMessage`.
 */

/** Messages between a worker and the primary. Tagged so that other IPC traffic is left alone. */
type ToPrimary =
  | { nuproxyBox: 1; op: 'lock'; rid: number; key: string; ttlMs: number }
  | { nuproxyBox: 1; op: 'unlock'; key: string }
  | { nuproxyBox: 1; op: 'wait'; rid: number; key: string }
  | { nuproxyBox: 1; op: 'publish'; payload: unknown };
type ToWorker = { nuproxyBox: 1; op: 'reply'; rid: number; ok: boolean } | { nuproxyBox: 1; op: 'message'; payload: unknown };

export interface BoxChannel {
  send(msg: unknown): void;
  onMessage(handler: (msg: unknown) => void): void;
}

function isBoxMessage(msg: unknown): msg is { nuproxyBox: 1; op: string } {
  return typeof msg === 'object' && msg !== null && (msg as { nuproxyBox?: unknown }).nuproxyBox === 1;
}

/** How long a worker waits for the primary's answer to a lock request before fetching on its own. */
const REPLY_TIMEOUT_MS = 5000;

/** The worker's side. */
export class BoxLink {
  private nextId = 1;
  private readonly pending = new Map<number, (ok: boolean) => void>();
  private readonly handlers: ((payload: unknown) => void)[] = [];

  constructor(private readonly channel: BoxChannel) {
    channel.onMessage((msg) => {
      if (!isBoxMessage(msg)) return;
      const m = msg as ToWorker;
      if (m.op === 'reply') {
        const done = this.pending.get(m.rid);
        this.pending.delete(m.rid);
        done?.(m.ok);
      } else if (m.op === 'message') {
        for (const h of this.handlers) h(m.payload);
      }
    });
  }

  private ask(msg: { op: 'lock'; key: string; ttlMs: number } | { op: 'wait'; key: string }, timeoutMs: number, onTimeout: boolean): Promise<boolean> {
    const rid = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        resolve(onTimeout);
      }, timeoutMs);
      timer.unref();
      this.pending.set(rid, (ok) => {
        clearTimeout(timer);
        resolve(ok);
      });
      this.channel.send({ nuproxyBox: 1, rid, ...msg });
    });
  }

  /**
   * Tries to become the worker that fetches `key`. Returns a release function, or undefined while another
   * worker holds the lock. Without an answer from the primary the lock counts as granted (fetching twice beats
   * waiting forever).
   */
  async lock(key: string, ttlMs: number): Promise<(() => void) | undefined> {
    const ok = await this.ask({ op: 'lock', key, ttlMs }, REPLY_TIMEOUT_MS, true);
    if (!ok) return undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.channel.send({ nuproxyBox: 1, op: 'unlock', key });
    };
  }

  /** Resolves when nobody holds the lock on `key` (at once if nobody does), or after `timeoutMs`. */
  async waitUnlocked(key: string, timeoutMs: number): Promise<void> {
    await this.ask({ op: 'wait', key }, timeoutMs, false);
  }

  /** Sends `payload` to every other worker. */
  publish(payload: unknown): void {
    this.channel.send({ nuproxyBox: 1, op: 'publish', payload });
  }

  subscribe(handler: (payload: unknown) => void): void {
    this.handlers.push(handler);
  }
}

interface Lock {
  holder: number;
  timer: NodeJS.Timeout;
}

/** The primary's side: holds the locks, answers waits, relays broadcasts. */
export class BoxBroker {
  private readonly workers = new Map<number, (msg: ToWorker) => void>();
  private readonly locks = new Map<string, Lock>();
  private readonly waiters = new Map<string, { worker: number; rid: number }[]>();

  /** A new worker: `send` reaches it; call `detach` when it exits (its locks are released). */
  attach(id: number, send: (msg: unknown) => void): { onMessage: (msg: unknown) => void; detach: () => void } {
    this.workers.set(id, send);
    return {
      onMessage: (msg) => {
        if (isBoxMessage(msg)) this.handle(id, msg as ToPrimary);
      },
      detach: () => {
        this.workers.delete(id);
        for (const [key, lock] of [...this.locks]) {
          if (lock.holder !== id) continue;
          // whoever follows that worker's download learns it will not finish
          for (const send of this.workers.values()) send({ nuproxyBox: 1, op: 'message', payload: { kind: 'holder-gone', key } });
          this.unlock(key);
        }
        for (const [key, list] of this.waiters) this.waiters.set(key, list.filter((w) => w.worker !== id));
      },
    };
  }

  private reply(worker: number, rid: number, ok: boolean): void {
    this.workers.get(worker)?.({ nuproxyBox: 1, op: 'reply', rid, ok });
  }

  private unlock(key: string): void {
    const lock = this.locks.get(key);
    if (lock) clearTimeout(lock.timer);
    this.locks.delete(key);
    const list = this.waiters.get(key) ?? [];
    this.waiters.delete(key);
    for (const w of list) this.reply(w.worker, w.rid, true);
  }

  private handle(from: number, m: ToPrimary): void {
    switch (m.op) {
      case 'lock': {
        if (this.locks.has(m.key)) return this.reply(from, m.rid, false);
        // the lock expires on its own: a worker stuck in a download never blocks the others for good
        const timer = setTimeout(() => this.unlock(m.key), m.ttlMs);
        timer.unref();
        this.locks.set(m.key, { holder: from, timer });
        return this.reply(from, m.rid, true);
      }
      case 'unlock':
        if (this.locks.get(m.key)?.holder === from) this.unlock(m.key);
        return;
      case 'wait': {
        if (!this.locks.has(m.key)) return this.reply(from, m.rid, true);
        const list = this.waiters.get(m.key) ?? [];
        list.push({ worker: from, rid: m.rid });
        this.waiters.set(m.key, list);
        return;
      }
      case 'publish':
        for (const [id, send] of this.workers) if (id !== from) send({ nuproxyBox: 1, op: 'message', payload: m.payload });
        return;
    }
  }
}
