// Node's process warnings from the built `nuproxy serve` are log lines (one JSON line at warn each, once per
// distinct warning), not Node's several lines of text on stderr: a real process with a preload that emits
// warnings on a signal, and a real S3 backend (the AWS SDK warns on Node < 22 that later SDK versions need 22).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNuproxy, type NuproxyProcess } from '../support/process.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3, type TestS3 } from '../support/s3.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { waitFor } from '../support/wait.js';

const PRELOAD = `
process.on('SIGUSR2', () => {
  process.emitWarning('first line of a warning\\nsecond line of it', 'TestWarning');
  process.emitWarning('first line of a warning\\nsecond line of it', 'TestWarning'); // the same again
  process.emitWarning('another one', { type: 'TestWarning', code: 'NUPROXY_TEST' });
  process.emitWarning('the last', 'TestWarning');
});
`;

const warnings = (p: NuproxyProcess): Record<string, unknown>[] => p.lines.filter((l) => l.msg === 'process warning');

describe('process warnings of nuproxy serve', () => {
  let dir: string;
  let upstream: TestUpstream;
  let s3: TestS3;
  let preload: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuproxy-warnings-'));
    preload = join(dir, 'preload.cjs');
    await writeFile(preload, PRELOAD);
    upstream = await startTestUpstream({ packages: [] });
    s3 = await startS3('warnings');
  });
  afterAll(async () => {
    await upstream?.close();
    await s3?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const config = (name: string): Record<string, unknown> => ({
    cache: { dir: join(dir, name) },
    upstreams: [{ name: 'origin', serviceIndex: upstream.serviceIndexUrl }],
  });

  it('logs each distinct warning once as one JSON line, and leaves stderr empty', async () => {
    const p = await startNuproxy(dir, 'plain', config('plain'), [], { NODE_OPTIONS: `--require ${preload}` });
    try {
      p.child.kill('SIGUSR2');
      await waitFor('the last warning as a log line', () => warnings(p).some((l) => (l.warning as { message: string }).message === 'the last'));
      expect(warnings(p).map((l) => l.warning)).toEqual([
        { name: 'TestWarning', message: 'first line of a warning second line of it' },
        { name: 'TestWarning', code: 'NUPROXY_TEST', message: 'another one' },
        { name: 'TestWarning', message: 'the last' },
      ]);
      expect(warnings(p).every((l) => l.level === 40)).toBe(true);
      expect(p.invalid).toEqual([]);
      expect(p.stderr()).toBe('');
    } finally {
      await p.stop();
    }
  });

  it('logs nothing with NODE_NO_WARNINGS=1, as Node itself would print nothing', async () => {
    const p = await startNuproxy(dir, 'quiet', config('quiet'), [], { NODE_OPTIONS: `--require ${preload}`, NODE_NO_WARNINGS: '1' });
    try {
      p.child.kill('SIGUSR2');
      // a request answered after the signal: the warnings, emitted synchronously on it, came before
      await waitFor('the health answer', async () => (await fetch(`${p.url}health/live`)).ok);
      await new Promise((r) => setTimeout(r, 200));
      expect(warnings(p)).toEqual([]);
      expect(p.stderr()).toBe('');
    } finally {
      await p.stop();
    }
  });

  it('with the S3 backend, the AWS SDK\'s Node version notice is a log line on Node < 22, and stderr stays empty', async () => {
    const p = await startNuproxy(
      dir,
      's3',
      { ...config('s3'), storage: { kind: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true, accessKeyIdEnv: 'S3_KEY', secretAccessKeyEnv: 'S3_SECRET' } } },
      [],
      { S3_KEY: S3RVER_KEY, S3_SECRET: S3RVER_SECRET, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' },
    );
    try {
      expect((await fetch(`${p.url}health/ready`)).status).toBe(200); // the bucket was reached: the client exists
      const major = Number(process.versions.node.split('.')[0]);
      if (major < 22) {
        const line = await waitFor('the AWS SDK notice as a log line', () => warnings(p).find((l) => String((l.warning as { message: string }).message).includes('NodeVersionSupportWarning')));
        expect(String((line.warning as { message: string }).message)).not.toContain('\n');
      } else {
        expect(warnings(p).filter((l) => String((l.warning as { message: string }).message).includes('NodeVersionSupportWarning'))).toEqual([]);
      }
      expect(p.stderr()).not.toContain('NodeVersionSupportWarning');
      expect(p.stderr()).toBe('');
    } finally {
      await p.stop();
    }
  });
});
