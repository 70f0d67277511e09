// Node's ceiling, the second reference (issue #17): a bare node:http server in one process (one worker) that
// loads a list of (path -> file) into memory at start and answers GET/HEAD with those bytes, Content-Type and
// Content-Length as nuproxy does (application/octet-stream for .nupkg, application/json for JSON), 404 otherwise.
// Nothing else: no routing, no logging, no headers beyond those. Started by bench/lib/bare.ts with an IPC channel:
//   argv[2]: a JSON file { files: [urlPath, file][] }  -> { type: 'ready', url, files, bytes }
// It exits when the parent goes away.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

interface Doc {
  body: Buffer;
  headers: Record<string, string>;
}

function main(): void {
  const manifest = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as { files: [string, string][] };
  const docs = new Map<string, Doc>();
  let bytes = 0;
  for (const [path, file] of manifest.files) {
    const body = readFileSync(file);
    bytes += body.length;
    const type = path.endsWith('.json') ? 'application/json' : 'application/octet-stream';
    docs.set(path, { body, headers: { 'content-type': type, 'content-length': String(body.length) } });
  }
  const notFound = { 'content-type': 'text/plain', 'content-length': '9' };
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const doc = req.method === 'GET' || req.method === 'HEAD' ? docs.get(req.url ?? '') : undefined;
    if (!doc) {
      res.writeHead(404, notFound);
      res.end('not found');
      return;
    }
    res.writeHead(200, doc.headers);
    res.end(req.method === 'HEAD' ? undefined : doc.body);
  });
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}/`, files: docs.size, bytes });
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

try {
  main();
} catch (err) {
  process.stderr.write(`bare-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
