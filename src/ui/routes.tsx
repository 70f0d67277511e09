// The dashboard at /ui (issue #14): three server-rendered pages over what the admin API and the metrics already
// know. Its own routes: nothing here runs on a package or metadata request.
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { adminSummary, type AdminOptions } from '../admin/routes.js';
import { withoutSecrets } from '../http/redact.js';
import { parseId } from '../http/input.js';
import { recentErrors, type Logger } from '../log.js';
import { figuresOf } from './figures.js';
import { IdPage, Overview, Packages } from './pages.js';
import type { Authenticator } from '../access/authenticator.js';
import { access, refuseAfterDelay } from '../http/access.js';

const PER_PAGE = 50;
const MAX_QUERY = 100;

export interface UiOptions extends Pick<AdminOptions, 'ops' | 'feed' | 'tally' | 'topIds' | 'secrets'> {
  /** The root logger: its recent error lines are shown. */
  rootLogger: Logger;
  /** The metrics' scrape (absent with metrics.enabled false). */
  scrape: (() => Promise<{ body: string }>) | undefined;
  /** Access control (off when undefined); some token with the admin permission: the purge button is shown. */
  auth: Authenticator | undefined;
  /**
   * access.anonymous: with anonymous reads the pages are open as before (they show what any reader may fetch);
   * without, they need a token with the admin permission (HTTP Basic: the browser asks for it).
   */
  anonymousReads: boolean;
}

export function createUiRoutes(opts: UiOptions): Hono<{ Variables: { nonce: string } }> {
  const app = new Hono<{ Variables: { nonce: string } }>();
  const { ops, feed, secrets } = opts;
  const adminOn = opts.auth?.grants('admin') ?? false;
  const guarded = opts.auth !== undefined && !opts.anonymousReads ? opts.auth : undefined;

  // inline CSS and the one inline script (by nonce); nothing else may load or run; the pages are never framed
  app.use('*', async (c, next) => {
    // /ui/ and /ui/packages/ are the same pages: one address each (relative links stay right)
    if (c.req.path.length > 1 && c.req.path.endsWith('/')) return c.redirect(c.req.path.replace(/\/+$/, ''), 301);
    if (guarded) {
      const incoming = (c.env as { incoming?: Parameters<typeof access>[1] } | undefined)?.incoming;
      if (!incoming) throw new Error('the dashboard needs the Node server bindings');
      const a = access(guarded, incoming, 'admin', { apiKeyIsOurs: true });
      if ('refuse' in a) return refuseAfterDelay(a);
    }
    const nonce = randomBytes(12).toString('base64');
    c.set('nonce', nonce);
    await next();
    c.header('content-security-policy', `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
    c.header('x-frame-options', 'DENY');
    c.header('cache-control', 'no-store');
    c.header('referrer-policy', 'no-referrer');
  });

  app.get('/', async (c) => {
    const [summary, text] = await Promise.all([adminSummary(opts), opts.scrape ? opts.scrape().then((m) => m.body) : Promise.resolve(undefined)]);
    const errors = withoutSecrets(recentErrors(opts.rootLogger), secrets);
    return c.html(<Overview figures={text === undefined ? undefined : figuresOf(text)} summary={summary} errors={errors} />);
  });

  app.get('/packages', async (c) => {
    const query = (c.req.query('q') ?? '').slice(0, MAX_QUERY);
    const pageNo = Number.parseInt(c.req.query('page') ?? '1', 10);
    const page = Number.isSafeInteger(pageNo) && pageNo >= 1 ? pageNo - 1 : 0;
    const r = await ops.packages(query, page, PER_PAGE);
    return c.html(<Packages query={query} page={page} perPage={PER_PAGE} total={r.total} ids={r.ids} />);
  });

  app.get('/packages/:id', async (c) => {
    const id = parseId(c.req.param('id'));
    const stored = await ops.storedId(id);
    let explain: Record<string, unknown> | undefined;
    let explainError: string | undefined;
    try {
      explain = withoutSecrets(await feed.explain(id), secrets);
    } catch (err) {
      explainError = secrets.redact(`explain failed: ${(err as Error).message}`);
    }
    return c.html(<IdPage id={id} stored={stored} explain={explain} explainError={explainError} adminOn={adminOn} nonce={c.get('nonce')} />);
  });

  return app;
}
