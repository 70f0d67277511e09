// Eviction with `workers: N` (issue #14): one worker evicts (the one holding the box lock "evictor"; another
// takes over when it dies, as its locks are released), the others send it the keys they served and drop what
// they hold of the packages it evicted. Alone, the process simply runs its evictor.
import type { BlobStore } from '../cache/blob-store.js';
import type { BoxLink } from '../cache/box-link.js';
import type { Logger } from '../log.js';
import { packageKey } from './cache-keys.js';
import { READS_EVERY_MS, type Evictor } from './evictor.js';
import type { PackageFiles } from './packages.js';

type EvictMessage =
  | { kind: 'evict-reads'; keys: string[] }
  | { kind: 'evict-stored'; key: string; size: number; mtimeMs: number }
  | { kind: 'evicted'; refs: string[] };

const LEADER_LOCK = 'nuproxy:evictor';
/** The lock outlives any sane run of a worker (setTimeout's limit); a dead holder's lock goes at once. */
const LEADER_TTL_MS = 2 ** 31 - 1;
/** Most keys in one message (a worker's batch of reads is split beyond it). */
const MAX_KEYS = 5_000;

export interface RunningEviction {
  stop(): Promise<void>;
}

export function runEviction(evictor: Evictor, blobs: BlobStore, packages: PackageFiles, log: Logger, everyMs: number, box?: BoxLink): RunningEviction {
  if (!box) {
    void evictor.start().catch((err: Error) => log.error({ err: err.message }, 'eviction could not start'));
    return { stop: () => evictor.stop() };
  }
  let leader = false;
  let stopped = false;
  box.subscribe((payload) => {
    const m = payload as EvictMessage | undefined;
    if (m?.kind === 'evict-reads' && leader && Array.isArray(m.keys)) evictor.noteReads(m.keys.filter((k) => typeof k === 'string').slice(0, MAX_KEYS));
    else if (m?.kind === 'evict-stored' && leader && typeof m.key === 'string' && Number.isSafeInteger(m.size) && m.size >= 0 && Number.isFinite(m.mtimeMs)) evictor.noteStored(m.key, m.size, m.mtimeMs);
    else if (m?.kind === 'evicted' && !leader && Array.isArray(m.refs)) {
      for (const ref of m.refs) {
        const [lowerId, lowerVersion] = typeof ref === 'string' ? ref.split('/') : [];
        if (!lowerId || !lowerVersion || packages.isBusy(lowerId, lowerVersion)) continue;
        packages.forgetPackage(lowerId, lowerVersion);
        // the files are gone: deleting again only clears this worker's stat cache (a version list built from
        // the store stops listing the package here too)
        for (const file of ['nupkg', 'nuspec'] as const) void blobs.delete(packageKey(lowerId, lowerVersion, file)).catch(() => undefined);
      }
    }
  });
  // the other workers' commits move the evicting worker's running total (it replaces this hook once it leads)
  packages.onStored = (key, info) => {
    if (!leader) box.publish({ kind: 'evict-stored', key, size: info.size, mtimeMs: info.mtimeMs } satisfies EvictMessage);
  };
  const sendReads = setInterval(() => {
    if (leader) return;
    const keys = blobs.takeReads();
    for (let i = 0; i < keys.length; i += MAX_KEYS) box.publish({ kind: 'evict-reads', keys: keys.slice(i, i + MAX_KEYS) } satisfies EvictMessage);
  }, READS_EVERY_MS);
  sendReads.unref();
  const tryLead = async (): Promise<void> => {
    if (leader || stopped) return;
    const release = await box.lock(LEADER_LOCK, LEADER_TTL_MS);
    if (!release || stopped) return release?.();
    leader = true;
    clearInterval(retry);
    evictor.announce = (refs) => box.publish({ kind: 'evicted', refs } satisfies EvictMessage);
    log.info('this worker runs eviction');
    await evictor.start().catch((err: Error) => log.error({ err: err.message }, 'eviction could not start'));
  };
  const retry = setInterval(() => void tryLead(), everyMs);
  retry.unref();
  void tryLead();
  return {
    stop: async () => {
      stopped = true;
      packages.onStored = undefined;
      clearInterval(retry);
      clearInterval(sendReads);
      if (leader) await evictor.stop();
    },
  };
}
