// Progress of a long export or import: a redrawn bar on a terminal, lines in a log.
export interface ProgressSink {
  start(label: string, total: number): void;
  update(done: number, note?: string): void;
  end(): void;
}

export const silentProgress: ProgressSink = { start() {}, update() {}, end() {} };

/** A redrawn bar on a terminal; on anything else a line every ~10%. */
export function streamProgress(out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }): ProgressSink {
  let label = '';
  let total = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  let done = 0;
  let note = '';
  let active = false;
  const tty = out.isTTY === true;
  const draw = (): void => {
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    const width = 24;
    const filled = Math.round((pct / 100) * width);
    const text = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)}${note ? ` ${note}` : ''}`;
    const cols = Math.max(20, (out.columns ?? 100) - 1);
    out.write(`\r\x1b[K${text.length > cols ? text.slice(0, cols) : text}`);
  };
  return {
    start(l, t) {
      label = l;
      total = t;
      done = 0;
      note = '';
      lastDraw = 0;
      lastDecile = -1;
      active = true;
      if (tty) draw();
      else {
        out.write(`${label}: 0% of ${formatBytes(total)}\n`);
        lastDecile = 0;
      }
    },
    update(d, n) {
      if (!active) return;
      done = d;
      if (n !== undefined) note = n;
      if (tty) {
        const now = Date.now();
        if (now - lastDraw >= 100) {
          lastDraw = now;
          draw();
        }
        return;
      }
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (decile > lastDecile && decile < 10) {
        lastDecile = decile;
        out.write(`${label}: ${decile * 10}% (${formatBytes(done)} of ${formatBytes(total)})\n`);
      }
    },
    end() {
      if (!active) return;
      active = false;
      done = total;
      if (tty) {
        draw();
        out.write('\n');
      } else out.write(`${label}: 100% (${formatBytes(total)})\n`);
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

