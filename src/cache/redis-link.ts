import { createClient, createCluster, RESP_TYPES } from '@redis/client';
import type { Logger } from '../log.js';
import { awakeTimer } from './awake-timer.js';
import { openSentinel, SentinelSubscriber, sentinelReady, type RedisSentinel, type SentinelTarget } from './redis-sentinel.js';

/**
 * One Redis connection (plus a subscriber) shared by the metadata store, the package tier and invalidation
 * messages. Redis trouble never becomes client trouble: every call is bounded by `timeoutMs` and a failed or
 * slow call gives its fallback (a miss, a no-op). Commands fail at once while disconnected (no offline queue),
 * the client reconnects on its own, and the state is logged once per change, not per request.
 *
 * Given the seeds of a Redis Cluster instead of one URL, the same link runs on @redis/client's cluster client:
 * every key is routed to its slot's master, pub/sub goes through one node of the cluster (SUBSCRIBE and
 * PUBLISH are cluster-wide), and a node that fails is replaced by its promoted replica (see rediscoverSoon).
 * Given a Sentinel target, it runs on @redis/client's Sentinel client: the sentinels say which node is the
 * master, commands and pub/sub go to it, and when the sentinels promote a replica the client moves to it (its
 * switch-master message, or a command that finds the old master gone); redis-sentinel.ts has the details.
 *
 * Everything built on the link uses single-key commands only (a MULTI or EVAL touches one key), so the keys
 * stay byte-identical in both modes and no hash tags are needed.
 */
export class RedisLink {
  /**
   * The commands. In cluster (Sentinel) mode this is the cluster (Sentinel) client, typed as a single client:
   * the commands used on the link (GET/SET/DEL, HSET/HGETALL, PTTL, EVAL, MULTI on one key, PUBLISH) have the same signatures.
   */
  readonly client: ReturnType<typeof createClient>;
  /** The same connection, answering bulk strings as Buffers (package bytes). */
  readonly binary: ReturnType<ReturnType<typeof createClient>['withTypeMapping']>;
  /** Single mode: the second connection, for SUBSCRIBE (cluster mode: the cluster client's own pub/sub node). */
  private readonly subscriber: ReturnType<typeof createClient> | undefined;
  private readonly cluster: ReturnType<typeof createCluster> | undefined;
  private readonly sentinel: RedisSentinel | undefined;
  private readonly sentinelSubscriber: SentinelSubscriber | undefined;
  private readonly seeds: readonly string[] = [];
  private rediscovery: NodeJS.Timeout | undefined;
  private lastRediscovery = 0;
  private connectRetry: NodeJS.Timeout | undefined;
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

  /** `target`: a redis:// URL, the seeds of a Redis Cluster (one redis:// URL each, auth in each), or Sentinel's. */
  constructor(
    target: string | readonly string[] | SentinelTarget,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {
    const socket = {
      connectTimeout: Math.max(timeoutMs, 1000),
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000),
    };
    this.firstReady = new Promise((r) => (this.resolveFirstReady = r));
    if (typeof target === 'string') {
      const options = { url: target, disableOfflineQueue: true, socket };
      this.client = createClient(options);
      this.subscriber = createClient(options);
      this.client.on('ready', () => {
        this.everReady = true;
        this.resolveFirstReady();
      });
      for (const c of [this.client, this.subscriber]) {
        c.on('error', (err: Error) => this.mark('down', err));
        c.on('ready', () => this.mark('up'));
      }
    } else if ('kind' in target) {
      const opened = openSentinel(target, socket);
      this.sentinel = opened.sentinel;
      this.client = this.sentinel as unknown as ReturnType<typeof createClient>;
      this.binary = opened.binary as unknown as typeof this.binary;
      // a master (or sentinel) connection failing; the client finds the master again itself
      this.sentinel.on('error', (err: unknown) => this.mark('down', err));
      this.sentinel.on('topology-change', () => this.mark('up'));
      this.sentinelSubscriber = new SentinelSubscriber(this.sentinel, target, socket, (err) => this.mark('down', err), () => this.mark('up'));
      return;
    } else {
      this.seeds = target;
      const first = new URL(target[0]!);
      this.cluster = createCluster({
        rootNodes: target.map((url) => ({ url })),
        // every node the cluster client finds (not only the seeds) connects with these
        defaults: {
          disableOfflineQueue: true,
          socket: first.protocol === 'rediss:' ? { ...socket, tls: true as const } : socket,
          ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
          ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        },
      });
      this.client = this.cluster as unknown as ReturnType<typeof createClient>;
      this.cluster.on('error', (err: Error) => this.mark('down', err));
      this.cluster.on('node-error', (err: Error) => {
        this.mark('down', err);
        this.rediscoverSoon();
      });
      this.cluster.on('node-ready', () => this.mark('up'));
    }
    this.binary = this.client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  }

  /** Resolves at the first connection, or after `maxMs` (never rejects): start-up waits this long at most. */
  firstConnection(maxMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([this.firstReady, new Promise<void>((r) => (timer = setTimeout(r, maxMs)))]).finally(() => clearTimeout(timer));
  }

  /** Starts connecting; never throws (a Redis that is down at start-up is "down", not a start-up failure). */
  connect(): void {
    if (this.cluster || this.sentinel) return this.connectRetrying(0);
    for (const c of [this.client, this.subscriber!]) c.connect().catch((err: unknown) => this.mark('down', err));
  }

  /**
   * The cluster and Sentinel clients give up when no seed (sentinel) answers at start-up (a single client
   * retries): retry here. The Sentinel client must be reset (destroy) before it connects again.
   */
  private connectRetrying(attempt: number): void {
    const c = (this.cluster ?? this.sentinel)!;
    c.connect().then(
      () => {
        this.everReady = true;
        this.resolveFirstReady();
        this.mark('up');
      },
      async (err: unknown) => {
        this.mark('down', err);
        if (this.sentinel) await this.sentinel.destroy().catch(() => undefined);
        if (this.closed) return;
        this.connectRetry = setTimeout(() => this.connectRetrying(attempt + 1), Math.min(100 * 2 ** attempt, 2000));
        this.connectRetry.unref();
      },
    );
  }

  /**
   * Cluster mode: a node that stops answering is refreshed out of the client's slot map only on a MOVED reply,
   * which a dead node never sends; so while any node is failing, ask the cluster for its layout again (at most
   * twice a second) until every master is back or its replica has taken over.
   */
  private rediscoverSoon(): void {
    if (!this.cluster || this.rediscovery || this.closed || !this.everReady) return;
    this.rediscovery = setTimeout(async () => {
      this.lastRediscovery = Date.now();
      const live = this.cluster!.masters.find((m) => m.client?.isReady)?.client;
      const slots = (this.cluster as unknown as { _slots: { rediscover(start: { options?: unknown }): Promise<void> } })._slots;
      try {
        await slots.rediscover(live ?? { options: { url: this.seeds[Math.floor(Math.random() * this.seeds.length)] } });
      } catch (err) {
        this.mark('down', err);
      }
      this.rediscovery = undefined;
      if (!this.ready()) this.rediscoverSoon();
      else this.mark('up');
    }, Math.max(0, this.lastRediscovery + 500 - Date.now()));
    this.rediscovery.unref();
  }

  /** Whether every connection is ready: both in single mode; every master and the pub/sub node in cluster mode. */
  private ready(): boolean {
    if (this.sentinel) return this.everReady && sentinelReady(this.sentinel) && this.sentinelSubscriber!.isReady;
    if (!this.cluster) return this.client.isReady && this.subscriber!.isReady;
    if (!this.cluster.isOpen || !this.everReady || this.cluster.masters.length === 0) return false;
    const pubSub = this.cluster.pubSubNode;
    return this.cluster.masters.every((m) => m.client?.isReady === true) && (!pubSub || pubSub.client.isReady);
  }

  /** Whether commands can be sent at all (cluster: open; a command to a node that is down still fails at once). */
  private connected(): boolean {
    return (this.cluster ?? this.sentinel)?.isOpen ?? this.client.isReady;
  }

  mark(next: 'up' | 'down', err?: unknown): void {
    if (this.closed) return;
    if (next === 'down') this.detail = err instanceof Error ? err.message : String(err ?? 'unavailable');
    // "up" means both connections are ready: the two reconnect on their own schedules, and the first one back (or
    // a command answered on it) must not announce a recovery the other undoes a moment later (down/up/down/up).
    else if (!this.ready()) return;
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
    if (!this.connected() && this.everReady) {
      // disconnected: fail fast instead of waiting for the timeout on every request
      this.mark('down', new Error('not connected'));
      return fallback;
    }
    let probe = false;
    if (this.hungUntil > 0) {
      if (this.probing || Date.now() < this.hungUntil) return fallback; // hung: fail fast
      this.probing = probe = true;
    }
    let cancel: (() => void) | undefined;
    let timedOut = false;
    try {
      const result = await Promise.race([
        // still starting up: wait (within the bound) for the first connection
        (this.everReady ? Promise.resolve() : this.firstReady).then(op),
        new Promise<never>((_, reject) => {
          // a bound of listening time: a busy process is not a slow Redis (awake-timer.ts)
          cancel = awakeTimer(this.timeoutMs, () => {
            timedOut = true;
            reject(new Error(`redis did not answer within ${this.timeoutMs} ms`));
          });
        }),
      ]);
      this.hungUntil = 0;
      this.hungStreak = 0;
      this.mark('up');
      return result;
    } catch (err) {
      if (timedOut && this.connected() && (probe || this.hungUntil === 0)) {
        this.hungStreak++;
        this.hungUntil = Date.now() + Math.min(this.timeoutMs * 2 ** (this.hungStreak - 1), 2_000);
      }
      this.mark('down', err);
      this.rediscoverSoon();
      return fallback;
    } finally {
      cancel?.();
      if (probe) this.probing = false;
    }
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    try {
      if (this.cluster) {
        // the cluster client picks its pub/sub node among the nodes it found: not before the first connection
        await this.firstReady;
        await this.cluster.subscribe(channel, (message: string) => onMessage(message));
        return;
      }
      if (this.sentinel) {
        // on the master (known after the first connection), and again on the new one after a failover
        await this.firstReady;
        await this.sentinelSubscriber!.subscribe(channel, (message: string) => onMessage(message));
        return;
      }
      await this.subscriber!.subscribe(channel, (message: string) => onMessage(message));
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
    clearTimeout(this.rediscovery);
    clearTimeout(this.connectRetry);
    if (this.sentinel) {
      this.sentinelSubscriber!.close();
      // as for the cluster: close() on a master that is down would wait for its reconnects
      await (this.ready() ? this.sentinel.close() : this.sentinel.destroy()).catch(() => this.sentinel!.destroy());
      return;
    }
    if (this.cluster) {
      // close() waits for every node; one that is down would hold it for its reconnects
      if (this.ready()) await this.cluster.close().catch(() => this.cluster!.destroy());
      else if (this.cluster.isOpen) this.cluster.destroy();
      return;
    }
    await Promise.all(
      [this.client, this.subscriber!].map(async (c) => {
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
