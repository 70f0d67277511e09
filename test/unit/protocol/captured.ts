// Loading the captured upstream responses in test/fixtures/captured (attribution in SOURCES.md there).
import { readFileSync } from 'node:fs';

const UTF8_BOM = '\uFEFF';

/** The stored text of a captured response, byte-for-byte as in the fixture (BOM included). */
export function capturedText(relative: string): string {
  return readFileSync(new URL(`../../fixtures/captured/${relative}`, import.meta.url), 'utf8');
}

/**
 * A captured response parsed as JSON. Several fixtures start with a UTF-8 BOM (JSON.parse rejects it); some had
 * their host replaced by a WireMock template, which `host` puts back (e.g. "https://api.nuget.org").
 */
export function captured<T = Record<string, unknown>>(relative: string, host?: string): T {
  let text = capturedText(relative);
  if (text.startsWith(UTF8_BOM)) text = text.slice(1);
  if (text.includes('{{request.baseUrl}}')) {
    if (!host) throw new Error(`test setup: ${relative} is host-templated; pass the host to substitute`);
    text = text.replaceAll('{{request.baseUrl}}', host);
  }
  return JSON.parse(text) as T;
}

export type Visit = { path: string; key: string; value: unknown; inCatalog: boolean };

/**
 * Every property in a JSON value, depth first. `inCatalog` is true for properties inside a catalog entry object
 * ("catalogEntry", Sleet's "sleet:catalogEntry"), where @ids are catalog URLs; `@context` (JSON-LD vocabulary)
 * is skipped.
 */
export function visit(v: unknown, fn: (x: Visit) => void, path = '$', inCatalog = false): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => visit(x, fn, `${path}[${i}]`, inCatalog));
  } else if (v !== null && typeof v === 'object') {
    for (const [key, value] of Object.entries(v)) {
      if (key === '@context') continue;
      const cat = inCatalog || key === 'catalogEntry' || key === 'sleet:catalogEntry';
      fn({ path: `${path}.${key}`, key, value, inCatalog });
      visit(value, fn, `${path}.${key}`, cat);
    }
  }
}

/** Every string anywhere in a JSON value. */
export function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v !== null && typeof v === 'object') Object.values(v).forEach((x) => strings(x, out));
  return out;
}
