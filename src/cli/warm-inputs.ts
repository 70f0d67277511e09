// (Over 300 lines: one reader per kind of project input, each turning its file into roots the same way.)
// What `nuproxy warm` starts from: the package references .NET projects already have, read into roots.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { lineAt, scanXml, XmlSyntaxError, type XmlToken } from '../protocol/nuspec.js';
import { parseRange } from '../protocol/range.js';
import { parseVersion } from '../protocol/version.js';
import { parsePackagesLock, parseProjectAssets } from './warm-lock-inputs.js';
import { checkedId, checkedVersion, WarmInputError, type ReadOptions, type WarmRoot } from './warm-roots.js';

export { parsePackagesLock, parseProjectAssets } from './warm-lock-inputs.js';
export { WarmInputError, type ReadOptions, type WarmRoot } from './warm-roots.js';

export type InputKind = 'packages-lock' | 'project-assets' | 'packages-props' | 'project' | 'list';

const PROJECT_EXT = new Set(['.csproj', '.fsproj', '.vbproj', '.proj']);

/** Decides what a file is from its name, then its content. */
export function detectKind(path: string, text: string): InputKind {
  const name = basename(path).toLowerCase();
  const ext = extname(name);
  if (name === 'packages.lock.json' || name.endsWith('.packages.lock.json')) return 'packages-lock';
  if (name === 'project.assets.json') return 'project-assets';
  if (name === 'directory.packages.props') return 'packages-props';
  if (PROJECT_EXT.has(ext)) return 'project';
  const head = text.replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('{')) {
    if (/"libraries"\s*:/.test(text) && /"project"\s*:/.test(text)) return 'project-assets';
    if (/"dependencies"\s*:/.test(text)) return 'packages-lock';
  }
  if (head.startsWith('<')) {
    if (/<PackageVersion\b/.test(text) && !/<PackageReference\b/.test(text)) return 'packages-props';
    if (/<PackageReference\b|<PackageVersion\b/.test(text)) return 'project';
  }
  return 'list';
}

// ---------------------------------------------------------------------------------------------------------------
// MSBuild inputs

/** A version as a root: a version range or floating version, checked. */
function rangeRoot(id: string, range: string, where: string): WarmRoot {
  const r = range.trim();
  if (!isValidRootRange(r)) throw new WarmInputError(`${where}: not a valid version or version range for ${id}: ${JSON.stringify(range)}`);
  return { id: checkedId(id, where), range: r, source: where };
}

/** True for what NuGet accepts as a requested version: a range, a bare version, or a floating version. */
export function isValidRootRange(r: string): boolean {
  if (r === '') return false;
  if (r.includes('*')) return parseFloating(r) !== undefined;
  return parseRange(r) !== undefined;
}

export interface FloatingVersion {
  /** Numeric parts that must match exactly (e.g. [1, 2] for '1.2.*'). */
  prefix: number[];
  /** undefined: stable versions only; a string: prereleases whose label starts with it (and stables) are eligible. */
  releasePrefix?: string;
  /** When the numeric part is complete ('1.2.3-beta*'), the exact numeric version. */
  exactCore: boolean;
}

/** '*', '1.*', '1.2.*', '1.2.3-*', '1.2.3-beta*', '*-*', '1.*-*' (no brackets). */
export function parseFloating(input: string): FloatingVersion | undefined {
  const s = input.trim();
  const dash = s.indexOf('-');
  const core = dash < 0 ? s : s.slice(0, dash);
  const release = dash < 0 ? undefined : s.slice(dash + 1);
  if (release !== undefined && !/^[0-9A-Za-z.-]*\*$/.test(release)) return undefined;
  const parts = core.split('.');
  if (parts.length > 4) return undefined;
  const starAt = parts.indexOf('*');
  if (starAt >= 0 && starAt !== parts.length - 1) return undefined;
  const numeric = starAt >= 0 ? parts.slice(0, -1) : parts;
  if (!numeric.every((p) => /^\d+$/.test(p))) return undefined;
  if (starAt < 0 && release === undefined) return undefined; // not floating
  if (starAt < 0 && parseVersion(core) === undefined) return undefined;
  return {
    prefix: numeric.map(Number),
    ...(release !== undefined ? { releasePrefix: release.slice(0, -1) } : {}),
    exactCore: starAt < 0,
  };
}

interface MsbuildItem {
  element: string;
  attrs: Record<string, string>;
  /** Child elements' text (e.g. <Version>). */
  children: Record<string, string>;
  line: number;
}

interface MsbuildFile {
  items: MsbuildItem[];
  properties: Map<string, string>;
}

function scanMsbuild(text: string, file: string, elements: Set<string>): MsbuildFile {
  let tokens: XmlToken[];
  try {
    tokens = scanXml(text);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new WarmInputError(`${file}:${lineAt(text, err.offset)}: not well-formed XML: ${err.message}`);
    throw err;
  }
  const items: MsbuildItem[] = [];
  const properties = new Map<string, string>();
  const stack: string[] = [];
  let item: MsbuildItem | undefined;
  let itemDepth = 0;
  let textBuf: string[] | undefined;
  for (const t of tokens) {
    if (t.kind === 'text') {
      textBuf?.push(t.text);
      continue;
    }
    if (t.kind === 'open') {
      const parent = stack[stack.length - 1];
      if (!item && elements.has(t.name) && parent === 'ItemGroup') {
        const it: MsbuildItem = { element: t.name, attrs: t.attrs, children: {}, line: lineAt(text, t.offset) };
        items.push(it);
        if (!t.selfClosing) {
          item = it;
          itemDepth = stack.length + 1;
        }
      } else if ((item && stack.length === itemDepth) || parent === 'PropertyGroup') {
        textBuf = [];
      }
      if (!t.selfClosing) stack.push(t.name);
      continue;
    }
    // close
    const depth = stack.length;
    const top = stack[depth - 1];
    if (item && depth === itemDepth + 1 && textBuf && top === t.name) item.children[t.name] = textBuf.join('').trim();
    else if (stack[depth - 2] === 'PropertyGroup' && textBuf && top === t.name) properties.set(t.name.toLowerCase(), textBuf.join('').trim());
    textBuf = undefined;
    const i = stack.lastIndexOf(t.name);
    if (i >= 0) stack.length = i;
    if (item && stack.length < itemDepth) item = undefined;
  }
  return { items, properties };
}

/** Replaces $(Name) with the file's own properties; throws on one it does not define. */
function expand(value: string, props: Map<string, string>, where: string): string {
  return value.replace(/\$\(([^)]*)\)/g, (_m, name: string) => {
    const v = props.get(name.trim().toLowerCase());
    if (v === undefined) throw new WarmInputError(`${where}: the version uses the property $(${name}), which this file does not define`);
    return v;
  });
}

function itemVersion(it: MsbuildItem, names: string[]): string | undefined {
  for (const n of names) {
    const v = it.attrs[n] ?? it.children[n];
    if (v !== undefined && v.trim() !== '') return v;
  }
  return undefined;
}

function itemIds(it: MsbuildItem): string[] {
  const raw = it.attrs.Include ?? it.attrs.Update ?? '';
  return raw
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export interface PackagesProps {
  /** PackageVersion entries by lowercase id. */
  versions: Map<string, { id: string; range: string; where: string }>;
  /** GlobalPackageReference entries (referenced by every project). */
  global: WarmRoot[];
}

/** Directory.Packages.props (central package management): PackageVersion and GlobalPackageReference items. */
export function parsePackagesProps(text: string, file: string): PackagesProps {
  const { items, properties } = scanMsbuild(text, file, new Set(['PackageVersion', 'GlobalPackageReference']));
  const versions = new Map<string, { id: string; range: string; where: string }>();
  const global: WarmRoot[] = [];
  for (const it of items) {
    const where = `${file}:${it.line}`;
    const ids = itemIds(it);
    if (ids.length === 0) throw new WarmInputError(`${where}: <${it.element}> without Include`);
    const raw = itemVersion(it, ['Version']);
    if (raw === undefined) throw new WarmInputError(`${where}: <${it.element} Include="${ids.join(';')}"> has no Version`);
    const range = expand(raw, properties, where);
    for (const id of ids) {
      const root = rangeRoot(id, range, where);
      if (it.element === 'GlobalPackageReference') global.push(root);
      else versions.set(id.toLowerCase(), { id: root.id, range: root.range!, where });
    }
  }
  return { versions, global };
}

function propsRoots(p: PackagesProps): WarmRoot[] {
  return [...[...p.versions.values()].map((v) => ({ id: v.id, range: v.range, source: v.where })), ...p.global];
}

/**
 * A project file: PackageReference (Include or Update; Version / VersionOverride as attribute or child element)
 * and PackageDownload items. References without a version take it from `central` (Directory.Packages.props),
 * loaded on demand.
 */
export async function parseProject(text: string, file: string, central: () => Promise<{ file: string; props: PackagesProps } | undefined>): Promise<WarmRoot[]> {
  const { items, properties } = scanMsbuild(text, file, new Set(['PackageReference', 'PackageDownload']));
  const roots: WarmRoot[] = [];
  let cpm: { file: string; props: PackagesProps } | undefined | null = null;
  for (const it of items) {
    const where = `${file}:${it.line}`;
    const ids = itemIds(it);
    if (ids.length === 0) throw new WarmInputError(`${where}: <${it.element}> without Include or Update`);
    const raw = itemVersion(it, ['VersionOverride', 'Version']);
    for (const id of ids) {
      if (raw !== undefined) {
        roots.push(rangeRoot(id, expand(raw, properties, where), where));
        continue;
      }
      if (cpm === null) cpm = await central();
      const entry = cpm?.props.versions.get(id.toLowerCase());
      if (!entry) {
        throw new WarmInputError(
          cpm
            ? `${where}: ${id} has no Version and ${cpm.file} has no <PackageVersion Include="${id}">`
            : `${where}: ${id} has no Version and no Directory.Packages.props was found in the project's folder or above`,
        );
      }
      roots.push({ id: checkedId(id, where), range: entry.range, source: entry.where });
    }
  }
  if (cpm === null && /<ManagePackageVersionsCentrally>\s*true\s*</i.test(text)) cpm = await central();
  if (cpm) roots.push(...cpm.props.global);
  return roots;
}

// ---------------------------------------------------------------------------------------------------------------
// Plain lists

/** One `id@version`, `id@[range]` or `id@1.*` per line; `#` starts a comment; blank lines are skipped. */
export function parsePlainList(text: string, file: string): WarmRoot[] {
  const roots: WarmRoot[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, i) => {
    const where = `${file}:${i + 1}`;
    const hash = rawLine.indexOf('#');
    const line = (hash >= 0 ? rawLine.slice(0, hash) : rawLine).trim();
    if (line === '') return;
    const atSign = line.indexOf('@');
    if (atSign <= 0 || atSign === line.length - 1) throw new WarmInputError(`${where}: expected "id@version" or "id@[range]", got ${JSON.stringify(line)}`);
    const id = checkedId(line.slice(0, atSign).trim(), where);
    const spec = line.slice(atSign + 1).trim();
    if (/^[[(]/.test(spec) || spec.includes('*')) {
      roots.push(rangeRoot(id, spec, where));
      return;
    }
    roots.push({ id, version: checkedVersion(spec, where), source: where });
  });
  return roots;
}

// ---------------------------------------------------------------------------------------------------------------
// Files and folders

async function readText(path: string, shown: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new WarmInputError(`${shown}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The nearest Directory.Packages.props in `dir` or its parents. */
async function findPackagesProps(dir: string): Promise<string | undefined> {
  for (let d = resolve(dir); ; d = dirname(d)) {
    for (const name of ['Directory.Packages.props', 'directory.packages.props']) {
      const p = join(d, name);
      if (await isFile(p)) return p;
    }
    if (dirname(d) === d) return undefined;
  }
}

/** Reads one input file (kind from its name, then its content). */
export async function readInputFile(path: string, shown = path, opts: ReadOptions = {}): Promise<{ kind: InputKind; roots: WarmRoot[] }> {
  const text = await readText(path, shown);
  const kind = detectKind(path, text);
  switch (kind) {
    case 'packages-lock':
      return { kind, roots: parsePackagesLock(text, shown, opts) };
    case 'project-assets':
      return { kind, roots: parseProjectAssets(text, shown, opts) };
    case 'packages-props':
      return { kind, roots: propsRoots(parsePackagesProps(text, shown)) };
    case 'project': {
      const central = async (): Promise<{ file: string; props: PackagesProps } | undefined> => {
        const found = await findPackagesProps(dirname(path));
        return found ? { file: found, props: parsePackagesProps(await readText(found, found), found) } : undefined;
      };
      return { kind, roots: await parseProject(text, shown, central) };
    }
    case 'list':
      return { kind, roots: parsePlainList(text, shown) };
  }
}

/**
 * A folder: its most precise input. packages.lock.json (the resolved graph), else obj/project.assets.json, else
 * its project files (with their central versions), else Directory.Packages.props.
 */
export async function readInputDir(dir: string, shown = dir, opts: ReadOptions = {}): Promise<{ kind: InputKind; files: string[]; roots: WarmRoot[] }> {
  for (const rel of ['packages.lock.json', join('obj', 'project.assets.json')]) {
    const p = join(dir, rel);
    if (await isFile(p)) {
      const r = await readInputFile(p, join(shown, rel), opts);
      return { kind: r.kind, files: [p], roots: r.roots };
    }
  }
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (err) {
    throw new WarmInputError(`${shown}: cannot list (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const projects = entries.filter((e) => PROJECT_EXT.has(extname(e).toLowerCase()) && extname(e).toLowerCase() !== '.proj');
  if (projects.length > 0) {
    const roots: WarmRoot[] = [];
    for (const p of projects) roots.push(...(await readInputFile(join(dir, p), join(shown, p))).roots);
    return { kind: 'project', files: projects.map((p) => join(dir, p)), roots };
  }
  const props = entries.find((e) => e.toLowerCase() === 'directory.packages.props');
  if (props) {
    const r = await readInputFile(join(dir, props), join(shown, props));
    return { kind: r.kind, files: [join(dir, props)], roots: r.roots };
  }
  throw new WarmInputError(`${shown}: no packages.lock.json, obj/project.assets.json, project file (*.csproj, *.fsproj, *.vbproj) or Directory.Packages.props in this folder`);
}

/** Reads every input (files or folders, relative to cwd) into one list of roots, in order, duplicates kept (a lock or assets file lists each package once). */
export async function readWarmInputs(paths: readonly string[], cwd: string, opts: ReadOptions = {}): Promise<WarmRoot[]> {
  const roots: WarmRoot[] = [];
  for (const p of paths) {
    const abs = resolve(cwd, p);
    let s;
    try {
      s = await stat(abs);
    } catch (err) {
      throw new WarmInputError(`${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : `cannot read (${(err as Error).message})`}`);
    }
    roots.push(...(s.isDirectory() ? (await readInputDir(abs, p, opts)).roots : (await readInputFile(abs, p, opts)).roots));
  }
  return roots;
}
