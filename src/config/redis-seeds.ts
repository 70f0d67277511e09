/**
 * The Redis Cluster form of `cache.metadata`: `redis+cluster://[user:password@]host1:port1,host2:port2,...`
 * (`rediss+cluster://` for TLS). Each host:port is a seed: the client asks any of them for the cluster's
 * layout and finds the other nodes itself, so a few seeds are enough. Auth, as in a redis:// URL, applies to
 * every node. Returns one redis:// URL per seed, or undefined when `url` is not of the cluster form.
 */
export function clusterSeeds(url: string): string[] | undefined {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/\s]*)@)?([^@/\s]+?)\/?$/.exec(url);
  if (!m) return undefined;
  const [, scheme, auth, hosts] = m;
  const seeds = hostPorts(hosts!);
  return seeds?.map((seed) => `${scheme}://${auth !== undefined ? `${auth}@` : ''}${seed}`);
}

/** Where a Redis run by Sentinel is found, as `sentinelTarget` reads it from `cache.metadata`. */
export interface SentinelTarget {
  kind: 'sentinel';
  /** The master's name, as the sentinels monitor it (`sentinel monitor <name> ...`). */
  masterName: string;
  sentinels: { host: string; port: number }[];
  tls: boolean;
  /** Auth on the master and its replicas (the URL's user:password). */
  username?: string;
  password?: string;
  /** Auth on the sentinels themselves, when they have a requirepass of their own (`?sentinelPassword=`). */
  sentinelUsername?: string;
  sentinelPassword?: string;
}

/**
 * The Redis Sentinel form of `cache.metadata`:
 * `redis+sentinel://[user:password@]host1:port1,host2:port2/<masterName>[?sentinelUsername=u&sentinelPassword=p]`
 * (`rediss+sentinel://` for TLS). Each host:port is a sentinel (a port on each: sentinels listen on 26379, not
 * 6379); the client asks them where the master is and follows the master when they promote a replica. The
 * user:password apply to the Redis nodes; sentinelPassword (and sentinelUsername) to the sentinels, when they
 * are protected too. Undefined when `url` is not of this form (the config names the form in its error).
 */
export function sentinelTarget(url: string): SentinelTarget | undefined {
  const m = /^(rediss?)\+sentinel:\/\/(?:([^@/\s]*)@)?([^@/\s]+)\/([A-Za-z0-9._:-]+)(?:\?([^\s#]*))?$/.exec(url);
  if (!m) return undefined;
  const [, scheme, auth, hosts, masterName, query] = m;
  const nodes = hostPorts(hosts!);
  if (!nodes) return undefined;
  const target: SentinelTarget = {
    kind: 'sentinel',
    masterName: masterName!,
    sentinels: nodes.map((n) => {
      const at = n.lastIndexOf(':');
      return { host: n.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(n.slice(at + 1)) };
    }),
    tls: scheme === 'rediss',
  };
  try {
    if (auth !== undefined) {
      const colon = auth.indexOf(':');
      const user = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon));
      if (user) target.username = user;
      if (colon >= 0) target.password = decodeURIComponent(auth.slice(colon + 1));
    }
    for (const [key, value] of new URLSearchParams(query ?? '')) {
      // only these two: a typo (sentinelPasword) must be an error, not auth silently left off
      if (key === 'sentinelPassword' && value) target.sentinelPassword = value;
      else if (key === 'sentinelUsername' && value) target.sentinelUsername = value;
      else return undefined;
    }
  } catch {
    return undefined; // a malformed %-escape
  }
  return target;
}

/** `h1:p1,h2:p2` as a list, or undefined when any entry is not host:port (port 1-65535, required). */
function hostPorts(list: string): string[] | undefined {
  const out: string[] = [];
  for (const raw of list.split(',')) {
    const node = raw.trim();
    // a port is required: cluster nodes and sentinels seldom listen on 6379, and a node without one is likely a typo
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(node)) return undefined;
    const port = Number(node.slice(node.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) return undefined;
    out.push(node);
  }
  return out.length > 0 ? out : undefined;
}

/** What RedisLink takes, from `cache.metadata` (not "memory"): one URL, the cluster's seed URLs, or a Sentinel target. */
export type RedisTarget = string | readonly string[] | SentinelTarget;

export function redisTarget(url: string): RedisTarget {
  return clusterSeeds(url) ?? sentinelTarget(url) ?? url;
}
