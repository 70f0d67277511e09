import yauzl from 'yauzl';

export interface NuspecIdentity {
  id: string;
  version: string;
}

const MAX_NUSPEC = 1024 * 1024;

/** Reads <id> and <version> from the .nuspec at the root of a .nupkg on disk (random access: no full read). */
export async function readNuspecIdentity(path: string): Promise<NuspecIdentity | undefined> {
  const xml = await readNuspecXml(path);
  return xml === undefined ? undefined : parseIdentity(xml);
}

/** The .nuspec at the root of a .nupkg on disk, as bytes (random access: no full read of the package). */
export function readNuspecBytes(path: string): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err || !zip) return resolve(undefined);
      let settled = false;
      const done = (v: Buffer | undefined): void => {
        if (settled) return;
        settled = true;
        zip.close();
        resolve(v);
      };
      zip.on('error', () => done(undefined));
      zip.on('end', () => done(undefined));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.includes('/') || !entry.fileName.toLowerCase().endsWith('.nuspec') || entry.uncompressedSize > MAX_NUSPEC) {
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return done(undefined);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', () => done(undefined));
          stream.on('end', () => done(Buffer.concat(chunks)));
        });
      });
      zip.readEntry();
    });
  });
}

function parseIdentity(xml: string): NuspecIdentity | undefined {
  const metadata = /<metadata[\s>][\s\S]*?<\/metadata>/.exec(xml)?.[0] ?? xml;
  const id = /<id>\s*([^<]+?)\s*<\/id>/.exec(metadata)?.[1];
  const version = /<version>\s*([^<]+?)\s*<\/version>/.exec(metadata)?.[1];
  return id && version ? { id, version } : undefined;
}

export async function readNuspecXml(path: string): Promise<string | undefined> {
  return (await readNuspecBytes(path))?.toString('utf8').replace(/^\uFEFF/, '');
}
