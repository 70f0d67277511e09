// awakeTimer: a bound of listening time. An answer that arrived while the process was busy (here: a
// synchronous busy-wait longer than the bound) is read before the bound gives up; a side that really never
// answers is still given up on, and in bounded wall time.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awakeTimer } from '../../../src/cache/awake-timer.js';

function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // the event loop is blocked: no timer, no socket is served meanwhile
  }
}

/** Sends a line and races its echo against the bound; busy-waits `stallMs` right after sending. */
function raceEcho(port: number, bound: (ms: number, fire: () => void) => () => void, boundMs: number, stallMs: number): Promise<'answer' | 'timeout'> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1', () => {
      let cancel = (): void => undefined;
      socket.once('data', () => {
        cancel();
        socket.destroy();
        resolve('answer');
      });
      socket.write('ping\n');
      cancel = bound(boundMs, () => {
        socket.destroy();
        resolve('timeout');
      });
      busy(stallMs);
    });
  });
}

const plainTimer = (ms: number, fire: () => void): (() => void) => {
  const t = setTimeout(fire, ms);
  return () => clearTimeout(t);
};

describe('awakeTimer', () => {
  let echo: Server;
  let silent: Server;
  let echoPort = 0;
  let silentPort = 0;
  const accepted = new Set<Socket>();
  beforeAll(async () => {
    echo = createServer((s) => {
      accepted.add(s);
      s.on('data', (d) => s.write(d));
    });
    silent = createServer((s) => void accepted.add(s)); // accepts, never answers
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as { port: number }).port;
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of accepted) s.destroy();
    await new Promise((r) => echo.close(r));
    await new Promise((r) => silent.close(r));
  });

  it('a plain setTimeout takes a stalled process for a slow server (what the awake timer fixes)', async () => {
    expect(await raceEcho(echoPort, plainTimer, 100, 300)).toBe('timeout');
  });

  it('an answer that arrived during a stall longer than the bound wins over the bound', async () => {
    for (let i = 0; i < 3; i++) expect(await raceEcho(echoPort, awakeTimer, 100, 300)).toBe('answer');
  });

  it('a server that never answers is given up on after the bound (no stall) and within maxMs (stalls)', async () => {
    let started = Date.now();
    expect(await raceEcho(silentPort, awakeTimer, 100, 0)).toBe('timeout');
    const plain = Date.now() - started;
    expect(plain).toBeGreaterThanOrEqual(95);
    expect(plain).toBeLessThan(100 * 4);
    started = Date.now();
    expect(await raceEcho(silentPort, (ms, fire) => awakeTimer(ms, fire, 500), 100, 300)).toBe('timeout');
    const stalled = Date.now() - started;
    expect(stalled).toBeGreaterThanOrEqual(300 + 95); // the stall did not count: the bound was re-armed after it
    expect(stalled).toBeLessThan(500 + 300);
  });

  it('cancelled, it never fires', async () => {
    let fired = false;
    const cancel = awakeTimer(20, () => (fired = true));
    cancel();
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toBe(false);
  });
});
