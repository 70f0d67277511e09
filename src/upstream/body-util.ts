/** Small facts about undici responses shared by the document and package readers of this folder. */

/** A response header's value (the first, when it came several times). */
export function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Drops a response body we will not read (closing its connection), without an unhandled 'error'. */
export function discard(body: { on(event: 'error', fn: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}
