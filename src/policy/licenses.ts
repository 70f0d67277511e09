// The licence rule's judgement of one SPDX expression (a registration's licenseExpression) against the allowed
// list (policy.licenses.allow). NuGet accepts SPDX expressions of ids joined by OR / AND, with parentheses,
// "WITH <exception>" and a trailing "+"; this reads exactly that much and nothing else: whatever it cannot read is
// "not understood", and the caller treats it like a package with only a licence URL (policy.licenses.other).

export type LicenseVerdict = 'allowed' | 'blocked' | 'unknown';

type Node = { kind: 'id'; id: string; base: string } | { kind: 'and' | 'or'; left: Node; right: Node };

/** Longest expression read: a hostile registration cannot make the parser work hard. */
const MAX_EXPRESSION = 500;
const TOKEN = /\s*(\(|\)|[A-Za-z0-9.+-]+)/y;

function tokenize(expr: string): string[] | undefined {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expr.length) {
    if (/^\s*$/.test(expr.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(expr);
    if (!m) return undefined;
    out.push(m[1]!);
  }
  return out;
}

/** Parses `A OR B AND (C WITH X)`: AND binds tighter than OR, as in SPDX. Undefined when it is not such an expression. */
export function parseLicenseExpression(expr: string): Node | undefined {
  if (typeof expr !== 'string' || expr.length > MAX_EXPRESSION) return undefined;
  const tokens = tokenize(expr);
  if (!tokens || tokens.length === 0) return undefined;
  let i = 0;
  const keyword = (t: string | undefined, k: string) => t !== undefined && t.toUpperCase() === k;
  const isOperand = (t: string | undefined) => t !== undefined && t !== '(' && t !== ')' && !['AND', 'OR', 'WITH'].includes(t.toUpperCase());

  function primary(depth: number): Node | undefined {
    if (depth > 32) return undefined;
    const t = tokens![i];
    if (t === '(') {
      i++;
      const inner = or(depth + 1);
      if (!inner || tokens![i] !== ')') return undefined;
      i++;
      return inner;
    }
    if (!isOperand(t)) return undefined;
    i++;
    let id = t!;
    if (keyword(tokens![i], 'WITH')) {
      const exception = tokens![i + 1];
      if (!isOperand(exception)) return undefined;
      i += 2;
      id = `${t} WITH ${exception}`;
    }
    // "GPL-2.0+" (or later) is judged as written, then as its base id
    return { kind: 'id', id, base: t!.replace(/\+$/, '') };
  }
  function and(depth: number): Node | undefined {
    let left = primary(depth);
    while (left && keyword(tokens![i], 'AND')) {
      i++;
      const right = primary(depth);
      left = right ? { kind: 'and', left, right } : undefined;
    }
    return left;
  }
  function or(depth: number): Node | undefined {
    let left = and(depth);
    while (left && keyword(tokens![i], 'OR')) {
      i++;
      const right = and(depth);
      left = right ? { kind: 'or', left, right } : undefined;
    }
    return left;
  }
  const tree = or(0);
  return tree && i === tokens.length ? tree : undefined;
}

const MEMO_LIMIT = 1024;

/** Whitespace collapsed and upper-cased: how an expression is compared with the allowed list "as written". */
function canonical(expr: string): string {
  return expr.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim().toUpperCase();
}

/** The allowed list, compiled once (case-insensitive). */
export class LicenseAllowList {
  private readonly allowed: Set<string>;
  private readonly memo = new Map<string, LicenseVerdict>();

  constructor(readonly entries: readonly string[]) {
    this.allowed = new Set(entries.map(canonical));
  }

  get size(): number {
    return this.allowed.size;
  }

  /**
   * allowed: the expression is in the list as written, or every id it needs is (OR: one side suffices, AND: both;
   * "X WITH exception" when it or X is allowed). blocked: it is understood and not allowed. unknown: not understood.
   */
  judge(expression: string): LicenseVerdict {
    // a feed has few distinct expressions and a version list asks for each of its versions: remember them
    const known = this.memo.get(expression);
    if (known !== undefined) return known;
    const verdict = this.compute(expression);
    if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
    this.memo.set(expression, verdict);
    return verdict;
  }

  private compute(expression: string): LicenseVerdict {
    if (this.allowed.has(canonical(expression))) return 'allowed';
    const tree = parseLicenseExpression(expression);
    if (!tree) return 'unknown';
    return this.holds(tree) ? 'allowed' : 'blocked';
  }

  private holds(n: Node): boolean {
    if (n.kind === 'id') return this.allowed.has(canonical(n.id)) || this.allowed.has(canonical(n.base));
    return n.kind === 'and' ? this.holds(n.left) && this.holds(n.right) : this.holds(n.left) || this.holds(n.right);
  }
}
