import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { clusterSeeds } from '../../../src/config/redis-seeds.js';
import { isNuproxyError } from '../../../src/errors.js';

function metadataProblems(metadata: string): string[] {
  try {
    validateConfig({ cache: { metadata } }, {});
    return [];
  } catch (err) {
    if (isNuproxyError(err, 'CONFIG_INVALID')) return err.details.problems as string[];
    throw err;
  }
}

describe('cache.metadata: a Redis Cluster seed list', () => {
  it('turns each seed into a redis:// URL carrying the auth and the scheme', () => {
    expect(clusterSeeds('redis+cluster://10.0.0.1:7000,redis-b:7001')).toEqual(['redis://10.0.0.1:7000', 'redis://redis-b:7001']);
    expect(clusterSeeds('rediss+cluster://u:p%40ss@h1:7000,h2:7001/')).toEqual(['rediss://u:p%40ss@h1:7000', 'rediss://u:p%40ss@h2:7001']);
    expect(clusterSeeds('redis+cluster://[::1]:7000')).toEqual(['redis://[::1]:7000']);
    expect(clusterSeeds('redis://h:6379')).toBeUndefined();
  });

  it('refuses seeds without a port, empty seeds, bad ports and paths', () => {
    for (const bad of ['redis+cluster://h1', 'redis+cluster://h1:7000,', 'redis+cluster://h1:7000,,h2:1', 'redis+cluster://h1:70000', 'redis+cluster://h1:0', 'redis+cluster://h1:7000/db', 'redis+cluster://', 'redis+cluster://a b:1']) {
      expect(clusterSeeds(bad), bad).toBeUndefined();
      expect(metadataProblems(bad), bad).toEqual([expect.stringMatching(/^cache\.metadata: .*redis\+cluster:\/\//)]);
    }
  });

  it('is accepted by the config as it stands, and redis:// and memory still are', () => {
    expect(validateConfig({ cache: { metadata: 'redis+cluster://h1:7000,h2:7001' } }, {}).config.cache.metadata).toBe('redis+cluster://h1:7000,h2:7001');
    expect(metadataProblems('redis://h:6379')).toEqual([]);
    expect(metadataProblems('memory')).toEqual([]);
  });
});
