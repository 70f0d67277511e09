// Many agents restoring at once, in a process of its own: each agent replays a captured restore's requests (in
// order, at most `connections` in flight: its own keep-alive connections, each taking the next request when
// free), loops restores for `seconds`, and all agents start in the same tick.
//   argv[2]: JSON AgentsArgs;  stdout: "ready" once its connections are open, then (after "go" on stdin: several
//   generator processes start together) one JSON line AgentsResult
// Raw HTTP/1.1 on sockets (Content-Length bodies only, no pipelining), as bench/load-client.ts and for the same
// reason: a JavaScript HTTP client would measure itself. Every status must be the captured one, every body as long
// as its Content-Length.
import { connect, type Socket } from 'node:net';

export interface AgentsArgs {
  url: string;
  paths: string[];
  statuses: number[];
  agents: number;
  connections: number;
  seconds: number;
  timeoutMs: number;
}

export interface AgentsResult {
  /** Restores that ended inside the window, without error. */
  restores: number;
  /** The share already answered of each restore still in flight at the window's end, summed (restores/s counts it:
   *  dropping it would cost a slow server up to one restore per agent). */
  partialRestores: number;
  failedRestores: number;
  /** Duration of each restore counted in `restores`. */
  restoreMs: number[];
  /** Responses completed inside the window. */
  requests: number;
  /** Failed responses, inside the window or after it (the restores still in flight at its end). */
  errors: number;
  errorSamples: string[];
  bytes: number;
  windowMs: number;
  /** This process's CPU time (user + system) during the window. */
  cpuMs: number;
}

type Done = (err: string | undefined, status: number) => void;

class Conn {
  private sock: Socket | undefined;
  private head: Buffer | undefined;
  private remaining = 0;
  private status = 0;
  private done: Done | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onBytes: (n: number) => void,
  ) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        resolve();
      });
      s.once('error', reject);
      s.on('data', (c: Buffer) => this.onData(c));
      s.on('error', () => undefined);
      s.on('close', () => {
        if (this.sock !== s) return;
        this.sock = undefined;
        this.finish('connection closed');
      });
      this.sock = s;
    });
  }

  async get(path: string, done: Done): Promise<void> {
    if (!this.sock) {
      try {
        await this.open();
      } catch (err) {
        done(`connect: ${(err as Error).message}`, 0);
        return;
      }
    }
    this.done = done;
    this.head = Buffer.alloc(0);
    this.sock!.write(`GET ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nUser-Agent: nuproxy-bench-agents\r\nAccept: */*\r\n\r\n`);
  }

  private finish(err: string | undefined): void {
    const d = this.done;
    if (!d) return;
    this.done = undefined;
    this.head = undefined;
    if (err) {
      this.sock?.destroy();
      this.sock = undefined;
    }
    d(err, this.status);
  }

  private onData(chunk: Buffer): void {
    if (!this.done) {
      this.finish('bytes outside a response');
      return;
    }
    if (this.head !== undefined) {
      const head: Buffer = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        this.head = Buffer.from(head);
        if (head.length > 65536) this.finish('response head too large');
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      this.head = undefined;
      this.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      if (!cl) return this.finish(`no Content-Length (status ${this.status})`);
      this.remaining = Number(cl[1]) - (head.length - end - 4);
      this.onBytes(head.length - end - 4);
    } else {
      this.remaining -= chunk.length;
      this.onBytes(chunk.length);
    }
    if (this.remaining === 0) this.finish(undefined);
    else if (this.remaining < 0) this.finish('more bytes than Content-Length');
  }

  close(): void {
    this.sock?.destroy();
  }
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as AgentsArgs;
  const u = new URL(a.url);
  const host = u.hostname;
  const port = Number(u.port || 80);
  const timer = setTimeout(() => {
    process.stderr.write(`agents-client: timed out after ${a.timeoutMs} ms\n`);
    process.exit(2);
  }, a.timeoutMs);
  const r: AgentsResult = { restores: 0, partialRestores: 0, failedRestores: 0, restoreMs: [], requests: 0, errors: 0, errorSamples: [], bytes: 0, windowMs: 0, cpuMs: 0 };
  let inWindow = true;
  const onBytes = (n: number): void => {
    if (inWindow) r.bytes += n;
  };
  const agents = Array.from({ length: a.agents }, () => Array.from({ length: a.connections }, () => new Conn(host, port, onBytes)));
  // connections first (a few at a time: a listen backlog is finite), then every agent starts in the same tick
  const all = agents.flat();
  for (let i = 0; i < all.length; i += 64) await Promise.all(all.slice(i, i + 64).map((c) => c.open()));
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    let got = '';
    process.stdin.setEncoding('utf8').on('data', (d: string) => {
      got += d;
      if (got.includes('go\n')) {
        process.stdin.pause();
        resolve();
      }
    });
  });
  const n = a.paths.length;
  // per agent: answers so far in its current restore
  const progress = new Array<number>(a.agents).fill(0);
  const oneRestore = (conns: Conn[], agent: number): Promise<{ ok: boolean; ms: number }> =>
    new Promise((resolve) => {
      const t = performance.now();
      let next = 0;
      let finished = 0;
      progress[agent] = 0;
      let failed = false;
      const pump = (c: Conn): void => {
        if (next >= n) return;
        const i = next++;
        void c.get(a.paths[i]!, (err, status) => {
          if (!err && status !== a.statuses[i]) err = `${a.paths[i]}: status ${status}, expected ${a.statuses[i]}`;
          if (err) r.errors++;
          else if (inWindow) r.requests++;
          if (err) {
            failed = true;
            if (r.errorSamples.length < 10) r.errorSamples.push(err);
          }
          finished++;
          if (inWindow) progress[agent] = finished;
          if (finished === n) resolve({ ok: !failed, ms: performance.now() - t });
          else pump(c);
        });
      };
      for (const c of conns) pump(c);
    });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async (conns: Conn[], agent: number): Promise<void> => {
    while (inWindow) {
      const x = await oneRestore(conns, agent);
      if (!inWindow) break; // ended after the window: its share inside it is in partialRestores
      if (x.ok) {
        r.restores++;
        r.restoreMs.push(x.ms);
      } else r.failedRestores++;
    }
  };
  const windowEnd = new Promise<void>((resolve) =>
    setTimeout(() => {
      inWindow = false;
      for (const p of progress) if (p < n) r.partialRestores += p / n;
      r.windowMs = performance.now() - t0;
      const c = process.cpuUsage(cpu0);
      r.cpuMs = (c.user + c.system) / 1000;
      resolve();
    }, a.seconds * 1000),
  );
  await Promise.all([...agents.map((conns, i) => loop(conns, i)), windowEnd]);
  clearTimeout(timer);
  for (const c of all) c.close();
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

main().catch((err) => {
  process.stderr.write(`agents-client: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
