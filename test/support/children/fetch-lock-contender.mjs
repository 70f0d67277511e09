// A worker process for the fetch-lock conformance suite (test/contract/fetch-lock.test.ts): the built BoxFetchLock
// over this process's IPC channel to the test process, which plays the primary (a real BoxBroker), as node:cluster
// workers talk to theirs. The test sends {contender: 1, rid, op, ...}; each is answered {contender: 1, rid, result}.
import { BoxLink } from '../../../dist/cache/box-link.js';
import { BoxFetchLock } from '../../../dist/feed/box-fetch-lock.js';
import { fetchOnce } from '../../../dist/feed/fetch-lock.js';
import { runContender } from '../fetch-lock-runner.mjs';

const dir = process.argv[2];
const lock = new BoxFetchLock(new BoxLink({ send: (m) => process.send(m), onMessage: (h) => process.on('message', h) }));
const held = new Map();
let next = 1;

const ops = {
  run: (m) => runContender({ fetchOnce, lock, dir, key: m.key, how: m.how }),
  lock: async (m) => {
    const release = await lock.lock(m.key, m.ttlMs);
    if (!release) return undefined;
    held.set(next, release);
    return next++;
  },
  release: async (m) => void (await held.get(m.handle)?.()),
  waitUnlocked: async (m) => {
    const t0 = Date.now();
    await lock.waitUnlocked(m.key, m.ms);
    return Date.now() - t0;
  },
};

process.on('message', (m) => {
  if (m?.contender !== 1) return;
  ops[m.op](m).then((result) => process.send({ contender: 1, rid: m.rid, result }));
});
process.send({ contender: 1, ready: true });
