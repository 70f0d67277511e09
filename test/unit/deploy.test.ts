import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_OVERRIDES, validateConfig } from '../../src/config/load.js';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

// Docker cannot run on the development machines, so the deployment files are checked for consistency here.
describe('deployment files', () => {
  it('docker-compose.yml runs two replicas behind nginx with Redis and one MinIO bucket beside them, using only real config', () => {
    const compose = parse(read('docker-compose.yml'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown>; ports?: string[]; command?: string[] | string }>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['bucket', 'lb', 'minio', 'nuproxy-a', 'nuproxy-b', 'redis']);
    // the replicas' config file (baked into the image from config/) is a valid config with packages in the bucket
    const replicaConfig = validateConfig(parse(read('config/compose.yaml')), { S3_KEY: 'test-key-id', S3_SECRET: 'test-secret-key' }, 'config/compose.yaml').config;
    expect(replicaConfig.storage.kind).toBe('s3');
    const s3 = replicaConfig.storage.s3!;
    const keyEnv = [s3.accessKeyIdEnv, s3.secretAccessKeyEnv];
    for (const name of ['nuproxy-a', 'nuproxy-b']) {
      const svc = compose.services[name]!;
      expect(svc.command).toEqual(['serve', '--config', 'config/compose.yaml']);
      // every variable is a real override, or one the config names for the bucket's keys
      for (const k of Object.keys(svc.environment!)) expect([...Object.keys(ENV_OVERRIDES), ...keyEnv]).toContain(k);
      for (const k of keyEnv) expect(svc.environment).toHaveProperty(k);
      expect(svc.environment!.NUPROXY_REDIS_URL).toBe('redis://redis:6379');
      expect(svc.depends_on).toHaveProperty('redis');
      expect(svc.depends_on).toHaveProperty('bucket');
      for (const v of svc.volumes!) expect(Object.keys(compose.volumes)).toContain(v.split(':')[0]);
    }
    // each replica its own volume (the spool of downloads under way)
    expect(compose.services['nuproxy-a']!.volumes![0]!.split(':')[0]).not.toBe(compose.services['nuproxy-b']!.volumes![0]!.split(':')[0]);
    // MinIO at the endpoint the config names, its root user the replicas' keys, the bucket the config names made once
    expect(s3.endpoint).toBe('http://minio:9000');
    const minio = compose.services.minio!;
    expect(minio.environment!.MINIO_ROOT_USER).toBe(compose.services['nuproxy-a']!.environment![s3.accessKeyIdEnv]);
    expect(minio.environment!.MINIO_ROOT_PASSWORD).toBe(compose.services['nuproxy-a']!.environment![s3.secretAccessKeyEnv]);
    const makeBucket = ([] as string[]).concat(compose.services.bucket!.command ?? []).join(' ');
    expect(makeBucket).toContain(`mc mb --ignore-existing local/${s3.bucket}`);
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
