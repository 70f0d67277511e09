import type promClient from 'prom-client';

/** One value of a metric as prom-client's registry reads it (and its cluster aggregation sums). */
export interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

/** One label set's count: callers keep the cell and add to `value` (no lookup per event). */
export interface Cell {
  value: number;
}

/** One label set's histogram: bucket counts (not cumulative until exported), sum and count. */
export class HistogramCell {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** The collector a registry holds: read only when scraped. */
type Collector = promClient.Metric;

function collector(name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): Collector {
  // the shape prom-client's registry reads from a metric (its own cluster aggregation registers such objects)
  return { name, get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) } as unknown as Collector;
}

const labelsOf = (names: readonly string[], values: readonly string[]): Record<string, string> => {
  const labels: Record<string, string> = {};
  names.forEach((n, i) => (labels[n] = values[i]!));
  return labels;
};

/** A counter's cells by label values; `cell` finds or makes one (callers on a hot path keep what it returns). */
export class CounterFamily {
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: Cell }>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  cell(...values: string[]): Cell {
    const key = values.join('\u0000');
    let c = this.cells.get(key);
    if (!c) {
      c = { labels: labelsOf(this.labelNames, values), cell: { value: 0 } };
      this.cells.set(key, c);
    }
    return c.cell;
  }

  collector(): Collector {
    return collector(this.name, this.help, 'counter', () => [...this.cells.values()].map((c) => ({ labels: c.labels, value: c.cell.value })));
  }
}

/** A histogram's cells by label values, exported as prom-client does (`_bucket` with `le`, `_sum`, `_count`). */
export class HistogramFamily {
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: HistogramCell }>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {}

  cell(...values: string[]): HistogramCell {
    const key = values.join('\u0000');
    let c = this.cells.get(key);
    if (!c) {
      c = { labels: labelsOf(this.labelNames, values), cell: new HistogramCell(this.bounds) };
      this.cells.set(key, c);
    }
    return c.cell;
  }

  collector(): Collector {
    return collector(this.name, this.help, 'histogram', () => {
      const out: Sample[] = [];
      for (const { labels, cell } of this.cells.values()) {
        let cumulative = 0;
        for (let i = 0; i <= this.bounds.length; i++) {
          cumulative += cell.counts[i]!;
          const le = i < this.bounds.length ? String(this.bounds[i]) : '+Inf';
          out.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
        }
        out.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
        out.push({ labels, value: cell.count, metricName: `${this.name}_count` });
      }
      return out;
    });
  }
}
