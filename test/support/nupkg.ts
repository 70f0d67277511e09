// Test support: build deterministic .nupkg files and read the nuspec out of real ones.
// Only fflate + node built-ins; no XML library (a small regex parser is enough for nuspecs).
import { strFromU8, strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import { decodeXmlEntities } from '../../src/protocol/nuspec.js';

export interface DependencySpec {
  id: string;
  range: string;
}
export interface DependencyGroupSpec {
  targetFramework?: string;
  dependencies: DependencySpec[];
}

export interface NupkgSpec {
  id: string;
  version: string;
  dependencyGroups?: DependencyGroupSpec[];
  description?: string;
  authors?: string;
  /** Adds a stored (uncompressed) file of this many pseudo-random (seeded, deterministic) bytes. */
  padBytes?: number;
  /** `<license type="expression">` (or type file), as `dotnet pack` writes PackageLicenseExpression. */
  license?: { type: 'expression' | 'file'; value: string };
  /** The old `<licenseUrl>`. */
  licenseUrl?: string;
}

export interface NuspecInfo {
  id: string;
  version: string;
  description?: string;
  authors?: string;
  dependencyGroups: DependencyGroupSpec[];
  /** The nuspec file text (UTF-8 decoded, BOM stripped). */
  xml: string;
}

// DOS timestamps are local time; constructing the Date from local fields keeps the bytes identical in every TZ.
const FIXED_MTIME = new Date(2024, 0, 1, 0, 0, 0);

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** XML entities decoded the way the proxy's own nuspec reader does. */
export const unescapeXml = decodeXmlEntities;

export function makeNuspecXml(spec: NupkgSpec): string {
  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">',
    '  <metadata>',
    `    <id>${escapeXml(spec.id)}</id>`,
    `    <version>${escapeXml(spec.version)}</version>`,
    `    <authors>${escapeXml(spec.authors ?? 'nuproxy-tests')}</authors>`,
    `    <description>${escapeXml(spec.description ?? `Test package ${spec.id}`)}</description>`,
  ];
  if (spec.license) lines.push(`    <license type="${spec.license.type}">${escapeXml(spec.license.value)}</license>`);
  if (spec.licenseUrl) lines.push(`    <licenseUrl>${escapeXml(spec.licenseUrl)}</licenseUrl>`);
  const groups = spec.dependencyGroups ?? [];
  if (groups.length > 0) {
    lines.push('    <dependencies>');
    for (const g of groups) {
      const tfm = g.targetFramework !== undefined ? ` targetFramework="${escapeXml(g.targetFramework)}"` : '';
      if (g.dependencies.length === 0) {
        lines.push(`      <group${tfm} />`);
        continue;
      }
      lines.push(`      <group${tfm}>`);
      for (const d of g.dependencies) {
        lines.push(`        <dependency id="${escapeXml(d.id)}" version="${escapeXml(d.range)}" />`);
      }
      lines.push('      </group>');
    }
    lines.push('    </dependencies>');
  }
  lines.push('  </metadata>', '</package>', '');
  return lines.join('\n');
}

const CONTENT_TYPES =
  '<?xml version="1.0" encoding="utf-8"?>\n' +
  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />' +
  '<Default Extension="nuspec" ContentType="application/octet" />' +
  '<Default Extension="_" ContentType="application/octet" />' +
  '<Default Extension="bin" ContentType="application/octet" />' +
  '</Types>';

function relsXml(id: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n' +
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
    `<Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/${escapeXml(id)}.nuspec" Id="R0000000000000001" />` +
    '</Relationships>'
  );
}

/** Deterministic pseudo-random bytes (xorshift32 seeded from a string). */
export function pseudoRandomBytes(n: number, seed: string): Uint8Array {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  let x = h >>> 0 || 0x9e3779b9;
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, n);
}

/** Builds a minimal but valid .nupkg (deterministic bytes) that `dotnet restore` accepts and extracts. */
export function makeNupkg(spec: NupkgSpec): Uint8Array {
  const files: Zippable = {
    '_rels/.rels': [strToU8(relsXml(spec.id)), { level: 6 }],
    [`${spec.id}.nuspec`]: [strToU8(makeNuspecXml(spec)), { level: 6 }],
    'lib/netstandard2.0/_._': [new Uint8Array(0), { level: 0 }],
  };
  if (spec.padBytes !== undefined && spec.padBytes > 0) {
    files['pad/pad.bin'] = [pseudoRandomBytes(spec.padBytes, `${spec.id}@${spec.version}`), { level: 0 }];
  }
  files['[Content_Types].xml'] = [strToU8(CONTENT_TYPES), { level: 6 }];
  return zipSync(files, { mtime: FIXED_MTIME });
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

function stripBom(s: string): string {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

function parseAttributes(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const name = m[1]!.replace(/^.*:/, '');
    out[name] = unescapeXml(m[2] ?? m[3] ?? '');
  }
  return out;
}

/** Text of the first `<name>` element (any namespace prefix) inside `xml`. */
function elementText(xml: string, name: string): string | undefined {
  const re = new RegExp(`<(?:[\\w.-]+:)?${name}(?:\\s[^>]*)?(?:/>|>([\\s\\S]*?)</(?:[\\w.-]+:)?${name}\\s*>)`);
  const m = re.exec(xml);
  if (!m) return undefined;
  let text = m[1] ?? '';
  text = text.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_all, c: string) => c.replace(/[&<>]/g, (ch) => escapeXml(ch)));
  return unescapeXml(text).trim();
}

function parseDependencies(body: string): DependencySpec[] {
  const deps: DependencySpec[] = [];
  const re = /<(?:[\w.-]+:)?dependency\b([^>]*?)\/?>/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const attrs = parseAttributes(m[1] ?? '');
    if (attrs.id === undefined) continue;
    deps.push({ id: attrs.id, range: attrs.version ?? '' });
  }
  return deps;
}

/** Parses nuspec XML text (see readNupkg). */
export function parseNuspec(xmlText: string): NuspecInfo {
  const xml = stripBom(xmlText);
  const clean = xml.replace(/<!--[\s\S]*?-->/g, '');
  const metaMatch = /<(?:[\w.-]+:)?metadata\b[^>]*>([\s\S]*?)<\/(?:[\w.-]+:)?metadata\s*>/.exec(clean);
  const meta = metaMatch?.[1] ?? clean;
  // Remove the dependencies block before reading scalar fields, so nothing nested there can be mistaken for them.
  const depsRe = /<(?:[\w.-]+:)?dependencies\b[^>]*?(?:\/>|>([\s\S]*?)<\/(?:[\w.-]+:)?dependencies\s*>)/;
  const depsMatch = depsRe.exec(meta);
  const scalars = meta.replace(depsRe, '');
  const id = elementText(scalars, 'id');
  const version = elementText(scalars, 'version');
  if (!id || !version) throw new Error('nuspec has no <id> or <version>');

  const dependencyGroups: DependencyGroupSpec[] = [];
  const depsBody = depsMatch?.[1];
  if (depsBody !== undefined) {
    const groupRe = /<(?:[\w.-]+:)?group\b([^>]*?)(?:\/>|>([\s\S]*?)<\/(?:[\w.-]+:)?group\s*>)/g;
    let sawGroup = false;
    for (let m = groupRe.exec(depsBody); m; m = groupRe.exec(depsBody)) {
      sawGroup = true;
      const attrs = parseAttributes(m[1] ?? '');
      const dependencies = parseDependencies(m[2] ?? '');
      const tfm = attrs.targetFramework;
      dependencyGroups.push(tfm !== undefined && tfm !== '' ? { targetFramework: tfm, dependencies } : { dependencies });
    }
    if (!sawGroup) {
      const flat = parseDependencies(depsBody);
      if (flat.length > 0) dependencyGroups.push({ dependencies: flat });
    }
  }

  const info: NuspecInfo = { id, version, dependencyGroups, xml };
  const description = elementText(scalars, 'description');
  if (description !== undefined) info.description = description;
  const authors = elementText(scalars, 'authors');
  if (authors !== undefined) info.authors = authors;
  return info;
}

/** Unzips the root *.nuspec of a .nupkg and parses it. Throws when the bytes are not a package. */
export function readNupkg(bytes: Uint8Array): NuspecInfo {
  const files = unzipSync(bytes, {
    filter: (f) => !f.name.includes('/') && f.name.toLowerCase().endsWith('.nuspec'),
  });
  const names = Object.keys(files);
  if (names.length !== 1) throw new Error(`expected exactly one root .nuspec in the package, found ${names.length}`);
  return parseNuspec(strFromU8(files[names[0]!]!));
}
