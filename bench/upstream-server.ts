// The test upstream (test/support/upstream.ts) in a process of its own, so it does not share an event loop with
// the load generator or the proxy. Started by bench/lib/upstream.ts with an IPC channel:
//   argv[2]: JSON { packageDirs: string[] }
//   -> { type: 'ready', origin, serviceIndexUrl, packages }
//   <- { id, op: 'hits' | 'resetHits' | 'setFault' | 'requests' | 'close', ... } -> { id, result } | { id, error }
// It exits when the parent goes away.
import { startTestUpstream, type Fault } from '../test/support/upstream.js';

interface Matcher {
  source: string;
  flags: string;
}

type Msg =
  | { id: number; op: 'hits'; match: Matcher }
  | { id: number; op: 'resetHits' }
  | { id: number; op: 'setFault'; match: Matcher; fault: Fault | null; times?: number }
  | { id: number; op: 'requests' }
  | { id: number; op: 'close' };

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as { packageDirs?: string[] };
  const started = performance.now();
  const up = await startTestUpstream({ packageDirs: opts.packageDirs ?? [] });
  const send = (m: unknown): void => {
    process.send?.(m);
  };
  const re = (m: Matcher): RegExp => new RegExp(m.source, m.flags);
  process.on('message', (raw) => {
    const m = raw as Msg;
    void (async () => {
      try {
        switch (m.op) {
          case 'hits':
            return send({ id: m.id, result: up.hits(re(m.match)) });
          case 'resetHits':
            up.resetHits();
            return send({ id: m.id, result: true });
          case 'setFault':
            up.setFault(re(m.match), m.fault ?? undefined, m.times);
            return send({ id: m.id, result: true });
          case 'requests':
            return send({ id: m.id, result: up.requests.map((r) => `${r.method} ${r.path}`) });
          case 'close':
            await up.close();
            send({ id: m.id, result: true });
            process.exit(0);
        }
      } catch (err) {
        send({ id: (m as { id: number }).id, error: String(err) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', origin: up.origin, serviceIndexUrl: up.serviceIndexUrl, loadMs: Math.round(performance.now() - started) });
}

main().catch((err) => {
  process.stderr.write(`upstream-server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
