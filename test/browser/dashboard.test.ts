// The dashboard at /ui in a real browser: Debian's headless Chromium driven by playwright-core, against a real
// nuproxy with real traffic behind it (a test upstream, package and metadata requests made first). Each page is
// loaded and what it shows is checked against that traffic; purge with the token removes the id and the page says
// so, without it the purge is refused. Screenshots go to test-output/dashboard/ (printed); NUPROXY_DOCS_SCREENSHOT=1
// also writes docs/dashboard.png (the README's).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { chromium, type Browser, type Page } from 'playwright-core';
import { makeNupkg } from '../support/nupkg.js';
import { startTestUpstream, type TestUpstream } from '../support/upstream.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { needTool } from '../support/need.js';

const CHROMIUM = '/usr/bin/chromium';
const noChromium = needTool('chromium', existsSync(CHROMIUM), 'the dashboard browser tests');
const TOKEN = 'dash-token-51c0de77aa13';
const OUT = new URL('../../test-output/dashboard/', import.meta.url).pathname;
const DOCS = new URL('../../docs/', import.meta.url).pathname;

async function get(url: string): Promise<void> {
  const res = await request(url);
  await res.body.dump();
  expect(res.statusCode, url).toBe(200);
}

describe.skipIf(noChromium)('dashboard in Chromium', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let browser: Browser;
  let page: Page;
  const lib = makeNupkg({ id: 'Dash.Lib', version: '1.2.0', padBytes: 30_000 });
  const tool = makeNupkg({ id: 'Dash.Tool', version: '3.0.0' });

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    console.log(`[dashboard] screenshots: ${OUT}`);
    upstream = await startTestUpstream({ packages: [lib, makeNupkg({ id: 'Dash.Lib', version: '1.1.0' }), tool] });
    proxy = await startTestProxy({
      upstreams: [{ name: 'nuget', serviceIndex: upstream.serviceIndexUrl, retries: 1, timeouts: { connect: '2s', headers: '5s', body: '5s' } }],
      config: { admin: { tokens: [{ name: 'dash', sha256: createHash('sha256').update(TOKEN).digest('hex') }] }, cache: { maxSize: '10MB', pins: ['dash.tool'] } },
    });
    // the traffic: the service index, a version list, two packages (misses), then the first twice more (hits)
    await get(`${proxy.url}v3/index.json`);
    await get(`${proxy.url}v3/flat/dash.lib/index.json`);
    await get(`${proxy.url}v3/flat/dash.lib/1.2.0/dash.lib.1.2.0.nupkg`);
    await get(`${proxy.url}v3/flat/dash.tool/3.0.0/dash.tool.3.0.0.nupkg`);
    // stored a moment after the client got the last byte
    for (let i = 0; i < 100; i++) {
      const res = await request(`${proxy.url}admin/summary`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const s = (await res.body.json()) as { store: { packages: number } };
      if (s.store.packages === 2) break;
      await new Promise((r) => setTimeout(r, 30));
    }
    // two hits of the stored package
    for (let i = 0; i < 2; i++) await get(`${proxy.url}v3/flat/dash.lib/1.2.0/dash.lib.1.2.0.nupkg`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // a fresh profile: playwright's own temp one (it refuses --user-data-dir with launch())
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
  };

  it('overview: requests, hit ratio, bytes served vs fetched, upstream breaker, store against maxSize', async () => {
    const res = await page.goto(`${proxy.url}ui`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    // 6 requests made: index, version list, 3 + 1 packages (the summary calls are admin requests, counted too)
    const requests = Number(await page.locator('#requests .v').textContent());
    expect(requests).toBeGreaterThanOrEqual(6);
    // cache answers: the service index, the version list, 2 package misses, 2 package hits
    await expect(page.locator('#hit-ratio .v').textContent()).resolves.toBe('33.3%');
    await expect(page.locator('#hit-ratio .k').textContent()).resolves.toContain('2 of 6');
    expect(await page.locator('#bytes-served .v').textContent()).toMatch(/KB$/);
    expect(await page.locator('#bytes-fetched .v').textContent()).toMatch(/KB$/);
    await expect(page.locator('#upstreams tbody tr td').first().textContent()).resolves.toBe('nuget');
    await expect(page.locator('#upstreams tbody tr td').nth(1).textContent()).resolves.toBe('closed');
    const store = await page.locator('#store').textContent();
    expect(store).toContain('of 10.0 MB');
    expect(store).toContain('2 packages');
    await expect(page.locator('#top-ids tbody tr td').first().textContent()).resolves.toBe('dash.lib');
    // its version list and three package requests
    await expect(page.locator('#top-ids tbody tr td').nth(1).textContent()).resolves.toBe('4');
    await shot('overview');
    if (process.env.NUPROXY_DOCS_SCREENSHOT === '1') await copyFile(join(OUT, 'overview.png'), join(DOCS, 'dashboard.png'));
  });

  it('packages: each cached id with its version, size, upstream and pin; search narrows the list', async () => {
    await page.goto(`${proxy.url}ui/packages`);
    const rows = page.locator('#packages tbody tr');
    expect(await rows.count()).toBe(2);
    const first = await rows.nth(0).locator('td').allTextContents();
    expect(first[0]).toBe('dash.lib');
    expect(first[1]).toBe('1.2.0');
    const bytes = Number(await rows.nth(0).locator('td').nth(2).getAttribute('data-bytes'));
    expect(bytes).toBeGreaterThanOrEqual(lib.length); // the .nupkg and its .nuspec
    expect(first[3]).toBe('nuget');
    expect(first[6]).toBe('');
    const second = await rows.nth(1).locator('td').allTextContents();
    expect(second.slice(0, 2)).toEqual(['dash.tool', '3.0.0']);
    expect(second[6]).toBe('pinned');
    await shot('packages');
    await page.fill('input[name=q]', 'tool');
    await page.click('form button[type=submit]');
    await page.waitForURL(/q=tool/);
    expect(await page.locator('#packages tbody tr').count()).toBe(1);
    await expect(page.locator('#count').textContent()).resolves.toContain('1 ids');
  });

  it('an id: stored versions and the explain table; purge without the token is refused, with it the id goes', async () => {
    await page.goto(`${proxy.url}ui/packages/Dash.Lib`);
    await expect(page.locator('h1').textContent()).resolves.toBe('dash.lib');
    const ex = await page.locator('#explain-upstreams tbody tr td').allTextContents();
    expect(ex.slice(0, 3)).toEqual(['nuget', 'yes', 'listed']);
    expect(ex[3]).toBe('1.1.0, 1.2.0');
    expect(await page.locator('#explain-versions tbody tr').count()).toBe(2);
    await expect(page.locator('#explain-versions tbody tr td').nth(1).textContent()).resolves.toBe('nuget');
    await shot('id');

    await page.fill('#token', 'not-the-token');
    await page.click('#purge button');
    await expect.poll(() => page.locator('#purge-result').textContent()).toMatch(/^Refused \(401\)/);
    const still = await request(`${proxy.url}v3/flat/dash.lib/1.2.0/dash.lib.1.2.0.nupkg`, { method: 'HEAD' });
    expect(still.headers['x-nuproxy-cache']).toBe('hit');
    await still.body.dump();

    await page.fill('#token', TOKEN);
    await page.check('#with-packages');
    await page.click('#purge button');
    await expect.poll(() => page.locator('#purge-result').textContent()).toMatch(/^Purged dash\.lib: 1 metadata documents, packages 1\.2\.0 removed\.$/);
    await shot('id-purged');
    await page.reload();
    await expect(page.locator('#stored').textContent()).resolves.toBe('Nothing of this id is stored.');
    // the token was kept for this tab only
    expect(await page.evaluate("sessionStorage.getItem('nuproxy-admin-token')")).toBe(TOKEN);
  });

  it('escapes what upstreams name: an id with markup characters is refused, never rendered', async () => {
    const res = await page.goto(`${proxy.url}ui/packages/${encodeURIComponent('<script>x</script>')}`);
    expect(res?.status()).toBe(400);
    expect(await page.locator('script').count()).toBe(0);
  });
});
