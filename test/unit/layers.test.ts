import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLayers, readmeMayImport, type LayerTable } from '../support/layers.js';

// The layer checker over synthetic source trees: each kind of violation is caught, and a clean tree passes
// (a checker that flags nothing, or everything, proves nothing about src/).
const TABLE: LayerTable = {
  cache: ['cache'],
  feed: ['feed', 'cache'],
  http: ['http', 'feed'],
  'app.ts': ['cache', 'feed', 'http'],
};

const BLOB = 'export interface BlobInfo { size: number }\nexport function statBlob(): BlobInfo { return { size: 0 }; }\n';

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

async function tree(files: Record<string, string>): Promise<string[]> {
  root = await mkdtemp(join(tmpdir(), 'nuproxy-layers-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return checkLayers(root, TABLE);
}

describe('checkLayers', () => {
  it('passes a tree that keeps the rules (re-exports inside a layer and of its own names included)', async () => {
    expect(
      await tree({
        'cache/blob.ts': BLOB,
        'cache/index.ts': "export * from './blob.js';\nexport { statBlob as stat } from './blob.js';\n",
        'feed/packages.ts': "import { statBlob, type BlobInfo } from '../cache/index.js';\nexport interface Handle { size: number }\nexport function open(): Handle { const b: BlobInfo = statBlob(); return b; }\n",
        'feed/index.ts': "export * from './packages.js';\nexport type { Handle as PackageHandle } from './packages.js';\n",
        'http/routes.ts': "import { open, type PackageHandle } from '../feed/index.js';\nexport const h: PackageHandle = open();\n",
        'app.ts': "import { open } from './feed/index.js';\nimport { statBlob } from './cache/blob.js';\nvoid open;\nvoid statBlob;\n",
      }),
    ).toEqual([]);
  });

  it('catches a static import across layers, however it is written', async () => {
    expect(
      await tree({
        'cache/blob.ts': BLOB,
        'http/a.ts': "import { statBlob } from '../cache/blob.js';\nvoid statBlob;\n",
        'http/b.ts': 'import {\n  statBlob,\n} from "../cache/blob.js";\nvoid statBlob;\n',
        'http/c.ts': "import type { BlobInfo } from '../cache/blob.js';\nexport type X = { b: BlobInfo };\n",
        'http/d.ts': "import '../cache/blob.js';\n",
        'cache/up.ts': "import { h } from '../http/e.js';\nvoid h;\n",
        'http/e.ts': 'export const h = 1;\n',
      }),
    ).toEqual(['cache/up.ts:1 -> http/e.ts', 'http/a.ts:1 -> cache/blob.ts', 'http/b.ts:1 -> cache/blob.ts', 'http/c.ts:1 -> cache/blob.ts', 'http/d.ts:1 -> cache/blob.ts']);
  });

  it('catches a dynamic import(), an import() type and an export … from', async () => {
    expect(
      await tree({
        'cache/blob.ts': BLOB,
        'http/lazy.ts': "export async function f(): Promise<number> {\n  const { statBlob } = await import('../cache/blob.js');\n  return statBlob().size;\n}\n",
        'http/typed.ts': "export function g(b: import('../cache/blob.js').BlobInfo): number {\n  return b.size;\n}\n",
        'http/computed.ts': "export async function h(p: string): Promise<unknown> {\n  return import(p);\n}\n",
        'http/pass.ts': "export { statBlob } from '../cache/blob.js';\n",
      }),
    ).toEqual([
      'http/computed.ts:2: import() of a computed path cannot be checked',
      'http/lazy.ts:2 -> cache/blob.ts',
      'http/pass.ts:1 -> cache/blob.ts',
      // and what it passes on is cache/'s, which http/'s importers (app.ts) may see: no second line
      'http/typed.ts:1 -> cache/blob.ts',
    ]);
  });

  it('catches a type re-exported from cache/ through a chain in feed/, where http/ could take it', async () => {
    const found = await tree({
      'cache/blob.ts': BLOB,
      // imported, then exported again (today's feed/packages.ts) ...
      'feed/packages.ts': "import type { BlobInfo } from '../cache/blob.js';\nexport type { BlobInfo };\n",
      // ... and passed on, renamed, by a module that never imports cache/ itself
      'feed/index.ts': "export type { BlobInfo as Info } from './packages.js';\n",
      'http/routes.ts': "import type { Info } from '../feed/index.js';\nexport const size = (i: Info): number => i.size;\n",
    });
    expect(found.sort()).toEqual([
      'feed/index.ts exports Info from cache, which http may not import (through feed)',
      'feed/packages.ts exports BlobInfo from cache, which http may not import (through feed)',
    ]);
  });

  it('catches export * from cache/, directly or through another module, and an alias of a cache/ name', async () => {
    const found = await tree({
      'cache/blob.ts': BLOB,
      'feed/all.ts': "export * from '../cache/blob.js';\n",
      'feed/again.ts': "export * from './all.js';\n",
      'feed/ns.ts': "export * as blobs from '../cache/blob.js';\n",
      'feed/alias.ts': "import type { BlobInfo } from '../cache/blob.js';\nimport * as c from '../cache/blob.js';\nexport type Info = BlobInfo;\nexport const stat = c.statBlob;\n",
    });
    expect(found.sort()).toEqual([
      'feed/again.ts exports BlobInfo from cache, which http may not import (through feed)',
      'feed/again.ts exports statBlob from cache, which http may not import (through feed)',
      'feed/alias.ts exports Info from cache, which http may not import (through feed)',
      'feed/alias.ts exports stat from cache, which http may not import (through feed)',
      'feed/all.ts exports BlobInfo from cache, which http may not import (through feed)',
      'feed/all.ts exports statBlob from cache, which http may not import (through feed)',
      'feed/ns.ts exports blobs from cache, which http may not import (through feed)',
    ]);
  });

  it('names a file whose folder has no row', async () => {
    expect(await tree({ 'cache/blob.ts': BLOB, 'metrics/count.ts': 'export const n = 1;\n' })).toEqual(['metrics/count.ts: metrics has no row in the layer table']);
  });

  it('survives a cycle of export *', async () => {
    expect(await tree({ 'feed/a.ts': "export * from './b.js';\nexport const a = 1;\n", 'feed/b.ts': "export * from './a.js';\nexport const b = 1;\n" })).toEqual([]);
  });
});

describe('readmeMayImport', () => {
  it('reads the backticked list after "May import:", folders without their slash, up to the first plain word', () => {
    expect(readmeMayImport('Intro.\n\nMay import: `feed/`, `errors.ts`,\n`log.ts`. Decides nothing about `cache/`.')).toEqual(['errors.ts', 'feed', 'log.ts']);
    expect(readmeMayImport('May import: `protocol/` only (checked by `x`).')).toEqual(['protocol']);
    expect(readmeMayImport('May import: nothing in src/.')).toBeUndefined();
    expect(readmeMayImport('no list here')).toBeUndefined();
  });
});
