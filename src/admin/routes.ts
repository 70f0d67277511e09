// The admin API under /admin (issue #14): JSON in, JSON out, behind an admin token (auth.ts). Off (404 with a
// JSON body saying how to turn it on) when admin.tokens is empty. Each action is logged at info with the token's
// name, the action and its arguments; never the token.
import { Hono, type Context } from 'hono';
import type { AdminOps } from '../feed/admin-ops.js';
import type { Feed } from '../feed/feed.js';
import type { IdTally } from '../http/id-tally.js';
import { badRequest, notFound } from '../http/errors.js';
import { parseId } from '../http/input.js';
import type { Logger, Redactor } from '../log.js';
import { withoutSecrets } from '../http/redact.js';
import type { Authenticator } from '../access/authenticator.js';
import { access, refuseAfterDelay } from '../http/access.js';
import type { TopIds } from './cluster-tally.js';

const UPSTREAM_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** How many ids the summary lists by requests and by bytes. */
export const TOP_IDS = 20;

export interface AdminOptions {
  /** Access control: a token with the admin permission (access.tokens, or the older admin.tokens); off without. */
  auth: Authenticator | undefined;
  ops: AdminOps;
  feed: Feed;
  tally: IdTally | undefined;
  /** With workers: the top ids of every worker's tally (cluster-tally.ts); else this process's tally. */
  topIds?: TopIds | undefined;
  logger: Logger;
  /** Cut out of the answers (an upstream's last error is upstream text). */
  secrets: Redactor;
}

type Env = { Variables: { adminName: string }; Bindings: { incoming?: Parameters<typeof access>[1] } };

/** The summary the API answers and the dashboard's overview shows. */
export interface AdminSummary {
  store: { bytes: number; packages: number; maxSize: number | null; fraction: number | null };
  topIds: ReturnType<IdTally['top']>;
  upstreams: ReturnType<Feed['upstreamHealth']>;
}

export async function adminSummary(opts: Pick<AdminOptions, 'ops' | 'feed' | 'tally' | 'topIds' | 'secrets'>): Promise<AdminSummary> {
  const store = await opts.ops.store();
  const top = opts.topIds ? await opts.topIds(TOP_IDS) : (opts.tally?.top(TOP_IDS) ?? { byRequests: [], byBytes: [] });
  return {
    store: { bytes: store.bytes, packages: store.packages, maxSize: store.maxSize || null, fraction: store.maxSize > 0 ? store.bytes / store.maxSize : null },
    topIds: top,
    upstreams: withoutSecrets(opts.feed.upstreamHealth(), opts.secrets),
  };
}

export function createAdminRoutes(opts: AdminOptions): Hono<Env> {
  const app = new Hono<Env>();
  const log = opts.logger.child({ component: 'admin' });
  const auth = opts.auth?.grants('admin') ? opts.auth : undefined;

  app.use('*', async (c, next) => {
    if (!auth) {
      return c.json({ error: 'not_found', message: 'the admin API is off: give a token the admin permission (access.tokens: [{ name, sha256, permissions: [admin] }]; nuproxy hash-key prints the SHA-256 of a token) to turn it on' }, 404);
    }
    const incoming = c.env?.incoming;
    if (!incoming) throw new Error('the admin API needs the Node server bindings');
    const a = access(auth, incoming, 'admin', { apiKeyIsOurs: true });
    if ('refuse' in a) return refuseAfterDelay(a);
    c.set('adminName', a.principal.name);
    await next();
  });

  const audit = (c: Context<Env>, action: string, args: Record<string, unknown>): void => {
    log.info({ admin: c.get('adminName'), action, ...args }, 'admin action');
  };
  const flag = (c: Context<Env>, name: string): boolean => {
    const v = c.req.query(name);
    if (v === undefined || v === 'false' || v === '0') return false;
    if (v === '' || v === 'true' || v === '1') return true;
    throw badRequest(`${name} must be true or false`);
  };

  app.post('/purge/:id', async (c) => {
    const id = parseId(c.req.param('id'));
    const packages = flag(c, 'packages');
    audit(c, 'purge', { id, packages });
    return c.json(await opts.ops.purge(id, packages));
  });

  app.post('/invalidate/:upstream', async (c) => {
    const upstream = c.req.param('upstream');
    if (!UPSTREAM_NAME.test(upstream)) throw badRequest('invalid upstream name');
    if (!opts.feed.upstreamHealth().some((u) => u.name === upstream)) throw notFound(`no upstream named ${upstream}`);
    audit(c, 'invalidate', { upstream });
    const seen = opts.tally?.top(Number.MAX_SAFE_INTEGER).byRequests.map((x) => x.id) ?? [];
    return c.json(await opts.ops.invalidateUpstream(upstream, seen));
  });

  app.post('/prune', async (c) => {
    const dryRun = flag(c, 'dryRun');
    audit(c, 'prune', { dryRun });
    return c.json(await opts.ops.prune(dryRun));
  });

  app.get('/summary', async (c) => {
    audit(c, 'summary', {});
    return c.json(await adminSummary(opts));
  });

  return app;
}
