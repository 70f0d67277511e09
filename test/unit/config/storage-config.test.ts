import { describe, expect, it } from 'vitest';
import { secretSources, validateConfig } from '../../../src/config/load.js';
import { NuproxyError } from '../../../src/errors.js';

const s3 = { endpoint: 'http://127.0.0.1:9000', bucket: 'nupkgs', forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' };
const env = { S3_KEY: 'AKIAEXAMPLEKEY1', S3_SECRET: 'very-secret-value-123' };

function problems(raw: unknown, e: Record<string, string> = {}): string[] {
  try {
    validateConfig(raw, e);
  } catch (err) {
    return ((err as NuproxyError).details.problems as string[]) ?? [];
  }
  return [];
}

describe('storage config', () => {
  it('defaults to the disk', () => {
    expect(validateConfig({}).config.storage).toEqual({ kind: 'fs', localTier: { maxSize: 0 } }); // the local tier is off
  });

  it('s3: the section as the issue names it, with defaults; the keys come from the named variables', () => {
    const loaded = validateConfig({ storage: { kind: 's3', s3 } }, env);
    expect(loaded.config.storage.s3).toEqual({ ...s3, region: 'us-east-1', prefix: '', redirect: { enabled: false, ttl: 300_000 } });
    expect(loaded.s3Credentials).toEqual({ accessKeyId: env.S3_KEY, secretAccessKey: env.S3_SECRET });
    // the keys are secrets (redacted everywhere), and never part of the loggable config
    expect(secretSources(loaded).map((s) => s.value)).toEqual(expect.arrayContaining([env.S3_KEY, env.S3_SECRET]));
    expect(JSON.stringify(loaded.config)).not.toContain(env.S3_SECRET);
  });

  it('names every problem by its key, and never a key value', () => {
    expect(problems({ storage: { kind: 's3' } })).toEqual([expect.stringContaining('storage.s3')]);
    const missing = problems({ storage: { kind: 's3', s3 } }, { S3_KEY: 'x' });
    expect(missing).toEqual(['storage.s3.secretAccessKeyEnv: environment variable S3_SECRET is not set']);
    expect(problems({ storage: { kind: 's3', s3: { ...s3, bucket: 'No_Such' } } }, env)[0]).toMatch(/^storage\.s3\.bucket: /);
    expect(problems({ storage: { kind: 's3', s3: { ...s3, prefix: '/abs' } } }, env)[0]).toMatch(/^storage\.s3\.prefix: /);
    expect(problems({ storage: { kind: 's3', s3: { ...s3, endpoint: 'http://k:s@minio:9000' } } }, env)[0]).toMatch(/^storage\.s3\.endpoint: .*credentials/);
    expect(problems({ storage: { kind: 's3', s3: { ...s3, accessKeyIdEnv: 'AKIA-literal key' } } }, env)[0]).toMatch(/^storage\.s3\.accessKeyIdEnv: /);
    expect(problems({ storage: { kind: 'gcs' } })[0]).toMatch(/^storage\.kind: /);
    expect(problems({ storage: { kind: 'fs', extra: 1 } })[0]).toMatch(/^storage/);
  });

  it('an s3 section with kind fs is accepted and reads no keys', () => {
    const loaded = validateConfig({ storage: { kind: 'fs', s3 } });
    expect(loaded.s3Credentials).toBeUndefined();
  });
});
