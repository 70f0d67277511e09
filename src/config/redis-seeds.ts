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
  const seeds = hosts!.split(',').map((h) => h.trim());
  if (seeds.length === 0) return undefined;
  const out: string[] = [];
  for (const seed of seeds) {
    // a port is required: cluster nodes seldom listen on 6379 alone, and a seed without one is likely a typo
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(seed)) return undefined;
    const port = Number(seed.slice(seed.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) return undefined;
    out.push(`${scheme}://${auth !== undefined ? `${auth}@` : ''}${seed}`);
  }
  return out;
}
