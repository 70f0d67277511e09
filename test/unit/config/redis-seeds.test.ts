import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { clusterSeeds, redisTarget, sentinelTarget } from '../../../src/config/redis-seeds.js';
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

describe('cache.metadata: Redis Sentinel', () => {
  it('reads the sentinels, the master name, the nodes\' auth and the sentinels\' own', () => {
    expect(sentinelTarget('redis+sentinel://10.0.0.1:26379,sentinel-b:26380/mymaster')).toEqual({
      kind: 'sentinel',
      masterName: 'mymaster',
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-b', port: 26380 }],
      tls: false,
    });
    expect(sentinelTarget('rediss+sentinel://app:p%40ss@[::1]:26379/cache.main?sentinelPassword=s%26p&sentinelUsername=watch')).toEqual({
      kind: 'sentinel',
      masterName: 'cache.main',
      sentinels: [{ host: '::1', port: 26379 }],
      tls: true,
      username: 'app',
      password: 'p@ss',
      sentinelUsername: 'watch',
      sentinelPassword: 's&p',
    });
    // a password alone (requirepass, user "default")
    expect(sentinelTarget('redis+sentinel://:secret@h:26379/m')).toMatchObject({ password: 'secret' });
    expect(sentinelTarget('redis+sentinel://:secret@h:26379/m')).not.toHaveProperty('username');
    expect(sentinelTarget('redis://h:6379')).toBeUndefined();
    expect(sentinelTarget('redis+cluster://h:7000')).toBeUndefined();
  });

  it('refuses sentinels without a port, a missing master name, unknown parameters and bad escapes', () => {
    for (const bad of [
      'redis+sentinel://h1/m',
      'redis+sentinel://h1:26379',
      'redis+sentinel://h1:26379/',
      'redis+sentinel://h1:26379,/m',
      'redis+sentinel://h1:0/m',
      'redis+sentinel://h1:26379/m/x',
      'redis+sentinel://h1:26379/m?sentinelPasword=x',
      'redis+sentinel://h1:26379/m?db=2',
      'redis+sentinel://u:%zz@h1:26379/m',
      'redis+sentinel://a b:1/m',
      'redis+sentinel:///m',
    ]) {
      expect(sentinelTarget(bad), bad).toBeUndefined();
      expect(metadataProblems(bad), bad).toEqual([expect.stringMatching(/^cache\.metadata: .*redis\+sentinel:\/\/host1:port1,host2:port2\/<masterName>/)]);
    }
  });

  it('never puts a password in the config error', () => {
    const problems = metadataProblems('redis+sentinel://u:hunter2-Secret@h1:26379/m?sentinelPassword=other-Secret&typo=1');
    expect(problems).toHaveLength(1);
    expect(problems.join()).not.toMatch(/Secret/);
  });

  it('is accepted by the config as it stands; redisTarget picks the form', () => {
    const url = 'redis+sentinel://u:p@h1:26379,h2:26379/m?sentinelPassword=s';
    expect(validateConfig({ cache: { metadata: url } }, {}).config.cache.metadata).toBe(url);
    expect(redisTarget(url)).toEqual(sentinelTarget(url));
    expect(redisTarget('redis+cluster://h1:7000')).toEqual(['redis://h1:7000']);
    expect(redisTarget('redis://h:6379')).toBe('redis://h:6379');
  });
});
