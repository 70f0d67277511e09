import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers, parseModule, readmeMayImport, readmeSections, sourceFiles, type LayerTable } from '../support/layers.js';

// The layer rules of the architecture notes, checked on every test run (a convention nothing checks decays).
// test/unit/layers.test.ts shows that each kind of violation is caught.
const SRC = new URL('../../src/', import.meta.url).pathname;

/**
 * Which src/ folders (or top-level files) each layer may import from; a folder lists itself. Nothing may import
 * main.ts, and only main.ts may import cli/ and (with cli/) app.ts. The folder READMEs and src/README.md say the
 * same, word for word (checked below).
 */
const LAYERS: LayerTable = {
  'errors.ts': [],
  'log.ts': ['errors.ts'],
  protocol: ['protocol'],
  config: ['config', 'errors.ts', 'protocol'],
  cache: ['cache', 'errors.ts', 'log.ts'],
  // the figures every layer records (like log.ts): imports nothing of ours, so any layer may use it
  metrics: ['metrics'],
  upstream: ['upstream', 'errors.ts', 'log.ts', 'config', 'protocol', 'metrics'],
  // supply-chain policy: pure decisions on a version's facts
  policy: ['policy', 'errors.ts', 'protocol', 'config'],
  feed: ['feed', 'errors.ts', 'log.ts', 'config', 'protocol', 'cache', 'upstream', 'metrics', 'policy'],
  // who asks and what they may (tokens, client certificates, scopes): pure checks, no I/O
  access: ['access', 'errors.ts', 'log.ts', 'protocol', 'config'],
  http: ['http', 'errors.ts', 'log.ts', 'protocol', 'feed', 'metrics', 'access'],
  // the admin API: routes like http/'s, built on feed/'s admin operations
  admin: ['admin', 'errors.ts', 'log.ts', 'protocol', 'feed', 'metrics', 'http', 'access'],
  // the dashboard (server-rendered pages): what http/ may, and the admin API's summary
  ui: ['ui', 'errors.ts', 'log.ts', 'protocol', 'feed', 'metrics', 'http', 'admin', 'access'],
  // the composition root: everything but the commands and the entry point
  'app.ts': ['errors.ts', 'log.ts', 'protocol', 'config', 'cache', 'upstream', 'feed', 'http', 'metrics', 'admin', 'ui', 'access', 'policy'],
  // the commands build the core through app.ts and work below it; they never serve (no http/)
  cli: ['cli', 'app.ts', 'errors.ts', 'log.ts', 'protocol', 'config', 'cache', 'upstream', 'feed', 'policy'],
  'main.ts': ['app.ts', 'cli', 'errors.ts', 'log.ts', 'protocol', 'config', 'cache', 'upstream', 'feed', 'http', 'metrics'],
};

describe('architecture', () => {
  const all = sourceFiles(SRC);

  it('every layer imports only what its row allows, and passes on only what its importers may see', () => {
    // Expected to fail on exactly one line until the storage redesign's branch that drops it is merged:
    // "feed/packages.ts exports BlobInfo from cache, which http may not import (through feed)".
    expect(checkLayers(SRC, LAYERS)).toEqual([]);
  });

  it('every src/ folder has a README whose "May import:" is its row', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.sort()).toEqual(Object.keys(LAYERS).filter((l) => !l.endsWith('.ts')).sort());
    for (const folder of folders) {
      const readme = join(SRC, folder, 'README.md');
      expect(existsSync(readme), `${folder}/README.md`).toBe(true);
      expect(readmeMayImport(readFileSync(readme, 'utf8')), `${folder}/README.md`).toEqual([...LAYERS[folder]!].sort());
    }
  });

  it('src/README.md has a section for each top-level file, whose "May import:" is its row', () => {
    const top = readdirSync(SRC).filter((n) => n.endsWith('.ts'));
    expect(top.sort()).toEqual(Object.keys(LAYERS).filter((l) => l.endsWith('.ts')).sort());
    const sections = readmeSections(readFileSync(join(SRC, 'README.md'), 'utf8'));
    for (const file of top) {
      const section = sections.get(file);
      expect(section, `src/README.md: ## \`${file}\``).toBeDefined();
      // an empty row reads "May import: nothing in src/."
      expect(readmeMayImport(section!) ?? [], `src/README.md: ${file}`).toEqual([...LAYERS[file]!].sort());
    }
  });

  it('only main.ts reads process.env, process.argv or calls process.exit', () => {
    const offenders = all.filter((f) => !f.endsWith('/main.ts') && /process\.(env|argv|exit)\b/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(SRC, f))).toEqual([]);
  });

  it('the protocol layer does no I/O', () => {
    // every kind of import counts: a dynamic import('node:fs') is as much I/O as a static one
    const offenders = sourceFiles(join(SRC, 'protocol')).filter((f) =>
      parseModule(readFileSync(f, 'utf8'), f).specs.some(({ spec }) => /^(node:)?(fs|fs\/promises|net|http|https|http2|child_process|dgram|tls)$/.test(spec)),
    );
    expect(offenders).toEqual([]);
  });
});
