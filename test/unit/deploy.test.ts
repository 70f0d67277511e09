import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_OVERRIDES } from '../../src/config/load.js';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

// Docker cannot run on the development machines, so the deployment files are checked for consistency here.
describe('deployment files', () => {
  it('docker-compose.yml runs two replicas behind nginx with Redis beside them, using only real config overrides', () => {
    const compose = parse(read('docker-compose.yml'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown>; ports?: string[] }>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['lb', 'nuproxy-a', 'nuproxy-b', 'redis']);
    for (const name of ['nuproxy-a', 'nuproxy-b']) {
      const svc = compose.services[name]!;
      for (const k of Object.keys(svc.environment!)) expect(Object.keys(ENV_OVERRIDES)).toContain(k);
      expect(svc.environment!.NUPROXY_REDIS_URL).toBe('redis://redis:6379');
      expect(svc.depends_on).toHaveProperty('redis');
      for (const v of svc.volumes!) expect(Object.keys(compose.volumes)).toContain(v.split(':')[0]);
    }
    // each replica its own disk volume
    expect(compose.services['nuproxy-a']!.volumes![0]!.split(':')[0]).not.toBe(compose.services['nuproxy-b']!.volumes![0]!.split(':')[0]);
    expect(compose.services.lb!.ports).toContain('5000:5000');
    const lbConf = read('config/nginx-lb.conf');
    expect(lbConf).toContain('server nuproxy-a:5000');
    expect(lbConf).toContain('server nuproxy-b:5000');
    expect(lbConf).toContain('proxy_request_buffering off');
  });

  it('the Dockerfile starts the same entry point as the package bin', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(read('Dockerfile')).toContain(`"${pkg.bin.nuproxy}"`);
  });
});
