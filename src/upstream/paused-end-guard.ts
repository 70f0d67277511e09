import type { Socket } from 'node:net';

/**
 * undici 7 crashes the whole process when an upstream answers `Connection: close` and closes its side of the
 * connection while the response body is paused for backpressure (nodejs/undici#5360: an uncatchable
 * `AssertionError: assert(!this.paused)` in `Parser.finish`, called from the socket's 'end' and 'close'
 * handlers). Any upstream (or a proxy in front of it) can trigger it, and a busy nuproxy pauses bodies often.
 * The fix is only in undici 8, which needs Node 22; nuproxy runs on Node 20.
 *
 * This guard wraps undici's own 'end', 'close' and 'error' listeners on each upstream socket (installed by the
 * connectors of src/upstream/http-client.ts, before undici attaches them):
 * - 'end' while the parser is paused: undici's handler runs once the body reader has resumed the parser, so a
 *   complete body still completes normally (while the socket lives; if it closes first, 'close' takes over).
 * - 'close', or 'error' (a reset), while the parser is paused: the parser is marked unpaused just before undici's
 *   handler runs. The parser's own finish then reports "paused" instead of asserting (what undici's later fix
 *   does, nodejs/undici#5389), and the request fails as cut short: a download that fails is retried or refused,
 *   never a crash.
 *
 * It reads one undici internal (the socket's symbol described 'parser', with its `paused` flag); when it is not
 * there (another undici version), the guard does nothing and undici behaves as before. Remove it with the move
 * to undici 8.
 */
export function guardPausedParserEnd(socket: Socket): void {
  const wrapped = new WeakMap<(...args: unknown[]) => void, (...args: unknown[]) => void>();
  type Listener = (...args: unknown[]) => void;
  const originalOn = socket.on.bind(socket) as (event: string | symbol, listener: Listener) => Socket;
  const originalRemove = socket.removeListener.bind(socket) as (event: string | symbol, listener: Listener) => Socket;

  const wrap = (event: string | symbol, listener: (...args: unknown[]) => void): ((...args: unknown[]) => void) => {
    if (event !== 'end' && event !== 'close' && event !== 'error') return listener;
    const guarded = function (this: Socket, ...args: unknown[]): void {
      const parser = parserOf(socket);
      if (!parser || !parser.paused) return listener.apply(this, args);
      if (event !== 'end') {
        parser.paused = false;
        return listener.apply(this, args);
      }
      const retry = (): void => {
        const p = parserOf(socket);
        if (!p) return; // detached: 'close' took over
        if (p.paused && !socket.destroyed) {
          setTimeout(retry, 5).unref();
          return;
        }
        if (p.paused) p.paused = false;
        listener.apply(this, args);
      };
      setTimeout(retry, 5).unref();
    };
    wrapped.set(listener, guarded);
    return guarded;
  };

  const on = (event: string | symbol, listener: (...args: unknown[]) => void): Socket => originalOn(event, wrap(event, listener));
  socket.on = on as Socket['on'];
  socket.addListener = on as Socket['addListener'];
  const remove = (event: string | symbol, listener: (...args: unknown[]) => void): Socket => originalRemove(event, wrapped.get(listener) ?? listener);
  socket.removeListener = remove as Socket['removeListener'];
  socket.off = remove as Socket['off'];
}

interface ParserLike {
  paused: boolean;
}

function symbolNamed(obj: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(obj).find((s) => s.description === description);
}

function parserOf(socket: Socket): ParserLike | undefined {
  const key = symbolNamed(socket, 'parser');
  const parser = key ? (socket as unknown as Record<symbol, unknown>)[key] : undefined;
  return parser && typeof parser === 'object' && typeof (parser as ParserLike).paused === 'boolean' ? (parser as ParserLike) : undefined;
}

type Connector = (options: never, callback: (err: Error | null, socket: Socket | null) => void) => void;

/**
 * A connector whose sockets carry the guard. The sockets must be made with `allowHalfOpen: true`: otherwise Node
 * closes a socket right after its 'end', before the body reader could resume the parser, and a complete body
 * would be reported as cut. (undici destroys every socket whose other side has ended, so none lingers.)
 */
export function withPausedEndGuard<C extends Connector>(connector: C): C {
  return ((options: never, callback: (err: Error | null, socket: Socket | null) => void) =>
    connector(options, (err, socket) => {
      if (socket) guardPausedParserEnd(socket);
      callback(err, socket);
    })) as C;
}
