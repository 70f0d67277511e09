// Child process for test/integration/undici-paused-end.test.ts: asks a raw upstream (argv[2]: its URL) through
// nuproxy's own UpstreamHttp (the built dist/), for both pools, and leaves each body unread long enough for
// undici's parser to pause before the upstream closes its side. Prints one JSON line per request. Without the
// guard in src/upstream/paused-end-guard.ts, undici 7 kills this process with an uncatchable AssertionError.
import { UpstreamHttp } from '../../../dist/upstream/http-client.js';
import { createLogger } from '../../../dist/log.js';

const [url, waitMs] = [process.argv[2], Number(process.argv[3] ?? 300)];
const http = new UpstreamHttp({
  name: 'raw',
  timeouts: { connect: 2000, headers: 5000, body: 5000 },
  retries: 0,
  userAgent: 'test',
  logger: createLogger({ level: 'silent' }),
});
http.allowOrigin(url);
for (const kind of ['metadata', 'package']) {
  for (const path of ['fin', 'reset']) {
    const res = await http.request(`${url}${path}`, { kind, retry: false });
    await new Promise((r) => setTimeout(r, waitMs)); // the body is not read: the parser pauses, then the FIN comes
    let bytes = 0;
    let error;
    try {
      for await (const chunk of res.body) bytes += chunk.length;
    } catch (err) {
      error = err.code ?? err.message;
    }
    console.log(JSON.stringify({ kind, path, status: res.status, bytes, error }));
  }
}
await http.close();
