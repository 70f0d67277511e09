import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_OVERRIDES } from '../../src/config/load.js';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

// Docker cannot run on the development machines, so the deployment files are checked for consistency here.
describe('deployment files', () => {
  it('docker-compose.yml runs nuproxy with Redis beside it, using only real config overrides', () => {
    const compose = parse(read('docker-compose.yml')) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown>; ports?: string[] }>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['nuproxy', 'redis']);
    const env = compose.services.nuproxy!.environment!;
    for (const k of Object.keys(env)) expect(Object.keys(ENV_OVERRIDES)).toContain(k);
    expect(env.NUPROXY_REDIS_URL).toBe('redis://redis:6379');
    expect(compose.services.nuproxy!.depends_on).toHaveProperty('redis');
    expect(compose.services.nuproxy!.ports).toContain('5000:5000');
    for (const v of compose.services.nuproxy!.volumes!) expect(Object.keys(compose.volumes)).toContain(v.split(':')[0]);
  });

  it('the Dockerfile starts the same entry point as the package bin', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(read('Dockerfile')).toContain(`"${pkg.bin.nuproxy}"`);
  });
});
