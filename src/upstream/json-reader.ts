/**
 * (Over 300 lines: one incremental parser whose depth scan, slicing and assembly share one buffer and one
 * state; apart they would only be read together.)
 *
 * Parses a JSON document as its bytes arrive, for metadata from an upstream that may be hostile or broken:
 *
 * - Nesting deeper than `maxDepth` is refused the moment it is reached (a byte scan that skips strings), so a
 *   100,000-deep document costs nothing and never reaches code that recurses over it.
 * - The event loop is never blocked for long: JSON.parse of a 64 MB document takes 0.5-1.2 s here, so a document
 *   is parsed in slices of about `sliceBytes` (cut at member boundaries of the container being filled) as the bytes
 *   come in, each slice by JSON.parse (native speed), and assembled. Bytes already parsed are let go.
 * - A string whose escapes could hide a secret (`\u002B` for "+", as System.Text.Json writes it) is handed to
 *   `onEscapedString` decoded; the raw bytes are the caller's to scan.
 *
 * The scan knows strings and brackets only; the syntax of each slice is JSON.parse's. Where a slice meets a
 * container already built, a placeholder member stands for it, so JSON.parse still sees every comma: the result is
 * exactly JSON.parse's (same values, duplicate keys last-wins) or a JsonSyntaxError.
 */
export class JsonSyntaxError extends Error {}

/** The document nests deeper than allowed. */
export class JsonDepthError extends Error {
  constructor(readonly maxDepth: number) {
    super(`JSON nested deeper than ${maxDepth}`);
  }
}

export interface JsonReaderOptions {
  maxDepth: number;
  /** Only check the structure and depth, keeping no bytes and building nothing (end() returns undefined). */
  scanOnly?: boolean;
  /** Target size of one JSON.parse (bytes). */
  sliceBytes?: number;
  /** Called with each string (or key) that contains an escape, decoded. May throw to stop the read. */
  onEscapedString?: (value: string) => void;
}

type Node = unknown[] | Record<string, unknown>;

interface Frame {
  obj: boolean;
  /** Offset of the opening bracket. */
  start: number;
  /** Offset just after the last comma at this level (or after the bracket). */
  memberStart: number;
  /** Set once this container is built piecewise; then `pend` is the first offset not yet parsed into it. */
  node?: Node;
  pend: number;
  /** What precedes `pend`: the bracket, a comma, or a member built on its own. */
  after: 'open' | 'comma' | 'child';
}

const DEFAULT_SLICE = 512 * 1024;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const BOM = [0xef, 0xbb, 0xbf];
/** The bytes the scan acts on inside a container: " { } [ ] , */
const STRUCTURAL = new Uint8Array(256);
for (const c of '"{}[],') STRUCTURAL[c.charCodeAt(0)] = 1;

export class JsonReader {
  private readonly maxDepth: number;
  private readonly slice: number;
  private readonly onEscaped: ((value: string) => void) | undefined;
  private readonly scanOnly: boolean;
  /** A key no real document uses, for placeholder members of objects. */
  private readonly dummy = `nuproxy-placeholder-${Math.random().toString(36).slice(2)}`;
  private chunks: Buffer[] = [];
  private chunksBase = 0;
  private total = 0;
  private readonly frames: Frame[] = [];
  /** Index of the deepest frame built piecewise (-1: none). */
  private built = -1;
  private inString = false;
  private escapeNext = false;
  private strStart = 0;
  private strEscaped = false;
  private anyEscape = false;
  private leading = 0; // BOM bytes seen at the start
  private leadDone = false;
  /** Something other than one object or array at the top: left whole to JSON.parse at the end. */
  private other = false;
  private rootDone = false;
  private root: Node | undefined;

  constructor(opts: JsonReaderOptions) {
    this.maxDepth = opts.maxDepth;
    this.slice = opts.sliceBytes ?? DEFAULT_SLICE;
    this.onEscaped = opts.onEscapedString;
    this.scanOnly = opts.scanOnly ?? false;
    // nothing is built: every member boundary is left alone, as in a document of unknown shape
    if (this.scanOnly) this.other = true;
  }

  /** The next bytes of the document. Throws JsonDepthError or JsonSyntaxError (then the reader is done). */
  push(chunk: Buffer): void {
    const base = this.total;
    if (!this.scanOnly) this.chunks.push(chunk);
    this.total += chunk.length;
    const n = chunk.length;
    let i = 0;
    while (!this.leadDone && i < n) {
      if (base + i < 3 && chunk[i] === BOM[base + i]) {
        this.leading++;
        i++;
      } else {
        this.leadDone = true;
        if (this.leading > 0 && this.leading < 3) this.other = true; // a cut BOM: garbage for JSON.parse to refuse
      }
    }
    let nextQuote = -2;
    let nextBackslash = -2;
    while (i < n) {
      if (this.inString) {
        if (this.escapeNext) {
          this.escapeNext = false;
          i++;
          continue;
        }
        if (nextQuote !== -1 && nextQuote < i) nextQuote = chunk.indexOf(QUOTE, i);
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = chunk.indexOf(BACKSLASH, i);
        if (nextBackslash !== -1 && (nextQuote === -1 || nextBackslash < nextQuote)) {
          this.strEscaped = true;
          this.anyEscape = true;
          this.escapeNext = true;
          i = nextBackslash + 1;
          continue;
        }
        if (nextQuote === -1) break;
        this.inString = false;
        i = nextQuote + 1;
        if (this.strEscaped && !this.scanOnly) this.escapedString(this.strStart, base + i);
        continue;
      }
      if (this.frames.length === 0) {
        this.top(chunk[i]!, base + i);
        i++;
        continue;
      }
      // numbers, literals, whitespace, colons: nothing to do
      while (i < n && STRUCTURAL[chunk[i]!] === 0) i++;
      if (i === n) break;
      this.inside(chunk[i]!, base + i);
      i++;
    }
    this.release();
  }

  /** True once a string (or key) with an escape has been seen. */
  get sawEscape(): boolean {
    return this.anyEscape;
  }

  /** The document, once every byte was pushed. */
  end(): unknown {
    if (this.inString || this.frames.length > 0) throw new JsonSyntaxError('the JSON document ends before it is complete');
    if (this.scanOnly) return undefined;
    if (this.root !== undefined && !this.other) return this.root;
    const text = this.text(this.leading === 3 ? 3 : 0, this.total);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new JsonSyntaxError((err as Error).message);
    }
  }

  /** A byte outside every container. */
  private top(c: number, at: number): void {
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return;
    if (this.rootDone && !this.other) throw new JsonSyntaxError(`unexpected content after the JSON document at byte ${at}`);
    if (c === 0x7b || c === 0x5b) {
      if (this.rootDone) this.other = true;
      this.open(c === 0x7b, at);
      return;
    }
    this.other = true;
    if (c === QUOTE) this.startString(at);
    else if (c === 0x7d || c === 0x5d) throw new JsonSyntaxError(`unexpected "${String.fromCharCode(c)}" at byte ${at}`);
  }

  private inside(c: number, at: number): void {
    switch (c) {
      case QUOTE:
        this.startString(at);
        return;
      case 0x7b:
      case 0x5b:
        this.open(c === 0x7b, at);
        return;
      case 0x7d:
      case 0x5d:
        this.close(c === 0x7d, at);
        return;
      case 0x2c:
        this.comma(at);
        return;
    }
  }

  private startString(at: number): void {
    this.inString = true;
    this.strStart = at;
    this.strEscaped = false;
  }

  private open(obj: boolean, at: number): void {
    if (this.frames.length >= this.maxDepth) throw new JsonDepthError(this.maxDepth);
    this.frames.push({ obj, start: at, memberStart: at + 1, pend: at + 1, after: 'open' });
  }

  private close(obj: boolean, at: number): void {
    const f = this.frames.pop()!;
    if (f.obj !== obj) throw new JsonSyntaxError(`mismatched "${obj ? '}' : ']'}" at byte ${at}`);
    const parent = this.frames[this.frames.length - 1];
    if (f.node) {
      this.flush(f, at, 'close');
      this.built--;
      if (parent) {
        parent.pend = at + 1;
        parent.after = 'child';
      } else this.root = f.node;
    }
    if (!parent) this.rootDone = true;
  }

  /** A member boundary: the moment to parse what has piled up, if it is enough. */
  private comma(at: number): void {
    const idx = this.frames.length - 1;
    const f = this.frames[idx]!;
    f.memberStart = at + 1;
    if (this.other) return;
    const pending = at - (this.built >= 0 ? this.frames[this.built]!.pend : 0);
    if (idx === this.built) {
      if (pending < this.slice) return;
    } else {
      // building a container we are not at the level of costs a level per frame: only for a large backlog
      const threshold = this.built === -1 && idx === 0 ? this.slice : 4 * this.slice;
      if (pending < threshold) return;
      this.buildDownTo(idx);
    }
    this.flush(f, at, 'comma');
    f.pend = at + 1;
    f.after = 'comma';
  }

  /** Starts building every frame from the deepest built one down to `idx` piecewise. */
  private buildDownTo(idx: number): void {
    for (let j = this.built + 1; j <= idx; j++) {
      const g = this.frames[j]!;
      const node: Node = g.obj ? {} : [];
      if (j === 0) this.root = node;
      else {
        const p = this.frames[j - 1]!;
        this.flush(p, p.memberStart, 'member');
        const key = this.keyBefore(p, g);
        if (Array.isArray(p.node)) p.node.push(node);
        else setMember(p.node!, key!, node);
      }
      g.node = node;
      g.pend = g.start + 1;
      g.after = 'open';
    }
    this.built = idx;
  }

  /** Parses [f.pend, end) into f.node; `until` says what ends the range (a comma or bracket not included). */
  private flush(f: Frame, end: number, until: 'comma' | 'close' | 'member'): void {
    if (end < f.pend) throw new JsonSyntaxError(`missing "," at byte ${f.pend}`);
    const text = this.text(f.pend, end);
    // placeholders stand for what lies outside the range, so that JSON.parse checks every separator
    const d = f.obj ? `"${this.dummy}":0` : '0';
    const pre = (f.obj ? '{' : '[') + (f.after === 'open' ? '' : f.after === 'comma' ? `${d},` : d);
    const post = (until === 'close' ? '' : until === 'comma' ? `,${d}` : d) + (f.obj ? '}' : ']');
    let parsed: unknown;
    try {
      parsed = JSON.parse(`${pre} ${text} ${post}`);
    } catch (err) {
      throw new JsonSyntaxError((err as Error).message);
    }
    if (Array.isArray(f.node)) {
      const items = parsed as unknown[];
      const from = f.after === 'open' ? 0 : 1;
      const to = items.length - (until === 'close' ? 0 : 1);
      for (let k = from; k < to; k++) f.node.push(items[k]);
    } else {
      const members = parsed as Record<string, unknown>;
      for (const k of Object.keys(members)) if (k !== this.dummy) setMember(f.node!, k, members[k]);
    }
  }

  /** The key in front of child container g of object p (undefined for an array), checking what lies between. */
  private keyBefore(p: Frame, g: Frame): string | undefined {
    const text = this.text(p.memberStart, g.start);
    let parsed: unknown;
    try {
      parsed = JSON.parse(p.obj ? `{${text} 0}` : `[${text} 0]`);
    } catch (err) {
      throw new JsonSyntaxError((err as Error).message);
    }
    return p.obj ? Object.keys(parsed as object)[0] : undefined;
  }

  private escapedString(from: number, to: number): void {
    let value: unknown;
    try {
      value = JSON.parse(this.text(from, to));
    } catch (err) {
      throw new JsonSyntaxError((err as Error).message);
    }
    this.onEscaped?.(value as string);
  }

  /** Lets go of chunks that lie wholly before anything still needed. */
  private release(): void {
    if (this.other || this.built < 0) return;
    let keep = this.frames[this.built]!.pend;
    if (this.inString) keep = Math.min(keep, this.strStart);
    let drop = 0;
    while (drop < this.chunks.length - 1 && this.chunksBase + this.chunks[drop]!.length <= keep) {
      this.chunksBase += this.chunks[drop]!.length;
      drop++;
    }
    if (drop > 0) this.chunks = this.chunks.slice(drop);
  }

  /** Bytes [from, to) as text (from and to lie on ASCII bytes, so no character is cut). */
  private text(from: number, to: number): string {
    const parts: Buffer[] = [];
    let pos = this.chunksBase;
    for (const c of this.chunks) {
      const end = pos + c.length;
      if (end > from && pos < to) parts.push(c.subarray(Math.max(0, from - pos), Math.min(c.length, to - pos)));
      if (end >= to) break;
      pos = end;
    }
    return parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
  }
}

/** obj[key] = value, also for "__proto__" (an own property, as JSON.parse makes it, never the prototype). */
function setMember(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}
