// Prometheus' text format read back, small and strict: a test that parses /metrics asserts on numbers, never on
// substrings of the text.

export interface Scrape {
  /** `name{a="1",b="2"}` (labels sorted) → value. */
  samples: Map<string, number>;
  /** Family name → its `# TYPE`. */
  types: Map<string, string>;
  text: string;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Sorted label key of a sample; the same for the samples parsed and the ones a test asks for. */
export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

export function parseMetrics(text: string): Scrape {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`not a value: ${line}`);
    samples.set(sampleKey(m[1]!, labels), value);
  }
  return { samples, types, text };
}

/** A sample's value (0 when absent: a counter not yet incremented). */
export function valueOf(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  return s.samples.get(sampleKey(name, labels)) ?? 0;
}

/** How much a sample moved between two scrapes. */
export function moved(before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}): number {
  return valueOf(after, name, labels) - valueOf(before, name, labels);
}
