import { rewriteRegistrationIndex, rewriteRegistrationPage, type Rewritten } from '../protocol/registration.js';

type Json = Record<string, unknown>;

/**
 * Issue #11 item 1: a large registration (tens of MB, tens of thousands of leaves, under the byte limits) held
 * the event loop for seconds while it was rewritten and stringified in one go. Above this many leaves (about
 * 1 MB of JSON: nuget.org leaves are 0.5-1.5 KB) the work is cut into slices of about this many leaves that
 * yield to the event loop between them; at or below it (nearly every real document) it runs as before, in one
 * synchronous step with no extra await.
 */
export const LARGE_LEAVES = 1000;

/** Lets the event loop run (health probes, other requests) between two slices of work. */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * rewriteRegistrationIndex for an index with many inlined leaves: its pages are rewritten a slice at a time
 * (each page on its own gives the same result as in the whole index), yielding between slices.
 */
export async function rewriteLargeRegistrationIndex(doc: Json, lowerId: string, hive: string): Promise<Rewritten> {
  const pages = Array.isArray(doc.items) ? (doc.items as unknown[]) : [];
  const links: Record<string, string> = {};
  const items: unknown[] = [];
  let head: Json | undefined;
  for (let i = 0; i < pages.length; ) {
    let leaves = 0;
    const start = i;
    while (i < pages.length && (i === start || leaves < LARGE_LEAVES)) {
      const p = pages[i++];
      leaves += p !== null && typeof p === 'object' && Array.isArray((p as Json).items) ? ((p as Json).items as unknown[]).length : 1;
    }
    const part = rewriteRegistrationIndex({ ...doc, items: pages.slice(start, i) }, lowerId, hive);
    Object.assign(links, part.links);
    items.push(...(part.doc.items as unknown[]));
    head ??= part.doc;
    if (i < pages.length) await yieldTurn();
  }
  if (!head) return rewriteRegistrationIndex(doc, lowerId, hive);
  return { doc: { ...head, count: items.length, items }, links };
}

/**
 * JSON.stringify(value) for an object with one large array member: the array is stringified a slice at a time,
 * yielding between slices. The same JSON as JSON.stringify's, with that member first.
 */
export async function stringifyLarge(value: Json, member: string): Promise<string> {
  const { [member]: list, ...rest } = value;
  if (!Array.isArray(list)) return JSON.stringify(value);
  const parts: string[] = [];
  for (let i = 0; i < list.length; i += LARGE_LEAVES) {
    if (i > 0) await yieldTurn();
    parts.push(JSON.stringify(list.slice(i, i + LARGE_LEAVES)).slice(1, -1));
  }
  const others = JSON.stringify(rest);
  return `{${JSON.stringify(member)}:[${parts.join(',')}]${others === '{}' ? '}' : `,${others.slice(1)}`}`;
}

/**
 * The rewritten leaves of a registration page fetched on its own (rewriteRegistrationPage's items): a page with
 * many leaves (a hostile one: real pages hold at most 64) is rewritten a slice at a time, yielding between slices.
 */
export async function rewriteRegistrationPageItems(doc: Json, lowerId: string, hive: string, lower: string, upper: string): Promise<Json[]> {
  const items = Array.isArray(doc.items) ? (doc.items as unknown[]) : [];
  if (items.length <= LARGE_LEAVES) return rewriteRegistrationPage(doc, lowerId, hive, lower, upper).doc.items as Json[];
  const out: Json[] = [];
  for (let i = 0; i < items.length; i += LARGE_LEAVES) {
    if (i > 0) await yieldTurn();
    out.push(...(rewriteRegistrationPage({ ...doc, items: items.slice(i, i + LARGE_LEAVES) }, lowerId, hive, lower, upper).doc.items as Json[]));
  }
  return out;
}
