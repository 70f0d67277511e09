// The test bucket server (s3rver, test/support/s3.ts) in a process of its own, so that a scenario measuring S3
// clients measures the clients' own cost, not a server sharing their event loop. Started with an IPC channel:
//   argv[2]: the bucket name  -> { type: 'ready', endpoint, bucket, uploadsDir }
// It closes the server and removes its data on SIGTERM or when the parent goes away.
import { startS3 } from '../test/support/s3.js';

async function main(): Promise<void> {
  const s3 = await startS3(process.argv[2] ?? 'bench-clients');
  let closing: Promise<void> | undefined;
  const close = (): void => {
    closing ??= s3.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', close);
  process.on('disconnect', close);
  process.send?.({ type: 'ready', endpoint: s3.endpoint, bucket: s3.bucket, uploadsDir: s3.uploadsDir });
}

main().catch((err: unknown) => {
  process.stderr.write(`s3-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
