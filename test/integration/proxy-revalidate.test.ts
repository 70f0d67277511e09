import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { get } from '../support/http.js';

describe('metadata freshness and revalidation', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = await startTestUpstream({ packages: [makeNupkg({ id: 'Fresh.Lib', version: '1.0.0' })] });
    // versions go stale at once; registration stays fresh for the test's duration
    proxy = await startTestProxy({ upstreams: [upstream.serviceIndexUrl], config: { cache: { freshness: { versions: '1ms', registration: '1h' } } } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('revalidates stale metadata with the upstream validators; a 304 keeps the stored body', async () => {
    const path = '/v3-flatcontainer/fresh.lib/index.json';
    const first = await get(`${proxy.url}v3/flat/fresh.lib/index.json`);
    expect(first.headers['x-nuproxy-cache']).toBe('miss');
    const second = await get(`${proxy.url}v3/flat/fresh.lib/index.json`);
    expect(second.headers['x-nuproxy-cache']).toBe('revalidated');
    expect(second.text).toBe(first.text);
    const conditional = upstream.requests.filter((r) => r.path === path).at(-1)!;
    expect(conditional.headers['if-none-match'] ?? conditional.headers['if-modified-since']).toBeTruthy();
  });

  it('picks up a new version at the next revalidation', async () => {
    upstream.addPackage(makeNupkg({ id: 'Fresh.Lib', version: '1.1.0' }));
    const r = await get(`${proxy.url}v3/flat/fresh.lib/index.json`);
    expect(r.json()).toEqual({ versions: ['1.0.0', '1.1.0'] });
  });

  it('serves fresh registration from the store without asking the upstream registration again', async () => {
    const url = `${proxy.url}v3/registration/semver2/fresh.lib/index.json`;
    await get(url);
    const before = upstream.hits(/registration5-gz-semver2\/fresh\.lib\/index\.json/);
    await get(url);
    expect(upstream.hits(/registration5-gz-semver2\/fresh\.lib\/index\.json/)).toBe(before);
  });

  it('answers a client If-None-Match with 304', async () => {
    const url = `${proxy.url}v3/registration/semver2/fresh.lib/index.json`;
    const r = await get(url);
    expect((await get(url, { 'if-none-match': r.headers.etag as string })).status).toBe(304);
  });
});
