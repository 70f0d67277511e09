// Forces a full garbage collection in another Node process through its inspector (started with
// NODE_OPTIONS=--inspect=127.0.0.1:<port>): memory checks then measure what is still held, not garbage the
// collector has not got round to. Nothing in nuproxy is changed or called.
import { WebSocket } from 'undici';

/** The environment that makes a child process listen for the inspector on `port` (loopback only). */
export function inspectorEnv(port: number): Record<string, string> {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${port}`.trim() };
}

/** Runs HeapProfiler.collectGarbage twice (the second pass frees what the first one's finalizers let go). */
export async function collectGarbage(port: number): Promise<void> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error('inspector connection failed')), { once: true });
  });
  try {
    for (const id of [1, 2]) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('inspector did not answer within 10 s')), 10_000);
        const onMessage = (e: { data: unknown }): void => {
          if ((JSON.parse(String(e.data)) as { id?: number }).id !== id) return;
          clearTimeout(timer);
          ws.removeEventListener('message', onMessage);
          resolve();
        };
        ws.addEventListener('message', onMessage);
        ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      });
    }
  } finally {
    ws.close();
  }
}
