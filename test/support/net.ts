import { createServer } from 'node:net';

// Below Linux's default ephemeral range (32768-60999): the kernel never hands these out as the local port of an
// outgoing connection, so a port found free here stays free until the server meant for it binds it. A port from
// the ephemeral range (listen on port 0, close) could be taken in between by any of the thousands of connections
// the tests beside this one open, and the server started on it then fails to bind (seen: a Redis Cluster node).
const LOW = 20_000;
const HIGH = 32_767;

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

/** A port that was free a moment ago on loopback, outside the ephemeral range when one can be found there. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryListen(LOW + Math.floor(Math.random() * (HIGH - LOW + 1)));
    if (port) return port;
  }
  const port = await tryListen(0);
  if (!port) throw new Error('could not get a free port');
  return port;
}
