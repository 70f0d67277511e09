import { createClient, RESP_TYPES } from '@redis/client';
import type { Logger } from '../log.js';

/**
 * One Redis connection (plus a subscriber) shared by the metadata store, the package tier and invalidation
 * messages. Redis trouble never becomes client trouble: every call is bounded by `timeoutMs` and a failed or
 * slow call gives its fallback (a miss, a no-op). Commands fail at once while disconnected (no offline queue),
 * the client reconnects on its own, and the state is logged once per change, not per request.
 */
export class RedisLink {
  readonly client: ReturnType<typeof createClient>;
  /** The same connection, answering bulk strings as Buffers (package bytes). */
  readonly binary: ReturnType<ReturnType<typeof createClient>['withTypeMapping']>;
  private readonly subscriber: ReturnType<typeof createClient>;
  private state: 'up' | 'down' = 'up';
  private detail: string | undefined;
  private closed = false;
  private everReady = false;
  private readonly firstReady: Promise<void>;
  private resolveFirstReady!: () => void;
  /**
   * A Redis that hangs (connected, never answering) would cost every call the whole timeout, several per
   * request. After a call times out on a ready connection, calls fail at once until `hungUntil`; then one call
   * probes (the others still fail at once), and backs off again (doubling, at most 2 s) if it times out too.
   */
  private hungUntil = 0;
  private hungStreak = 0;
  private probing = false;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {
    const options = {
      url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(timeoutMs, 1000),
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000),
      },
    };
    this.client = createClient(options);
    this.subscriber = createClient(options);
    this.binary = this.client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    this.firstReady = new Promise((r) => (this.resolveFirstReady = r));
    this.client.on('ready', () => {
      this.everReady = true;
      this.resolveFirstReady();
    });
    for (const c of [this.client, this.subscriber]) {
      c.on('error', (err: Error) => this.mark('down', err));
      c.on('ready', () => this.mark('up'));
    }
  }

  /** Starts connecting; never throws (a Redis that is down at start-up is "down", not a start-up failure). */
  connect(): void {
    for (const c of [this.client, this.subscriber]) c.connect().catch((err: unknown) => this.mark('down', err));
  }

  mark(next: 'up' | 'down', err?: unknown): void {
    if (this.closed) return;
    if (next === 'down') this.detail = err instanceof Error ? err.message : String(err ?? 'unavailable');
    // "up" means both connections are ready: the two reconnect on their own schedules, and the first one back (or
    // a command answered on it) must not announce a recovery the other undoes a moment later (down/up/down/up).
    else if (!(this.client.isReady && this.subscriber.isReady)) return;
    if (next === this.state) return;
    this.state = next;
    if (next === 'down') this.log.warn({ store: 'redis', err: this.detail }, 'metadata store unavailable (redis); serving from memory, disk and the upstreams');
    else {
      this.detail = undefined;
      this.log.info({ store: 'redis' }, 'metadata store available again (redis)');
    }
  }

  /** Runs one Redis operation with the time bound; its fallback when Redis is slow or down. */
  async bounded<T>(op: () => Promise<T>, fallback: T): Promise<T> {
    if (!this.client.isReady && this.everReady) {
      // disconnected: fail fast instead of waiting for the timeout on every request
      this.mark('down', new Error('not connected'));
      return fallback;
    }
    let probe = false;
    if (this.hungUntil > 0) {
      if (this.probing || Date.now() < this.hungUntil) return fallback; // hung: fail fast
      this.probing = probe = true;
    }
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      const result = await Promise.race([
        // still starting up: wait (within the bound) for the first connection
        (this.everReady ? Promise.resolve() : this.firstReady).then(op),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            reject(new Error(`redis did not answer within ${this.timeoutMs} ms`));
          }, this.timeoutMs);
        }),
      ]);
      this.hungUntil = 0;
      this.hungStreak = 0;
      this.mark('up');
      return result;
    } catch (err) {
      if (timedOut && this.client.isReady && (probe || this.hungUntil === 0)) {
        this.hungStreak++;
        this.hungUntil = Date.now() + Math.min(this.timeoutMs * 2 ** (this.hungStreak - 1), 2_000);
      }
      this.mark('down', err);
      return fallback;
    } finally {
      clearTimeout(timer);
      if (probe) this.probing = false;
    }
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    try {
      await this.subscriber.subscribe(channel, (message: string) => onMessage(message));
    } catch (err) {
      this.mark('down', err);
    }
  }

  publish(channel: string, message: string): Promise<void> {
    return this.bounded(async () => void (await this.client.publish(channel, message)), undefined);
  }

  health(): { state: 'up' | 'down'; detail?: string } {
    return this.detail ? { state: this.state, detail: this.detail } : { state: this.state };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [this.client, this.subscriber].map(async (c) => {
        try {
          // quit() waits for the server; while disconnected it would wait for a reconnect that may never come
          if (c.isReady) await c.quit();
          else if (c.isOpen) c.destroy();
        } catch {
          if (c.isOpen) c.destroy();
        }
      }),
    );
  }
}
