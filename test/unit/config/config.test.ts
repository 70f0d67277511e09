import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateConfig, loadConfig } from '../../../src/config/load.js';
import { parseDurationMs } from '../../../src/config/duration.js';
import { isNuproxyError } from '../../../src/errors.js';

const DEFAULT_FILE = new URL('../../../config/default.yaml', import.meta.url);

function problems(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    validateConfig(raw, env);
  } catch (err) {
    if (isNuproxyError(err, 'CONFIG_INVALID')) return err.details.problems as string[];
    throw err;
  }
  return [];
}

describe('config', () => {
  it('config/default.yaml documents exactly the built-in defaults', () => {
    const fromFile = validateConfig(parse(readFileSync(DEFAULT_FILE, 'utf8'))).config;
    const builtIn = validateConfig({}).config;
    expect(fromFile).toEqual(builtIn);
    expect(builtIn.listen).toEqual({ host: '0.0.0.0', port: 5000 });
    expect(builtIn.cache.dir).toBe('./data');
    expect(builtIn.cache.metadata).toBe('memory');
    expect(builtIn.upstreams).toHaveLength(1);
    expect(builtIn.upstreams[0]).toMatchObject({ name: 'nuget.org', serviceIndex: 'https://api.nuget.org/v3/index.json' });
  });

  it('reports every problem with its key path', () => {
    const p = problems({
      listen: { port: 'eighty' },
      cache: { metadata: 'postgres://x', freshness: { versions: 'soon' } },
      upstreams: [{ name: 'ok', serviceIndex: 'ftp://example.com/index.json' }, { name: 'ok', serviceIndex: 'https://example.com/v3/index.json' }],
      typo: true,
    });
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^listen\.port: /),
        expect.stringMatching(/^cache\.metadata: /),
        expect.stringMatching(/^cache\.freshness\.versions: not a duration/),
        expect.stringMatching(/^upstreams\[0\]\.serviceIndex: /),
        expect.stringMatching(/^upstreams\[1\]\.name: duplicate upstream name/),
        expect.stringMatching(/typo/),
      ]),
    );
    expect(p.length).toBeGreaterThanOrEqual(6);
  });

  it('refuses credentials written into the config and resolves secrets from named env vars', () => {
    expect(problems({ upstreams: [{ name: 'a', serviceIndex: 'https://user:pw@example.com/v3/index.json' }] })[0]).toMatch(
      /upstreams\[0\]\.serviceIndex: must not contain credentials/,
    );
    const auth = { type: 'basic', username: 'ci', passwordEnv: 'FEED_PW' };
    expect(problems({ upstreams: [{ name: 'a', serviceIndex: 'https://example.com/v3/index.json', auth }] })).toEqual([
      'upstreams[0].auth.passwordEnv: environment variable FEED_PW is not set',
    ]);
    const loaded = validateConfig({ upstreams: [{ name: 'a', serviceIndex: 'https://example.com/v3/index.json', auth }] }, { FEED_PW: 's3cret' });
    expect(loaded.secrets.get('a')).toEqual({ type: 'basic', username: 'ci', password: 's3cret' });
    expect(JSON.stringify(loaded.config)).not.toContain('s3cret');
  });

  it('applies environment overrides', () => {
    const { config } = validateConfig({}, {
      NUPROXY_PORT: '6001',
      NUPROXY_HOST: '127.0.0.1',
      NUPROXY_REDIS_URL: 'redis://cache:6379',
      NUPROXY_LOG_LEVEL: 'debug',
      NUPROXY_CACHE_DIR: '/var/cache/nuproxy',
      NUPROXY_PUBLIC_URL: 'https://nuget.example.com/',
    });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 6001 });
    expect(config.cache.metadata).toBe('redis://cache:6379');
    expect(config.cache.dir).toBe('/var/cache/nuproxy');
    expect(config.log.level).toBe('debug');
    expect(config.publicUrl).toBe('https://nuget.example.com/');
    expect(problems({}, { NUPROXY_PORT: 'x' })[0]).toMatch(/NUPROXY_PORT/);
  });

  it('takes workers as a number or "auto", from the file or NUPROXY_WORKERS', () => {
    expect(validateConfig({}).config.workers).toBe(1);
    expect(validateConfig({ workers: 4 }).config.workers).toBe(4);
    expect(validateConfig({ workers: 'auto' }).config.workers).toBe('auto');
    expect(validateConfig({ workers: 1 }, { NUPROXY_WORKERS: '3' }).config.workers).toBe(3);
    expect(validateConfig({}, { NUPROXY_WORKERS: 'auto' }).config.workers).toBe('auto');
    expect(problems({ workers: 0 })[0]).toMatch(/^workers/);
    expect(problems({ workers: 'many' })[0]).toMatch(/^workers/);
    expect(problems({}, { NUPROXY_WORKERS: 'two' })[0]).toMatch(/NUPROXY_WORKERS/);
  });

  it('is frozen after validation', () => {
    const { config } = validateConfig({});
    expect(Object.isFrozen(config.cache.freshness)).toBe(true);
  });

  it('reads YAML and JSON files, and names the file in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuproxy-config-'));
    try {
      const yamlFile = join(dir, 'nuproxy.yaml');
      writeFileSync(yamlFile, 'listen:\n  port: 6100\ncache:\n  freshness: { versions: 90s }\nupstreams:\n  - name: company\n    serviceIndex: https://pkgs.example.com/v3/index.json\n');
      const fromYaml = loadConfig(yamlFile, {});
      expect(fromYaml.config.listen.port).toBe(6100);
      expect(fromYaml.config.cache.freshness.versions).toBe(90_000);
      expect(fromYaml.config.upstreams.map((u) => u.name)).toEqual(['company']);

      const jsonFile = join(dir, 'nuproxy.json');
      writeFileSync(jsonFile, JSON.stringify({ listen: { port: 6200 }, publicUrl: 'https://nuget.example.com/', upstreams: [{ name: 'json-feed', serviceIndex: 'https://pkgs.example.com/v3/index.json' }] }));
      const fromJson = loadConfig(jsonFile, {});
      expect(fromJson.config.listen.port).toBe(6200);
      expect(fromJson.config.publicUrl).toBe('https://nuget.example.com/');
      expect(fromJson.config.upstreams[0]!.name).toBe('json-feed');
      // and a .json file is read as JSON, not as YAML (which would take this)
      const yamlInJson = join(dir, 'yaml-inside.json');
      writeFileSync(yamlInJson, 'listen:\n  port: 6201\n');
      expect(() => loadConfig(yamlInJson, {})).toThrow(/yaml-inside\.json.*cannot parse/s);
      // NUPROXY_CONFIG names the file when no path is given; the environment still overrides it
      expect(loadConfig(undefined, { NUPROXY_CONFIG: yamlFile, NUPROXY_PORT: '6300' }).config.listen.port).toBe(6300);

      // errors name the file: unreadable, unparsable, invalid
      expect(() => loadConfig(join(dir, 'missing.yaml'), {})).toThrow(/missing\.yaml.*cannot read/s);
      const broken = join(dir, 'broken.json');
      writeFileSync(broken, '{"listen": ');
      expect(() => loadConfig(broken, {})).toThrow(/broken\.json.*cannot parse/s);
      const invalid = join(dir, 'invalid.yaml');
      writeFileSync(invalid, 'listen: { port: eighty }\n');
      expect(() => loadConfig(invalid, {})).toThrow(/invalid\.yaml.*listen\.port/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('upstream id rules and freshness overrides', () => {
    const PRIVATE = 'https://pkgs.example.com/v3/index.json';
    const PUBLIC = 'https://api.nuget.org/v3/index.json';

    it('defaults include, exclude and owns to [] and leaves freshness unset', () => {
      const u = validateConfig({}).config.upstreams[0]!;
      expect(u).toMatchObject({ include: [], exclude: [], owns: [] });
      expect(u.freshness).toBeUndefined();
    });

    it('accepts valid patterns as written', () => {
      const { config } = validateConfig({
        upstreams: [
          { name: 'company', serviceIndex: PRIVATE, owns: ['Contoso.*', 'Fabrikam.Lib'], include: ['*'] },
          { name: 'nuget.org', serviceIndex: PUBLIC, exclude: ['Contoso*', 'Evil.Package'] },
        ],
      });
      expect(config.upstreams[0]).toMatchObject({ owns: ['Contoso.*', 'Fabrikam.Lib'], include: ['*'], exclude: [] });
      expect(config.upstreams[1]).toMatchObject({ exclude: ['Contoso*', 'Evil.Package'], owns: [] });
    });

    it('reports an invalid pattern at its path', () => {
      const p = problems({
        upstreams: [{ name: 'a', serviceIndex: PUBLIC, include: ['Good.*', 'Con*toso'], exclude: ['has space'], owns: [''] }],
      });
      expect(p).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^upstreams\[0\]\.include\[1\]: invalid pattern "Con\*toso"/),
          expect.stringMatching(/^upstreams\[0\]\.exclude\[0\]: invalid pattern "has space"/),
          expect.stringMatching(/^upstreams\[0\]\.owns\[0\]: empty pattern/),
        ]),
      );
      expect(p).toHaveLength(3);
      expect(problems({ upstreams: [{ name: 'a', serviceIndex: PUBLIC, owns: 'Contoso.*' }] })[0]).toMatch(/^upstreams\[0\]\.owns: /);
    });

    it('rejects two upstreams owning overlapping patterns, at the second one, naming both', () => {
      const p = problems({
        upstreams: [
          { name: 'company', serviceIndex: PRIVATE, owns: ['Contoso.*'] },
          { name: 'other', serviceIndex: PUBLIC, owns: ['Fabrikam.*', 'contoso.internal.*'] },
        ],
      });
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/^upstreams\[1\]\.owns\[1\]: /);
      expect(p[0]).toContain('"company"');
      expect(p[0]).toContain('"other"');
      expect(p[0]).toContain('"Contoso.*"');
      expect(p[0]).toContain('"contoso.internal.*"');
    });

    it('lets one upstream own overlapping patterns', () => {
      expect(
        problems({ upstreams: [{ name: 'company', serviceIndex: PRIVATE, owns: ['Contoso.*', 'Contoso.Internal.*', 'Contoso.Lib'] }] }),
      ).toEqual([]);
    });

    it('parses per-upstream freshness overrides to milliseconds, and only the keys given', () => {
      const { config } = validateConfig({
        upstreams: [{ name: 'a', serviceIndex: PUBLIC, freshness: { versions: '5m', search: 30, vulnerabilities: '2h' } }],
      });
      expect(config.upstreams[0]!.freshness).toEqual({ versions: 300_000, search: 30_000, vulnerabilities: 7_200_000 });
      expect(config.cache.freshness.versions).toBe(600_000);
      const p = problems({ upstreams: [{ name: 'a', serviceIndex: PUBLIC, freshness: { versions: 'soon', nuspec: '1m' } }] });
      expect(p).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^upstreams\[0\]\.freshness\.versions: not a duration/),
          expect.stringMatching(/^upstreams\[0\]\.freshness: .*nuspec/),
        ]),
      );
    });
  });

  it('parses durations', () => {
    expect(parseDurationMs(90)).toBe(90_000);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('10m')).toBe(600_000);
    expect(parseDurationMs('7d')).toBe(604_800_000);
    expect(parseDurationMs('1.5h')).toBe(5_400_000);
    expect(parseDurationMs('soon')).toBeUndefined();
    expect(parseDurationMs(-1)).toBeUndefined();
  });
});

describe('config/example-aggregation.yaml', () => {
  it('is a valid config with an owned prefix', () => {
    const raw = parse(readFileSync(new URL('../../../config/example-aggregation.yaml', import.meta.url), 'utf8'));
    const { config } = validateConfig(raw, { FEED_API_KEY: 'k' });
    expect(config.upstreams.map((u) => u.name)).toEqual(['company', 'nuget.org', 'vendor']);
    expect(config.upstreams[0]!.owns).toContain('Contoso.*');
  });
});

describe('publish config', () => {
  const up = (name: string, writable: boolean) => ({ name, serviceIndex: `https://${name}.example/v3/index.json`, writable });
  it('allows at most one writable upstream', () => {
    expect(problems({ upstreams: [up('a', true), up('b', true)] })).toEqual([expect.stringMatching(/^upstreams\[1\]\.writable: only one upstream can be writable; upstreams\[0\] \(a\)/)]);
    expect(problems({ upstreams: [up('a', false), up('b', true)] })).toEqual([]);
  });
  it('checks mapped keys: hashes, the upstream key variable and a writable upstream', () => {
    expect(problems({ upstreams: [up('a', true)], publish: { keyMode: 'mapped' } })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^publish\.keys: /), expect.stringMatching(/^publish\.upstreamKeyEnv: /)]),
    );
    expect(problems({ upstreams: [up('a', true)], publish: { keyMode: 'mapped', keys: [{ name: 'ci', sha256: 'abc' }], upstreamKeyEnv: 'K' } }, { K: 'x' })[0]).toMatch(/^publish\.keys\[0\]\.sha256: /);
    expect(problems({ upstreams: [up('a', false)], publish: { keyMode: 'mapped', keys: [{ name: 'ci', sha256: 'a'.repeat(64) }], upstreamKeyEnv: 'K' } }, { K: 'x' })).toEqual([
      'publish.keyMode: mapped keys need an upstream with writable: true',
    ]);
    expect(problems({ upstreams: [up('a', true)], publish: { keyMode: 'mapped', keys: [{ name: 'ci', sha256: 'a'.repeat(64) }], upstreamKeyEnv: 'K' } })).toEqual([
      'publish.upstreamKeyEnv: environment variable K is not set',
    ]);
  });
  it('parses sizes', () => {
    expect(validateConfig({ publish: { maxPackageSize: '1GB' } }).config.publish.maxPackageSize).toBe(1024 ** 3);
    expect(validateConfig({ publish: { maxPackageSize: 1000 } }).config.publish.maxPackageSize).toBe(1000);
    expect(problems({ publish: { maxPackageSize: 'huge' } })[0]).toMatch(/^publish\.maxPackageSize: not a size/);
  });
});
