// Result model, medians, the stdout tables, results.json and the SVG chart (hand-written, no dependency).

export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
}

/** A target of the issue, checked against a figure of this run. */
export interface Check {
  scenario: string;
  label: string;
  op: '>=' | '<=' | '==' | '<';
  target: number;
  /** Median over the runs. */
  value: number;
  /** The per-run values the median is taken over. */
  runs: number[];
  unit: string;
  pass: boolean;
}

export interface ScenarioOutput {
  tables: Table[];
  checks: Check[];
  notes: string[];
  /** Raw figures for results.json. */
  data: Record<string, unknown>;
}

export interface ScenarioResult extends ScenarioOutput {
  name: string;
  title: string;
  status: 'ok' | 'failed' | 'timeout';
  error?: string;
  seconds: number;
  /** Share of all CPUs busy with other work just before the scenario started (0..1). */
  busyBefore?: number;
  /** The same, just after it ended and everything it started was stopped. */
  busyAfter?: number;
  /** CPU share (0..1 of all CPUs) used by processes outside the bench's tree while the scenario ran: mean, worst second. */
  otherCpu?: { mean: number; peak: number };
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export function check(scenario: string, label: string, runs: number[], op: Check['op'], target: number, unit = '×'): Check {
  const value = median(runs);
  const pass =
    Number.isFinite(value) &&
    (op === '>=' ? value >= target : op === '<=' ? value <= target : op === '<' ? value < target : value === target);
  return { scenario, label, op, target, value, runs, unit, pass };
}

export function fmt(n: number, digits?: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (digits === undefined && Number.isInteger(n) && Math.abs(n) < 100) return String(n);
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function fmtBytes(n: number): string {
  if (n >= 1024 ** 2) return `${fmt(n / 1024 ** 2, 1)} MiB`;
  if (n >= 1024) return `${fmt(n / 1024, 1)} KiB`;
  return `${n} B`;
}

export function renderTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  return [`${t.title}`, line(t.columns), sep, ...t.rows.map(line)].join('\n');
}

export function checkValue(c: Check): string {
  return c.unit === '×' ? `${fmt(c.value)}×` : `${fmt(c.value)} ${c.unit}`;
}

export function checkTarget(c: Check): string {
  const op = c.op === '>=' ? '≥' : c.op === '<=' ? '≤' : c.op === '<' ? '<' : '=';
  return c.unit === '×' ? `${op} ${fmt(c.target)}×` : `${op} ${fmt(c.target)} ${c.unit}`;
}

export function summaryTable(checks: Check[]): Table {
  return {
    title: 'Targets (medians of per-run values; ratios taken within each run)',
    columns: ['Target', 'Measured', 'Target', 'Runs', 'Result'],
    rows: checks.map((c) => [
      `${c.scenario}: ${c.label}`,
      checkValue(c),
      checkTarget(c),
      c.runs.length <= 5 ? c.runs.map((r) => fmt(r)).join(' / ') : `${c.runs.length} samples, ${fmt(Math.min(...c.runs))} … ${fmt(Math.max(...c.runs))}`,
      c.pass ? 'PASS' : 'MISS',
    ]),
  };
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * One horizontal bar per target, in units of the target: a bar reaching the dashed line meets a "≥" target; a
 * "≤"/"<" target is met while the bar stays left of the line. The label carries the measured value itself.
 */
export function chartSvg(checks: Check[], title: string): string {
  const rowH = 26;
  // room for the longest label (about 6.6 px per character at 12 px)
  const left = Math.max(400, Math.ceil(20 + 6.6 * Math.max(0, ...checks.map((c) => `${c.scenario}: ${c.label}`.length))));
  const barW = 340;
  const right = 190;
  const top = 46;
  const width = left + barW + right;
  const height = top + checks.length * rowH + 40;
  const maxScale = 2;
  const x = (v: number): number => left + (Math.min(Math.max(v, 0), maxScale) / maxScale) * barW;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="12" y="36" fill="#555">Bar = measured ÷ target (dashed line = target). Green: target met. Bars are clipped at 2.</text>`,
  );
  for (const g of [0, 0.5, 1, 1.5, 2]) {
    const gx = x(g);
    parts.push(
      `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + checks.length * rowH}" stroke="${g === 1 ? '#333' : '#ddd'}" ${g === 1 ? 'stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${gx}" y="${top + checks.length * rowH + 16}" text-anchor="middle" fill="#555">${g === 1 ? '1 = target' : String(g)}</text>`,
    );
  }
  checks.forEach((c, i) => {
    const y = top + i * rowH;
    const rel = c.target === 0 ? (c.value === 0 ? 1 : 2) : c.value / c.target;
    const color = c.pass ? '#2e9d4f' : '#d1432b';
    parts.push(
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(`${c.scenario}: ${c.label}`)}</text>`,
      `<rect x="${left}" y="${y + 5}" width="${Math.max(1, x(Number.isFinite(rel) ? rel : 0) - left)}" height="${rowH - 10}" fill="${color}" rx="2"/>`,
      `<text x="${left + barW + 8}" y="${y + 16}" fill="#222">${esc(`${checkValue(c)} (${checkTarget(c)})`)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
