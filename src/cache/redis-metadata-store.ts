import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import type { Logger } from '../log.js';
import type { MetadataEntry, MetadataStore } from './metadata-store.js';
import { RedisLink } from './redis-link.js';
import type { SentinelTarget } from './redis-sentinel.js';

const NAMESPACE = 'nuproxy:meta';

/**
 * Redis through keyv/@keyv/redis, on a RedisLink (given, or made from a URL, cluster seeds or a Sentinel target
 * and owned). keyv takes the cluster (Sentinel) client as it takes a single one (get/set/delete are single-key).
 * Every call is bounded by the link's timeout: a failed or slow call is a miss (get) or a no-op (set/delete),
 * never a failed request.
 */
export function createRedisMetadataStore(target: string | readonly string[] | SentinelTarget | RedisLink, timeoutMs: number, logger: Logger): MetadataStore {
  const owned = !(target instanceof RedisLink);
  const link = target instanceof RedisLink ? target : new RedisLink(target, timeoutMs, logger);
  if (owned) link.connect();
  const redis = new KeyvRedis(link.client as never, { throwOnConnectError: false, throwOnErrors: true, connectionTimeout: Math.max(timeoutMs, 1000) });
  // throwOnErrors on Keyv itself too: otherwise Keyv swallows the adapter's error and answers undefined/false, which
  // `bounded` would take for a healthy answer (the state flapped down/up on every call while Redis was down).
  const keyv = new Keyv<MetadataEntry>({ store: redis, namespace: NAMESPACE, useKeyPrefix: false, throwOnErrors: true });
  keyv.on('error', (err: unknown) => link.mark('down', err));
  return {
    kind: 'redis',
    get: (key) => link.bounded(() => keyv.get(key), undefined),
    set: (key, entry, ttlMs) => link.bounded(async () => void (await keyv.set(key, entry, ttlMs)), undefined),
    delete: (key) => link.bounded(async () => void (await keyv.delete(key)), undefined),
    health: () => link.health(),
    close: async () => {
      if (owned) await link.close();
    },
  };
}

