// The built nuproxy process at default limits in front of one hostile upstream, for a describe block: started in
// beforeAll (checked with one good answer), stopped and removed in afterAll. `dir` holds its config, log and cache.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { get } from '../http.js';
import { document } from './metadata.js';
import { startHostileUpstream, type HostileUpstream } from './server.js';
import { startNuproxy, type NuproxyProcess } from '../process.js';

export interface HostileNuproxy {
  readonly dir: string;
  readonly hostile: HostileUpstream;
  readonly proc: NuproxyProcess;
}

export function nuproxyBehindHostile(label: string): HostileNuproxy {
  let dir: string | undefined;
  let hostile: HostileUpstream | undefined;
  let proc: NuproxyProcess | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `nuproxy-${label}-`));
    hostile = await startHostileUpstream();
    hostile.on('/v3-flatcontainer/good.lib/index.json', document('{"versions":["1.0.0"]}'));
    proc = await startNuproxy(dir, label, { cache: { dir: join(dir, 'cache') }, upstreams: [{ name: 'hostile', serviceIndex: hostile.serviceIndexUrl, retries: 0 }] });
    expect((await get(`${proc.url}v3/flat/good.lib/index.json`)).status).toBe(200);
  });
  afterAll(async () => {
    await proc?.stop();
    await hostile?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir!;
    },
    get hostile() {
      return hostile!;
    },
    get proc() {
      return proc!;
    },
  };
}
