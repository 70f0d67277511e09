// One contender of the fetch-lock conformance suite (test/contract/fetch-lock.contract.ts), shared by the
// contenders inside the test process and those in child processes (children/fetch-lock-contender.mjs), so every
// implementation is driven by the same code. It imports nothing of nuproxy: the caller hands in `fetchOnce` and
// the lock (from src/ in the test process, from the built dist/ in a child). What the holder fetches is written
// to a file in `dir`, the one place every kind of contender (thread, worker, instance) can read back.
import { appendFile, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const fileOf = (dir, key) => join(dir, encodeURIComponent(key));

async function exists(path) {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Until the test opens the gate of `key` (a file): the holder's fetch is "under way" until then. */
async function gate(dir, key) {
  while (!(await exists(`${fileOf(dir, key)}.go`))) await new Promise((r) => setTimeout(r, 5));
}

export async function runContender({ fetchOnce, lock, dir, key, how }) {
  const t0 = Date.now();
  const file = fileOf(dir, key);
  let fetched = false;
  try {
    const value = await fetchOnce(lock, key, {
      ttlMs: how.ttlMs,
      fetch: async (release) => {
        fetched = true;
        await appendFile(`${file}.fetches`, `${how.value}\n`);
        if (how.hang) return new Promise(() => undefined); // holds until its TTL ends or its process dies
        if (how.gate) await gate(dir, key);
        if (how.fail) throw new Error(`fetch of ${how.value} failed`);
        await writeFile(`${file}.${how.value}.tmp`, how.value);
        await rename(`${file}.${how.value}.tmp`, file);
        await release();
        await release(); // idempotent: must not free a lock someone else took meanwhile
        return how.value;
      },
      peek: async () => {
        try {
          return await readFile(file, 'utf8');
        } catch {
          return undefined;
        }
      },
    });
    return { value, fetched, ms: Date.now() - t0 };
  } catch (err) {
    return { error: err.message, fetched, ms: Date.now() - t0 };
  }
}

/** How many fetches of `key` were made (by any contender). */
export async function fetchesOf(dir, key) {
  try {
    return (await readFile(`${fileOf(dir, key)}.fetches`, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Lets the holder of `key` finish its fetch. */
export async function openGate(dir, key) {
  await writeFile(`${fileOf(dir, key)}.go`, '');
}
