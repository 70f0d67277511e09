// The load both Redis failover tests (Cluster, Sentinel) put on two nuproxy instances while a master dies: random
// version lists, registration indexes and packages of ids that all have version 1.0.0, each answer checked, every
// failure kept. `untilUp` keeps the load going until each instance reports its metadata store "up" again.
import type { Agent } from 'undici';
import { get } from './http.js';
import type { TestProxy } from './proxy.js';

export interface FailoverLoad {
  failures: string[];
  /** Requests sent so far, and when the last one started. */
  readonly sent: number;
  readonly lastAt: number;
  /** Runs `workers` loops until `ms` from now (or the request bound). */
  run(ms: number): Promise<void>;
  /** Keeps requests coming until every instance is "up" (true each) or `ms` passes (false). */
  untilUp(ms: number): Promise<boolean[]>;
  /** Ends any loop at its next request. */
  stop(): void;
}

export function failoverLoad(proxies: TestProxy[], ids: readonly string[], packages: Map<string, Buffer>, agent: Agent, opts: { workers: number; maxRequests: number }): FailoverLoad {
  const failures: string[] = [];
  let sent = 0;
  let lastAt = 0;
  let stopAt = 0;
  const one = async (): Promise<void> => {
    const id = ids[Math.floor(Math.random() * ids.length)]!.toLowerCase();
    const proxy = proxies[sent % proxies.length]!;
    const kind = sent++ % 3;
    lastAt = Date.now();
    const path = kind === 0 ? `v3/flat/${id}/index.json` : kind === 1 ? `v3/registration/semver2/${id}/index.json` : `v3/flat/${id}/1.0.0/${id}.1.0.0.nupkg`;
    try {
      const r = await get(`${proxy.url}${path}`, {}, 'GET', agent);
      if (r.status !== 200) failures.push(`${path}: ${r.status} ${r.text.slice(0, 200)}`);
      else if (kind === 0 && JSON.stringify(r.json()) !== '{"versions":["1.0.0"]}') failures.push(`${path}: ${r.text.slice(0, 200)}`);
      else if (kind === 2 && !r.body.equals(packages.get(id)!)) failures.push(`${path}: other bytes`);
    } catch (err) {
      failures.push(`${path}: ${(err as Error).message}`);
    }
  };
  return {
    failures,
    get sent() {
      return sent;
    },
    get lastAt() {
      return lastAt;
    },
    async run(ms) {
      stopAt = Date.now() + ms;
      await Promise.all(
        Array.from({ length: opts.workers }, async () => {
          while (Date.now() < stopAt && sent < opts.maxRequests) await one();
        }),
      );
    },
    untilUp(ms) {
      stopAt = Date.now() + ms;
      return Promise.all(
        proxies.map(async (p) => {
          while (Date.now() < stopAt) {
            await one();
            const ready = (await get(`${p.url}health/ready`)).json() as { metadataStore: { state: string } };
            if (ready.metadataStore.state === 'up') return true;
            await new Promise((r) => setTimeout(r, 100));
          }
          return false;
        }),
      );
    },
    stop() {
      stopAt = 0;
    },
  };
}
