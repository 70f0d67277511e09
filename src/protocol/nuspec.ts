// (Over 300 lines: a small XML scanner and the dependency-group choice, which share its token type; pure.)
// The parts of a .nuspec a restore walks (protocol reference §5: <id>, <version>, <dependencies>), and the choice
// of the dependency group NuGet would use for a target framework. Pure: text in, data out.

export interface NuspecDependency {
  id: string;
  /** The version range as written ('' = any version). */
  range: string;
  include?: string;
  exclude?: string;
}

export interface NuspecDependencyGroup {
  /** As written (e.g. '.NETStandard2.0', 'net8.0'); undefined = any framework. */
  targetFramework?: string;
  dependencies: NuspecDependency[];
}

export interface NuspecDependencies {
  id: string;
  version: string;
  groups: NuspecDependencyGroup[];
}

// ---------------------------------------------------------------------------------------------------------------
// A tiny XML tag scanner: enough for nuspecs and MSBuild files (no DTDs, no entity definitions).

export type XmlToken =
  | { kind: 'open'; name: string; attrs: Record<string, string>; selfClosing: boolean; offset: number }
  | { kind: 'close'; name: string; offset: number }
  | { kind: 'text'; text: string; offset: number };

const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g;

export function decodeXmlEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY, (m, ent: string) => {
    switch (ent) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default: {
        const code = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
        return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
      }
    }
  });
}

/** The local part of a (possibly prefixed) XML name. */
function localName(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

const ATTRIBUTE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

function parseAttrs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  ATTRIBUTE.lastIndex = 0;
  for (let m = ATTRIBUTE.exec(s); m; m = ATTRIBUTE.exec(s)) {
    const raw = m[1]!;
    if (raw === 'xmlns' || raw.startsWith('xmlns:')) continue;
    out[localName(raw)] = decodeXmlEntities(m[2] ?? m[3] ?? '');
  }
  return out;
}

export class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

/**
 * Tags and text of an XML document, in order. Element names are local (namespace prefixes dropped), attribute
 * values and text are entity-decoded, CDATA is text, comments / processing instructions / doctypes are skipped.
 * Throws XmlSyntaxError (with the offset) on an unterminated construct.
 */
export function scanXml(xml: string): XmlToken[] {
  const out: XmlToken[] = [];
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = xml.length;
  const endOf = (needle: string, from: number, what: string): number => {
    const e = xml.indexOf(needle, from);
    if (e < 0) throw new XmlSyntaxError(`unterminated ${what}`, from);
    return e;
  };
  while (i < n) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) {
      out.push({ kind: 'text', text: decodeXmlEntities(xml.slice(i)), offset: i });
      break;
    }
    if (lt > i) out.push({ kind: 'text', text: decodeXmlEntities(xml.slice(i, lt)), offset: i });
    if (xml.startsWith('<!--', lt)) {
      i = endOf('-->', lt + 4, 'comment') + 3;
    } else if (xml.startsWith('<![CDATA[', lt)) {
      const e = endOf(']]>', lt + 9, 'CDATA section');
      out.push({ kind: 'text', text: xml.slice(lt + 9, e), offset: lt });
      i = e + 3;
    } else if (xml.startsWith('<?', lt)) {
      i = endOf('?>', lt + 2, 'processing instruction') + 2;
    } else if (xml.startsWith('<!', lt)) {
      // <!DOCTYPE ...> (an internal subset in brackets is skipped as a whole)
      const bracket = xml.indexOf('[', lt);
      const gt = endOf('>', lt, 'declaration');
      i = bracket >= 0 && bracket < gt ? endOf('>', endOf(']', bracket, 'declaration'), 'declaration') + 1 : gt + 1;
    } else if (xml[lt + 1] === '/') {
      const gt = endOf('>', lt, 'end tag');
      const name = xml.slice(lt + 2, gt).trim();
      if (!name) throw new XmlSyntaxError('empty end tag', lt);
      out.push({ kind: 'close', name: localName(name), offset: lt });
      i = gt + 1;
    } else {
      // a start tag: find its '>' outside quoted attribute values
      let j = lt + 1;
      let quote = '';
      for (; j < n; j++) {
        const c = xml[j]!;
        if (quote) {
          if (c === quote) quote = '';
        } else if (c === '"' || c === "'") quote = c;
        else if (c === '>') break;
      }
      if (j >= n) throw new XmlSyntaxError('unterminated start tag', lt);
      let body = xml.slice(lt + 1, j);
      const selfClosing = body.endsWith('/');
      if (selfClosing) body = body.slice(0, -1);
      const m = /^([^\s/>]+)/.exec(body);
      if (!m) throw new XmlSyntaxError('start tag without a name', lt);
      out.push({ kind: 'open', name: localName(m[1]!), attrs: parseAttrs(body.slice(m[1]!.length)), selfClosing, offset: lt });
      i = j + 1;
    }
  }
  return out;
}

/** 1-based line number of an offset in a text. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

// ---------------------------------------------------------------------------------------------------------------
// nuspec

/**
 * <id>, <version> and the dependency groups of a nuspec. As NuGet's NuspecReader: when <dependencies> holds any
 * <group>, only the groups count; otherwise its direct <dependency> children form one group for any framework.
 * A group without (or with an empty) targetFramework applies to any framework. Throws when the text is not a
 * nuspec (no <package>/<metadata>/<id> and <version>) or not well-formed enough to scan.
 */
export function parseNuspecDependencies(xml: string): NuspecDependencies {
  let tokens: XmlToken[];
  try {
    tokens = scanXml(xml);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new Error(`nuspec is not well-formed XML: ${err.message} at line ${lineAt(xml, err.offset)}`);
    throw err;
  }
  const stack: string[] = [];
  let id: string | undefined;
  let version: string | undefined;
  let text: string[] | undefined; // collecting <id> / <version> text
  const groups: NuspecDependencyGroup[] = [];
  const flat: NuspecDependency[] = [];
  let sawGroup = false;
  let group: NuspecDependencyGroup | undefined;

  const path = (): string => stack.join('/');
  const dependencyOf = (attrs: Record<string, string>): NuspecDependency | undefined => {
    const depId = attrs.id?.trim();
    if (!depId) return undefined;
    const d: NuspecDependency = { id: depId, range: (attrs.version ?? '').trim() };
    if (attrs.include !== undefined) d.include = attrs.include;
    if (attrs.exclude !== undefined) d.exclude = attrs.exclude;
    return d;
  };

  for (const t of tokens) {
    if (t.kind === 'text') {
      text?.push(t.text);
      continue;
    }
    if (t.kind === 'close') {
      const where = path();
      if (where === 'package/metadata/id' && text) id = text.join('').trim();
      if (where === 'package/metadata/version' && text) version = text.join('').trim();
      if (where === 'package/metadata/dependencies/group') group = undefined;
      text = undefined;
      // tolerate mismatched end tags: pop to the matching open element, if any
      const at = stack.lastIndexOf(t.name);
      if (at >= 0) stack.length = at;
      continue;
    }
    const parent = path();
    if (parent === 'package/metadata' && (t.name === 'id' || t.name === 'version')) {
      if (t.selfClosing) {
        if (t.name === 'id') id = '';
        else version = '';
      } else text = [];
    } else if (parent === 'package/metadata/dependencies' && t.name === 'group') {
      sawGroup = true;
      const tfm = t.attrs.targetFramework?.trim();
      const g: NuspecDependencyGroup = tfm ? { targetFramework: tfm, dependencies: [] } : { dependencies: [] };
      groups.push(g);
      group = t.selfClosing ? undefined : g;
    } else if (parent === 'package/metadata/dependencies' && t.name === 'dependency') {
      const d = dependencyOf(t.attrs);
      if (d) flat.push(d);
    } else if (parent === 'package/metadata/dependencies/group' && t.name === 'dependency') {
      const d = dependencyOf(t.attrs);
      if (d && group) group.dependencies.push(d);
    }
    if (!t.selfClosing) stack.push(t.name);
  }
  if (!id) throw new Error('nuspec has no <package><metadata><id>');
  if (!version) throw new Error('nuspec has no <package><metadata><version>');
  if (!sawGroup && flat.length > 0) groups.push({ dependencies: flat });
  return { id, version, groups };
}

// ---------------------------------------------------------------------------------------------------------------
// Target frameworks: just enough of NuGet.Frameworks to pick the nearest dependency group.

export interface Framework {
  /** 'netcore' = .NETCoreApp (netcoreappX.Y and net5.0+), 'netfx' = .NETFramework, 'netstandard', else the lowercased identifier. */
  family: string;
  version: number[];
  /** Lowercased platform of net5.0+ monikers ('windows' in net8.0-windows), else ''. */
  platform: string;
  /** The normalized moniker (for exact comparison of families this code does not know). */
  key: string;
}

function versionDigits(s: string): number[] | undefined {
  if (s === '') return [0];
  if (/^\d+(\.\d+)*$/.test(s)) {
    // short form without dots ('462', '20') is one digit per part; with dots, numbers per part
    return s.includes('.') ? s.split('.').map(Number) : s.split('').map(Number);
  }
  return undefined;
}

function trimVersion(v: number[]): number[] {
  const out = [...v];
  while (out.length > 1 && out[out.length - 1] === 0) out.pop();
  return out;
}

function compareFw(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Parses a target framework moniker, short ('net8.0', 'net462', 'netstandard2.0') or long ('.NETFramework4.6.2'). */
export function parseFramework(moniker: string): Framework | undefined {
  const s = moniker.trim().toLowerCase();
  if (!s) return undefined;
  let m = /^(?:\.netcoreapp|netcoreapp)(\d+(?:\.\d+)*)$/.exec(s);
  if (m) {
    const v = versionDigits(m[1]!);
    return v && { family: 'netcore', version: trimVersion(v), platform: '', key: s };
  }
  m = /^net(\d+\.\d+(?:\.\d+)*)(?:-([a-z]+)[\d.]*)?$/.exec(s);
  if (m && Number(m[1]!.split('.')[0]) >= 5) {
    return { family: 'netcore', version: trimVersion(m[1]!.split('.').map(Number)), platform: m[2] ?? '', key: s };
  }
  m = /^(?:\.netframework|netframework|net)(\d+(?:\.\d+)*)(?:-[a-z]+)?$/.exec(s);
  if (m) {
    const v = versionDigits(m[1]!);
    return v && { family: 'netfx', version: trimVersion(v), platform: '', key: s };
  }
  m = /^(?:\.netstandard|netstandard)(\d+(?:\.\d+)*)$/.exec(s);
  if (m) {
    const v = versionDigits(m[1]!);
    return v && { family: 'netstandard', version: trimVersion(v), platform: '', key: s };
  }
  const other = /^\.?([a-z][a-z.-]*?)(\d[\d.]*)?(?:-(.*))?$/.exec(s);
  if (!other) return undefined;
  return { family: other[1]!, version: trimVersion(versionDigits(other[2] ?? '') ?? [0]), platform: other[3] ?? '', key: s };
}

/** The highest .NET Standard a framework implements (NuGet's compatibility table), undefined when none. */
function standardFor(fw: Framework): number[] | undefined {
  const v = fw.version;
  if (fw.family === 'netstandard') return v;
  if (fw.family === 'netcore') return compareFw(v, [3]) >= 0 ? [2, 1] : compareFw(v, [2]) >= 0 ? [2, 0] : [1, 6];
  if (fw.family === 'netfx') {
    if (compareFw(v, [4, 6, 1]) >= 0) return [2, 0];
    if (compareFw(v, [4, 6]) >= 0) return [1, 3];
    if (compareFw(v, [4, 5, 1]) >= 0) return [1, 2];
    if (compareFw(v, [4, 5]) >= 0) return [1, 1];
  }
  return undefined;
}

function pad4(v: number[]): number[] {
  return [0, 1, 2, 3].map((i) => v[i] ?? 0);
}

/** How near a group's framework is to the target (higher is nearer), or undefined when it does not apply. */
function nearness(group: Framework | undefined, target: Framework): number[] | undefined {
  if (!group) return [0];
  if (group.family === target.family && compareFw(group.version, target.version) <= 0) {
    if (group.platform && group.platform !== target.platform) return undefined;
    return [3, ...pad4(group.version), group.platform ? 1 : 0];
  }
  if (group.family === 'netstandard') {
    const max = standardFor(target);
    if (max && compareFw(group.version, max) <= 0) return [2, ...pad4(group.version)];
  }
  return undefined;
}

/**
 * The dependency group NuGet uses for a target framework: the nearest compatible one (same framework family at
 * or below the target's version first, then the highest compatible .NET Standard, then a group for any framework).
 * Undefined when no group applies (the package then brings no dependencies for that framework). A target or group
 * framework this code does not know only matches groups with the same moniker.
 */
export function nearestGroup<G extends { targetFramework?: string }>(groups: readonly G[], targetMoniker: string): G | undefined {
  const target = parseFramework(targetMoniker);
  let best: { g: G; score: number[] } | undefined;
  for (const g of groups) {
    let score: number[] | undefined;
    if (g.targetFramework === undefined) score = [0];
    else {
      const fw = parseFramework(g.targetFramework);
      if (!target || !fw) score = fw?.key === targetMoniker.trim().toLowerCase() ? [3] : undefined;
      else score = nearness(fw, target);
    }
    if (score && (!best || compareFw(score, best.score) > 0)) best = { g, score };
  }
  return best?.g;
}

/**
 * The dependencies a restore may walk: every group's (no targets given: over-approximates the closure, as no
 * framework is excluded), or the nearest group's for each target.
 */
export function dependenciesFor(groups: readonly NuspecDependencyGroup[], targets: readonly string[] = []): NuspecDependency[] {
  const chosen = targets.length === 0 ? groups : [...new Set(targets.map((t) => nearestGroup(groups, t)).filter((g) => g !== undefined))];
  const seen = new Set<string>();
  const out: NuspecDependency[] = [];
  for (const g of chosen) {
    for (const d of g.dependencies) {
      const key = `${d.id.toLowerCase()}|${d.range}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}
