// nginx with a generated config in a temp dir, in the foreground as a child: `nginx -p DIR -c CONF -g 'daemon off;'`.
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { capture, exited, freePort, sleep, stopChild, type Scope } from './proc.js';
import { getOk } from './http.js';

export interface NginxProc {
  url: string; // http://127.0.0.1:port/
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export type NginxSite =
  /**
   * Static files: `location {prefix} { alias {dir}/; }` with sendfile and open_file_cache. `timedLog`: the access
   * log has one `$msec $request_time $status $request_uri` line per request (end time, duration: see bench/lib/capture.ts).
   */
  | { kind: 'static'; locations: { prefix: string; dir: string }[]; timedLog?: boolean }
  /** Reverse proxy with proxy_cache + proxy_cache_lock in front of `upstream` (an origin). */
  | { kind: 'cache'; upstream: string };

function confText(dir: string, port: number, site: NginxSite): string {
  // Workers run as the invoking user (as root they would drop to "nobody" and could not read 0700 temp dirs).
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : '';
  const locations =
    site.kind === 'static'
      ? site.locations.map((l) => `    location ${l.prefix} {\n      alias ${l.dir}/;\n    }\n`).join('')
      : `    location / {
      proxy_pass ${site.upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache nupkg;
      proxy_cache_valid 200 1d;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 300s;
      proxy_cache_lock_age 300s;
      proxy_read_timeout 300s;
      proxy_max_temp_file_size 4096m;
      add_header X-Cache-Status $upstream_cache_status;
    }
`;
  return `${user}worker_processes auto;
pid ${dir}/nginx.pid;
error_log stderr warn;
events {
  worker_connections 4096;
}
http {
  types {
    application/json json;
    application/octet-stream nupkg;
  }
  default_type application/octet-stream;
${site.kind === 'static' && site.timedLog ? `  log_format timed '$msec $request_time $status $request_uri';\n  access_log ${dir}/access.log timed;` : `  access_log ${dir}/access.log;`}
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=10000 inactive=60s;
  open_file_cache_valid 60s;
  open_file_cache_errors on;
${site.kind === 'cache' ? `  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=nupkg:10m max_size=20g inactive=1d use_temp_path=off;\n` : ''}  server {
    listen 127.0.0.1:${port};
${locations}  }
}
`;
}

export async function startNginx(scope: Scope, nginxBin: string, dir: string, site: NginxSite): Promise<NginxProc> {
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await mkdir(join(dir, 'logs'), { recursive: true }); // nginx checks its default error log path at start-up
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    await writeFile(conf, confText(dir, port, site));
    const child = scope.spawn(nginxBin, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = capture(child);
    const url = `http://127.0.0.1:${port}/`;
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!up && !exited(child) && Date.now() < deadline) {
      try {
        await getOk(`${url}__bench_probe__`, [404]);
        up = true;
      } catch {
        await sleep(25);
      }
    }
    if (up) {
      const proc: NginxProc = { url, port, dir, stop: () => stopChild(child, 'SIGTERM', 5000) };
      scope.onClose(() => proc.stop());
      return proc;
    }
    await stopChild(child, 'SIGKILL', 0);
    if (attempt >= 2 || !/Address already in use/.test(output())) throw new Error(`nginx did not start:\n${output()}`);
  }
}
