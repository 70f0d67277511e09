// What the composition root (app.ts) calls: the config's policy compiled with the stored advisories kept current.
// One call, so serve, warm and export build the same policy the same way.
import type { Config } from '../config/schema.js';
import { AdvisorySet } from './advisories.js';
import { ADVISORY_POLL_MS, loadAdvisories, watchAdvisories, type StateStore } from './advisory-store.js';
import { compilePolicy, upstreamOverrides, type CompiledPolicy } from './policy.js';

export interface PolicyHandle {
  policy: CompiledPolicy;
  /** Reads the stored advisories again now if their document changed (true: the set changed). */
  refresh(): Promise<boolean>;
  /** Stops watching the stored advisories (at shutdown). */
  stop(): void;
}

/** Whether some rule reads imported advisories (malicious, or vulnerable which counts imported ones too). */
export function readsAdvisories(config: Pick<Config, 'policy' | 'upstreams'>): boolean {
  const on = (p: { malicious?: boolean | undefined; vulnerable?: string | undefined }, base?: { malicious: boolean; vulnerable: string }) =>
    (p.malicious ?? base?.malicious) === true || (p.vulnerable ?? base?.vulnerable ?? 'off') !== 'off';
  return on(config.policy) || config.upstreams.some((u) => u.policy !== undefined && on(u.policy, config.policy));
}

/**
 * The policy of a config. `watch` (the server): the stored advisories are read now and their document's stat is
 * polled (every ADVISORY_POLL_MS), so an import applies without a restart; otherwise (commands) read once. When
 * no rule reads advisories, the store is not touched at all. `onError` gets a line for the log (a corrupt
 * document, a store that cannot be read); `onChange` the new set's size.
 */
export async function policyFromConfig(
  config: Pick<Config, 'policy' | 'upstreams'>,
  store: StateStore,
  opts: { watch?: boolean; every?: number; onError?: (message: string) => void; onChange?: (advisories: number) => void } = {},
): Promise<PolicyHandle> {
  const overrides = upstreamOverrides(config.upstreams);
  const fixed = (set: AdvisorySet): PolicyHandle => ({ policy: compilePolicy(config.policy, overrides, set), refresh: async () => false, stop: () => {} });
  if (!readsAdvisories(config)) return fixed(new AdvisorySet());
  if (!opts.watch) return fixed(await loadAdvisories(store));
  const watch = await watchAdvisories(store, {
    every: opts.every ?? ADVISORY_POLL_MS,
    ...(opts.onError ? { onError: opts.onError } : {}),
    ...(opts.onChange ? { onChange: (s: AdvisorySet) => opts.onChange!(s.size) } : {}),
  });
  return { policy: compilePolicy(config.policy, overrides, watch.current), refresh: () => watch.check(), stop: () => watch.stop() };
}
