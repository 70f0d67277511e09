// The test bucket server (bench/s3-server.js: s3rver) in a process of its own; it dies with the scope.
import { fileURLToPath } from 'node:url';
import { capture, type Scope } from './proc.js';

export async function startS3Server(scope: Scope, bucket: string): Promise<{ endpoint: string; bucket: string; pid: number | undefined }> {
  const script = fileURLToPath(new URL('../s3-server.js', import.meta.url));
  const child = scope.spawn(process.execPath, [script, bucket], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  const output = capture(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3-server did not start:\n${output()}`)), 30_000);
    child.once('message', (m) => (clearTimeout(timer), resolve({ ...(m as { endpoint: string; bucket: string }), pid: child.pid })));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`s3-server exited (${code}):\n${output()}`))));
  });
}
