// The overview's figures, read from the metrics' own scrape text (with workers, the primary's sum over all of
// them): the dashboard counts nothing itself. A few lines of parsing, bounded by what prom-client writes.

export interface Figures {
  requests: number;
  /** Cache answers that were hits, over all cache answers (undefined before any). */
  hitRatio: number | undefined;
  hits: number;
  answers: number;
  bytesServed: number;
  bytesFetched: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/;

/** Sums of the families the overview shows (samples of other families are skipped). */
export function figuresOf(text: string): Figures {
  const f: Figures = { requests: 0, hitRatio: undefined, hits: 0, answers: 0, bytesServed: 0, bytesFetched: 0 };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.length === 0) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    switch (m[1]) {
      case 'nuproxy_http_requests_total':
        f.requests += value;
        break;
      case 'nuproxy_cache_answers_total':
        f.answers += value;
        if (m[2]?.includes('outcome="hit"')) f.hits += value;
        break;
      case 'nuproxy_http_response_bytes_total':
        f.bytesServed += value;
        break;
      case 'nuproxy_upstream_fetched_bytes_total':
        f.bytesFetched += value;
        break;
    }
  }
  f.hitRatio = f.answers > 0 ? f.hits / f.answers : undefined;
  return f;
}

/** 1536 → "1.5 KB" (powers of 1024, as cache.maxSize reads them). */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatTime(ms: number | undefined): string {
  return ms === undefined || ms <= 0 ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}
