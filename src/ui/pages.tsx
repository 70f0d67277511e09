// The dashboard's three pages, rendered on the server. Every value is rendered as JSX text or attribute, which
// hono/jsx escapes: ids, versions and error texts come from upstreams and are untrusted.
import { raw } from 'hono/html';
import type { AdminSummary } from '../admin/routes.js';
import type { StoredId } from '../feed/admin-ops.js';
import { type Figures, formatBytes, formatTime } from './figures.js';
import { Layout } from './layout.js';

function Card(props: { k: string; v: string; id?: string }) {
  return (
    <div class="card" id={props.id}>
      <div class="v">{props.v}</div>
      <div class="k">{props.k}</div>
    </div>
  );
}

export interface OverviewData {
  figures: Figures | undefined;
  summary: AdminSummary;
  errors: Record<string, unknown>[];
}

export function Overview({ figures, summary, errors }: OverviewData) {
  const store = summary.store;
  const pct = store.fraction === null ? undefined : Math.min(100, Math.round(store.fraction * 1000) / 10);
  return (
    <Layout title="Overview">
      <h1>Overview</h1>
      {figures ? (
        <div class="cards">
          <Card id="requests" k="requests" v={String(figures.requests)} />
          <Card id="hit-ratio" k={`hit ratio (${figures.hits} of ${figures.answers} cache answers)`} v={figures.hitRatio === undefined ? '—' : `${(figures.hitRatio * 100).toFixed(1)}%`} />
          <Card id="bytes-served" k="bytes served" v={formatBytes(figures.bytesServed)} />
          <Card id="bytes-fetched" k="bytes fetched from upstreams" v={formatBytes(figures.bytesFetched)} />
        </div>
      ) : (
        <p class="muted">metrics.enabled is false: no request figures.</p>
      )}
      <h2>Store</h2>
      <div class="cards">
        <div class="card" id="store">
          <div class="v">{formatBytes(store.bytes)}{store.maxSize ? ` of ${formatBytes(store.maxSize)}` : ''}</div>
          <div class="k">{store.packages} packages{pct !== undefined ? ` · ${pct}% of cache.maxSize` : ' · no cache.maxSize (unbounded)'}</div>
          {pct !== undefined ? <div class="bar"><i style={`width:${pct}%`} /></div> : ''}
        </div>
      </div>
      <h2>Upstreams</h2>
      <table id="upstreams">
        <thead><tr><th>upstream</th><th>breaker</th><th>writable</th><th>last error</th></tr></thead>
        <tbody>
          {summary.upstreams.map((u) => (
            <tr>
              <td>{u.name}</td>
              <td class={u.circuit.state === 'closed' ? 'ok' : 'bad'}>{u.circuit.state}</td>
              <td>{u.writable ? 'yes' : 'no'}</td>
              <td class="muted">{String((u.circuit as { lastError?: unknown }).lastError ?? '')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Top ids</h2>
      <table id="top-ids">
        <thead><tr><th>id</th><th>requests</th><th>bytes served</th></tr></thead>
        <tbody>
          {summary.topIds.byRequests.slice(0, 10).map((t) => (
            <tr><td><a href={`/ui/packages/${encodeURIComponent(t.id)}`}>{t.id}</a></td><td>{t.requests}</td><td>{formatBytes(t.bytes)}</td></tr>
          ))}
        </tbody>
      </table>
      <h2>Recent errors</h2>
      {errors.length === 0 ? (
        <p class="muted" id="errors">No errors logged.</p>
      ) : (
        <table id="errors">
          <thead><tr><th>time</th><th>message</th><th>details</th></tr></thead>
          <tbody>
            {errors.map((e) => (
              <tr>
                <td>{String(e.time ?? '')}</td>
                <td>{String(e.msg ?? '')}</td>
                <td class="muted">{errorDetail(e)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

/** The useful part of an error line: path, code, message (not the stack). */
function errorDetail(e: Record<string, unknown>): string {
  const err = e.err as { message?: unknown } | string | undefined;
  // (a warn line names its upstream failure in err: a string)
  const msg = typeof err === 'string' ? err : typeof err?.message === 'string' ? err.message : '';
  const status = typeof e.status === 'number' ? String(e.status) : undefined;
  return [status, e.path, e.error, e.upstream, msg].filter((x) => typeof x === 'string' && x.length > 0).join(' · ').slice(0, 400);
}

export interface PackagesData {
  query: string;
  page: number;
  perPage: number;
  total: number;
  ids: StoredId[];
}

export function Packages({ query, page, perPage, total, ids }: PackagesData) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  const link = (p: number): string => `/ui/packages?q=${encodeURIComponent(query)}&page=${p + 1}`;
  return (
    <Layout title="Packages">
      <h1>Packages</h1>
      <form class="inline" method="get" action="/ui/packages">
        <input type="search" name="q" value={query} placeholder="search cached ids" />
        <button type="submit">Search</button>
        <span class="muted" id="count">{total} ids{query ? ` matching “${query}”` : ''} · page {page + 1} of {pages}</span>
      </form>
      <table id="packages">
        <thead><tr><th>id</th><th>version</th><th>size</th><th>upstream</th><th>stored</th><th>last used</th><th>pinned</th></tr></thead>
        <tbody>
          {ids.flatMap((p) =>
            p.versions.map((v, i) => (
              <tr>
                <td>{i === 0 ? <a href={`/ui/packages/${encodeURIComponent(p.id)}`}>{p.id}</a> : ''}</td>
                <td>{v.version}</td>
                <td data-bytes={String(v.bytes)}>{formatBytes(v.bytes)}</td>
                <td>{v.upstream ?? '—'}</td>
                <td>{formatTime(v.storedMs)}</td>
                <td>{formatTime(v.lastUsedMs)}</td>
                <td>{v.pinned ? 'pinned' : ''}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
      <p>
        {page > 0 ? <a href={link(page - 1)}>← previous</a> : ''} {page + 1 < pages ? <a href={link(page + 1)}>next →</a> : ''}
      </p>
    </Layout>
  );
}

export interface IdData {
  id: string;
  stored: StoredId;
  explain: Record<string, any> | undefined;
  explainError: string | undefined;
  adminOn: boolean;
  nonce: string;
}

// The purge button: the token typed here is kept in sessionStorage (this tab only) and sent as a Bearer header;
// no cookie, so no request of another site can carry it (no CSRF).
const PURGE_SCRIPT = `
const f = document.getElementById('purge');
const out = document.getElementById('purge-result');
const t = document.getElementById('token');
t.value = sessionStorage.getItem('nuproxy-admin-token') || '';
f.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem('nuproxy-admin-token', t.value);
  const q = document.getElementById('with-packages').checked ? '?packages=true' : '';
  out.textContent = 'purging…';
  try {
    const r = await fetch('/admin/purge/' + encodeURIComponent(f.dataset.id) + q, { method: 'POST', headers: t.value ? { authorization: 'Bearer ' + t.value } : {} });
    const b = await r.json();
    out.className = r.ok ? 'ok' : 'bad';
    out.textContent = r.ok
      ? 'Purged ' + b.id + ': ' + b.documents.length + ' metadata documents' + (b.packages.length ? ', packages ' + b.packages.join(', ') : '') + ' removed.'
      : 'Refused (' + r.status + '): ' + b.message;
  } catch (e) {
    out.className = 'bad';
    out.textContent = 'Failed: ' + e;
  }
});
`;

export function IdPage({ id, stored, explain, explainError, adminOn, nonce }: IdData) {
  const ups = (explain?.upstreams ?? []) as { name: string; allowed: boolean; status: string; versions?: string[]; cache?: string; error?: string }[];
  const versions = (explain?.versions ?? []) as { version: string; servedBy: string }[];
  return (
    <Layout title={id}>
      <h1>{id}</h1>
      <h2>Stored</h2>
      {stored.versions.length === 0 ? (
        <p class="muted" id="stored">Nothing of this id is stored.</p>
      ) : (
        <table id="stored">
          <thead><tr><th>version</th><th>size</th><th>upstream</th><th>stored</th><th>last used</th><th>pinned</th></tr></thead>
          <tbody>
            {stored.versions.map((v) => (
              <tr><td>{v.version}</td><td>{formatBytes(v.bytes)}</td><td>{v.upstream ?? '—'}</td><td>{formatTime(v.storedMs)}</td><td>{formatTime(v.lastUsedMs)}</td><td>{v.pinned ? 'pinned' : ''}</td></tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Explain</h2>
      {explainError ? <p class="bad">{explainError}</p> : ''}
      {explain ? (
        <>
          <p class="muted">owner: {String(explain.owner ?? 'none')}{explain.ownerPattern ? ` (pattern ${String(explain.ownerPattern)})` : ''}</p>
          <table id="explain-upstreams">
            <thead><tr><th>upstream</th><th>allowed</th><th>status</th><th>versions listed</th><th>cache</th></tr></thead>
            <tbody>
              {ups.map((u) => (
                <tr>
                  <td>{u.name}</td><td>{u.allowed ? 'yes' : 'no'}</td><td class={u.status === 'failed' ? 'bad' : ''}>{u.status}{u.error ? `: ${u.error}` : ''}</td>
                  <td>{(u.versions ?? []).join(', ')}</td><td>{u.cache ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Versions served</h2>
          <table id="explain-versions">
            <thead><tr><th>version</th><th>served by</th></tr></thead>
            <tbody>{versions.map((v) => <tr><td>{v.version}</td><td>{v.servedBy}</td></tr>)}</tbody>
          </table>
        </>
      ) : (
        ''
      )}
      <h2>Purge</h2>
      {adminOn ? (
        <>
          <form id="purge" class="inline" data-id={id}>
            <input id="token" type="password" autocomplete="off" placeholder="admin token" />
            <label><input id="with-packages" type="checkbox" /> also its packages</label>
            <button type="submit">Purge {id}</button>
          </form>
          <p id="purge-result" />
          <script nonce={nonce}>{raw(PURGE_SCRIPT)}</script>
        </>
      ) : (
        <p class="muted">The admin API is off: set admin.tokens to purge from here.</p>
      )}
    </Layout>
  );
}
