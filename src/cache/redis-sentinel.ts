import { createClient, createSentinel, RESP_TYPES, type RedisSentinelType } from '@redis/client';

/**
 * Where a Redis run by Sentinel is found (config/redis-seeds.ts reads it from `cache.metadata`; the same shape
 * is declared there, since cache/ does not import config/).
 */
export interface SentinelTarget {
  kind: 'sentinel';
  masterName: string;
  sentinels: { host: string; port: number }[];
  tls: boolean;
  username?: string;
  password?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

export type RedisSentinel = RedisSentinelType;

/** How long a node connection keeps reconnecting before it gives up and lets the sentinel client ask again. */
const NODE_RECONNECTS = 3;

/**
 * @redis/client's Sentinel client, set up for RedisLink. Besides reserveClient (below), two things of the 5.x
 * client need care:
 *
 * - A master connection that reconnects for ever blocks the client's rediscovery: when a command finds the
 *   master down, the client asks a sentinel, is told the old master (not yet marked down) and opens a new
 *   connection to it, waiting for that connection before it looks again; the switch-master message that
 *   follows waits behind it. So node connections give up after a few attempts, and the client asks again.
 * - Its pub/sub (a proxy connection to the master) loses every subscription when that connection has given up
 *   before the master changes (it then throws destroying it): SentinelSubscriber below is used instead.
 * - `withTypeMapping` on the Sentinel client sets the mapping on the client itself (every view shares one
 *   `_self`): the binary view is a child object with its own `commandOptions`, which is what its commands read.
 */
export function openSentinel(target: SentinelTarget, socket: { connectTimeout: number }): { sentinel: RedisSentinel; binary: RedisSentinel } {
  const tls = target.tls ? { tls: true as const } : {};
  const sentinel = createSentinel({
    name: target.masterName,
    sentinelRootNodes: target.sentinels,
    // a command is retried this often on a topology change (READONLY, master gone); RedisLink's time bound
    // ends the wait anyway, so more retries would only be work nobody waits for. Also bounds the attempts of
    // the first connection (it then fails, and RedisLink starts it again).
    maxCommandRediscovers: 3,
    passthroughClientErrorEvents: true,
    // one master connection for every command: without it, commands that start in the same tick as the first
    // one wait for a lease on the pool until no command is in flight (under steady load: until they time out)
    reserveClient: true,
    nodeClientOptions: {
      disableOfflineQueue: true,
      socket: { ...socket, ...tls, reconnectStrategy: (retries: number, cause: Error) => (retries < NODE_RECONNECTS ? 100 * 2 ** retries : cause) },
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
    },
    sentinelClientOptions: {
      socket: { ...socket, ...tls },
      ...(target.sentinelUsername ? { username: target.sentinelUsername } : {}),
      ...(target.sentinelPassword ? { password: target.sentinelPassword } : {}),
    },
  });
  const binary = Object.create(sentinel, { commandOptions: { value: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } } }) as RedisSentinel;
  return { sentinel, binary };
}

/** Whether the Sentinel client has a master connection that is ready (after a failover: to the new master). */
export function sentinelReady(sentinel: RedisSentinel): boolean {
  return sentinel.isReady && sentinel.getMasterNode() !== undefined;
}

type Socket = { connectTimeout: number; reconnectStrategy: (retries: number) => number };

function nodeClient(target: SentinelTarget, socket: Socket, node: { host: string; port: number }) {
  return createClient({
    socket: { ...socket, host: node.host, port: node.port, ...(target.tls ? { tls: true as const } : {}) },
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
  });
}

/**
 * SUBSCRIBE on the master the Sentinel client follows: a connection of its own, replaced (and its channels
 * subscribed again) whenever the client moves to another master; it reconnects on its own meanwhile.
 */
export class SentinelSubscriber {
  private client: ReturnType<typeof nodeClient> | undefined;
  private node: string | undefined;
  private readonly channels = new Map<string, (message: string) => void>();
  private closed = false;

  constructor(
    private readonly sentinel: RedisSentinel,
    private readonly target: SentinelTarget,
    private readonly socket: Socket,
    private readonly onError: (err: unknown) => void,
    private readonly onReady: () => void,
  ) {
    sentinel.on('topology-change', (event: { type: string; node?: { host: string; port: number } }) => {
      if (event.type === 'MASTER_CHANGE' && event.node) this.follow(event.node);
    });
  }

  get isReady(): boolean {
    return this.client?.isReady === true;
  }

  /** The master the Sentinel client moved to (a restart of the same node opens a new connection, too). */
  private follow(node: { host: string; port: number }): void {
    if (this.closed) return;
    const key = `${node.host}:${node.port}`;
    if (key === this.node && this.client?.isOpen) return;
    this.drop();
    this.node = key;
    const c = nodeClient(this.target, this.socket, node);
    this.client = c;
    c.on('error', this.onError);
    c.on('ready', this.onReady);
    c.connect().catch(this.onError);
    for (const [channel, listener] of this.channels) c.subscribe(channel, listener).catch(this.onError);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    this.channels.set(channel, listener);
    if (!this.client) {
      const master = this.sentinel.getMasterNode();
      if (master) this.follow(master);
      return; // follow() subscribes every channel, now or when the first master is known
    }
    await this.client.subscribe(channel, listener);
  }

  private drop(): void {
    const c = this.client;
    this.client = undefined;
    if (c?.isOpen) c.destroy();
  }

  close(): void {
    this.closed = true;
    this.drop();
  }
}
