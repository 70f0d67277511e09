import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

// The layer rules of the architecture notes, checked on every test run (a convention nothing checks decays).
const SRC = new URL('../../src/', import.meta.url).pathname;

/** Which src/ folders (or top-level files) each layer may import from. */
const ALLOWED: Record<string, string[]> = {
  protocol: ['protocol'],
  config: ['config', 'errors.ts', 'protocol'],
  cache: ['cache', 'errors.ts', 'log.ts'],
  upstream: ['upstream', 'errors.ts', 'log.ts', 'config', 'protocol'],
  feed: ['feed', 'errors.ts', 'log.ts', 'config', 'protocol', 'cache', 'upstream'],
  http: ['http', 'errors.ts', 'log.ts', 'protocol', 'feed'],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

function layerOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0]! : rel;
}

describe('architecture', () => {
  const all = files(SRC);

  it.each(Object.keys(ALLOWED))('%s/ imports only what its layer may', (layer) => {
    const violations: string[] = [];
    for (const file of all.filter((f) => layerOf(f) === layer)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
        const target = join(dirname(file), m[1]!).replace(/\.js$/, '.ts');
        const targetLayer = layerOf(target);
        if (!ALLOWED[layer]!.includes(targetLayer)) violations.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('only main.ts reads process.env, process.argv or calls process.exit', () => {
    const offenders = all.filter((f) => !f.endsWith('/main.ts') && /process\.(env|argv|exit)\b/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(SRC, f))).toEqual([]);
  });

  it('the protocol layer does no I/O', () => {
    const offenders = files(join(SRC, 'protocol')).filter((f) => /from 'node:(fs|net|http|https|child_process)/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
