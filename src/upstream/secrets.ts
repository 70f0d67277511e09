/**
 * The configured secrets (upstream passwords, tokens, header values, the mapped push key) and the forms in which
 * they travel on the wire (a Basic header's base64 of "user:password"), so that no byte sequence equal to one of
 * them ever leaves nuproxy: answers relayed from an upstream are redacted, documents and package bodies that
 * contain one are refused (an upstream that echoes its request headers into a body must not hand them out).
 *
 * Pure: no I/O. Built once by the composition root from the loaded config.
 */
import type { SecretSource } from '../config/load.js';

export type { SecretSource };

export const REDACTED = '[redacted]';

/**
 * Secrets shorter than this are still redacted from relayed answers and headers, but not looked for in
 * documents and package bytes: a 3-byte password occurs by chance in binary data, and refusing every package
 * that contains it would refuse good packages. `weak` lists them so that start-up can say so.
 */
export const MIN_SCANNED_SECRET = 8;

export class SecretSet {
  /** Every byte sequence to keep in, longest first (a longer one may contain a shorter one). */
  private readonly all: Buffer[];
  /** The same as strings (redact works on text). */
  private readonly allText: string[];
  /** Those long enough to be looked for in bodies. */
  private readonly scanned: Buffer[];
  /** Labels of secrets too short to be looked for in bodies. */
  readonly weak: string[];
  /** Longest scanned sequence (a stream scanner keeps this many bytes minus one across chunks). */
  readonly maxLength: number;

  constructor(sources: readonly SecretSource[]) {
    const forms = new Map<string, boolean>(); // form -> scanned
    const weak: string[] = [];
    for (const s of sources) {
      if (!s.value) continue;
      const longEnough = Buffer.byteLength(s.value) >= MIN_SCANNED_SECRET;
      if (!longEnough) weak.push(s.label);
      forms.set(s.value, longEnough);
      if (s.basicUser !== undefined) forms.set(Buffer.from(`${s.basicUser}:${s.value}`).toString('base64'), true);
      // the base64 form of a token alone (some relays encode what they echo)
      const b64 = Buffer.from(s.value).toString('base64');
      if (b64.length >= MIN_SCANNED_SECRET) forms.set(b64, longEnough);
      // percent-encoded, as a relay echoing a URL or a form would write it (only when that differs)
      const pct = encodeURIComponent(s.value);
      if (pct !== s.value) forms.set(pct, longEnough);
    }
    const sorted = [...forms.entries()].sort((a, b) => b[0].length - a[0].length);
    this.all = sorted.map(([f]) => Buffer.from(f));
    this.allText = sorted.map(([f]) => f);
    this.scanned = sorted.filter(([, s]) => s).map(([f]) => Buffer.from(f));
    this.weak = weak;
    this.maxLength = this.scanned.reduce((m, b) => Math.max(m, b.length), 0);
  }

  static none(): SecretSet {
    return new SecretSet([]);
  }

  get empty(): boolean {
    return this.all.length === 0;
  }

  /** Replaces every secret (any length) in a string: for relayed headers, reason phrases and short messages. */
  redact(text: string): string {
    if (this.all.length === 0 || text.length === 0) return text;
    let out = text;
    for (const f of this.allText) if (out.includes(f)) out = out.split(f).join(REDACTED);
    return out;
  }

  /** Replaces every secret (any length) in a relayed body (a publish answer's status message). */
  redactBytes(body: Buffer): Buffer {
    if (this.all.length === 0 || body.length === 0) return body;
    if (!this.all.some((s) => body.includes(s))) return body;
    // byte by byte: whatever the body's encoding, the secret's bytes are what is replaced
    let out = body;
    const mark = Buffer.from(REDACTED);
    for (const s of this.all) {
      if (!out.includes(s)) continue;
      const parts: Buffer[] = [];
      let from = 0;
      for (let at = out.indexOf(s); at >= 0; at = out.indexOf(s, from)) {
        parts.push(out.subarray(from, at), mark);
        from = at + s.length;
      }
      parts.push(out.subarray(from));
      out = Buffer.concat(parts);
    }
    return out;
  }

  /** True when a whole body (a document) holds a scanned secret. */
  foundIn(body: Buffer | string): boolean {
    if (this.scanned.length === 0) return false;
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    return this.scanned.some((s) => b.includes(s));
  }

  /**
   * A scanner for a body that arrives in chunks: `push(chunk)` is true when a scanned secret ends in this chunk
   * (also when it started in an earlier one). Keeps at most maxLength - 1 bytes between chunks.
   */
  scanner(): { push(chunk: Uint8Array): boolean } {
    const secrets = this.scanned;
    const keep = Math.max(0, this.maxLength - 1);
    let carry = Buffer.alloc(0);
    return {
      push(chunk: Uint8Array): boolean {
        if (secrets.length === 0) return false;
        const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
        // a secret inside the chunk, or across the boundary with the bytes kept from before (no copy of the chunk)
        const seam = carry.length > 0 ? Buffer.concat([carry, c.subarray(0, keep)]) : undefined;
        for (const s of secrets) if (c.includes(s) || (seam !== undefined && seam.includes(s))) return true;
        const tail = c.length >= keep ? c.subarray(c.length - keep) : Buffer.concat([carry, c]).subarray(-keep);
        carry = Buffer.from(tail);
        return false;
      },
    };
  }
}
