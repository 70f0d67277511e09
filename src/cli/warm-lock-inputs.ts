// `nuproxy warm` inputs written by restore: packages.lock.json and obj/project.assets.json. Both hold the resolved
// closure per target framework, so their packages become locked roots (fetched as listed, not resolved again).
import { lineAt, parseFramework } from '../protocol/nuspec.js';
import { parseRange } from '../protocol/range.js';
import { normalizeVersion, parseVersion, versionsEqual } from '../protocol/version.js';
import { at, checkedId, checkedVersion, WarmInputError, type ReadOptions, type WarmRoot } from './warm-roots.js';

/** JSON.parse, or an error naming the file and the line. */
function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const line = /line (\d+)/.exec(msg)?.[1] ?? (pos ? String(lineAt(text, Number(pos[1]))) : undefined);
    throw new WarmInputError(`${file}${line ? `:${line}` : ''}: not valid JSON (${msg})`);
  }
}

/** A JSON object (not null, not an array). */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Offset of a JSON member `"key": {` at or after `from`, or -1. */
function jsonObjectKey(text: string, key: string, from = 0): number {
  const re = new RegExp(`${JSON.stringify(key).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*:\\s*\\{`, 'g');
  re.lastIndex = from;
  return re.exec(text)?.index ?? -1;
}

/** The line of a JSON member `"key": {` (at or after `from`), for messages. */
function jsonKeyLine(text: string, key: string, from = 0): number | undefined {
  const i = jsonObjectKey(text, key, from);
  return i < 0 ? undefined : lineAt(text, i);
}

/**
 * The moniker part of a target name as lock and assets files write it: "net8.0" of "net8.0/linux-x64", and the
 * long form ".NETCoreApp,Version=v8.0" (older assets files) as ".NETCoreApp8.0", which parseFramework reads.
 */
function targetMoniker(target: string): string {
  const fw = target.split('/')[0]!.trim();
  const long = /^([^,]+),\s*Version=v?([\d.]+)/i.exec(fw);
  return long ? `${long[1]}${long[2]}` : fw;
}

/** Whether a target ("net8.0/linux-x64", ".NETCoreApp,Version=v8.0") is for one of the monikers (NuGet equality). */
function targetMatches(target: string, tfms: readonly string[]): boolean {
  const t = parseFramework(targetMoniker(target));
  if (!t) return false;
  return tfms.some((m) => {
    const f = parseFramework(m);
    return f !== undefined && f.family === t.family && f.version.join('.') === t.version.join('.') && f.platform === t.platform;
  });
}

/** The targets of a file that `opts.tfms` keeps; an error when it keeps none of several. */
function keptTargets(targets: string[], file: string, opts: ReadOptions): Set<string> {
  const tfms = opts.tfms ?? [];
  if (tfms.length === 0) return new Set(targets);
  const kept = targets.filter((t) => targetMatches(t, tfms));
  if (kept.length === 0 && targets.length > 0) {
    throw new WarmInputError(`${file}: no target for --tfm ${tfms.join(', ')} (the file has ${targets.join(', ')})`);
  }
  return new Set(kept);
}

/** Collects locked roots once per id and version, with every framework that lists them (in file order). */
class LockedRoots {
  private readonly byKey = new Map<string, WarmRoot>();

  add(id: string, version: string, framework: string, where: string): void {
    const key = `${id.toLowerCase()}@${normalizeVersion(parseVersion(version)!).toLowerCase()}`;
    const had = this.byKey.get(key);
    if (had) {
      if (!had.frameworks!.includes(framework)) had.frameworks!.push(framework);
      return;
    }
    this.byKey.set(key, { id, version, source: where, locked: true, frameworks: [framework] });
  }

  get roots(): WarmRoot[] {
    return [...this.byKey.values()];
  }
}

/**
 * packages.lock.json: every package (direct, transitive, central) of every target it names, at its resolved
 * version, once each. The file is the resolved closure: the roots are locked (their dependencies are in it).
 */
export function parsePackagesLock(text: string, file: string, opts: ReadOptions = {}): WarmRoot[] {
  const doc = parseJson(text, file);
  if (!isObject(doc) || !isObject(doc.dependencies)) throw new WarmInputError(`${file}: not a packages.lock.json (no "dependencies" object)`);
  const kept = keptTargets(Object.keys(doc.dependencies), file, opts);
  const roots = new LockedRoots();
  for (const [target, deps] of Object.entries(doc.dependencies)) {
    if (!isObject(deps)) throw new WarmInputError(`${file}: "dependencies.${target}" is not an object`);
    if (!kept.has(target)) continue;
    const section = Math.max(0, jsonObjectKey(text, target));
    for (const [id, entry] of Object.entries(deps)) {
      const where = at(file, jsonKeyLine(text, id, section));
      if (!isObject(entry)) throw new WarmInputError(`${where}: "${target}.${id}" is not an object`);
      if (typeof entry.type === 'string' && entry.type.toLowerCase() === 'project') continue;
      if (typeof entry.resolved !== 'string') throw new WarmInputError(`${where}: "${target}.${id}" has no "resolved" version`);
      roots.add(checkedId(id, where), checkedVersion(entry.resolved, where), target, where);
    }
  }
  return roots.roots;
}

/**
 * obj/project.assets.json: the packages of every target it names ("targets": the resolved closure per framework,
 * "Id/Version" keys of type "package"), once each, locked; plus each framework's PackageDownload items
 * ("project.frameworks.*.downloadDependencies", exact versions), which restore fetches without dependencies.
 */
export function parseProjectAssets(text: string, file: string, opts: ReadOptions = {}): WarmRoot[] {
  const doc = parseJson(text, file);
  if (!isObject(doc) || !isObject(doc.libraries)) throw new WarmInputError(`${file}: not a project.assets.json (no "libraries" object)`);
  if (!isObject(doc.targets)) throw new WarmInputError(`${file}: not a project.assets.json (no "targets" object)`);
  const kept = keptTargets(Object.keys(doc.targets), file, opts);
  const roots = new LockedRoots();
  for (const [target, libs] of Object.entries(doc.targets)) {
    if (!isObject(libs)) throw new WarmInputError(`${file}: "targets.${target}" is not an object`);
    if (!kept.has(target)) continue;
    const section = Math.max(0, jsonObjectKey(text, target));
    for (const [key, lib] of Object.entries(libs)) {
      const where = at(file, jsonKeyLine(text, key, section));
      if (!isObject(lib)) throw new WarmInputError(`${where}: "targets.${target}.${key}" is not an object`);
      if (lib.type !== 'package') continue;
      const slash = key.indexOf('/');
      if (slash <= 0) throw new WarmInputError(`${where}: library key "${key}" is not "Id/Version"`);
      roots.add(checkedId(key.slice(0, slash), where), checkedVersion(key.slice(slash + 1), where), target, where);
    }
  }
  const frameworks = isObject(doc.project) && isObject(doc.project.frameworks) ? doc.project.frameworks : {};
  for (const [alias, fw] of Object.entries(frameworks)) {
    if (!isObject(fw) || !Array.isArray(fw.downloadDependencies)) continue;
    const name = typeof fw.framework === 'string' ? fw.framework : alias;
    if ((opts.tfms ?? []).length > 0 && !targetMatches(name, opts.tfms!)) continue;
    const section = jsonObjectKey(text, alias, Math.max(0, text.lastIndexOf('"frameworks"')));
    const list = section < 0 ? -1 : text.indexOf('"downloadDependencies"', section);
    const where = at(file, list < 0 ? undefined : lineAt(text, list));
    for (const d of fw.downloadDependencies as unknown[]) {
      if (!isObject(d) || typeof d.name !== 'string' || typeof d.version !== 'string') throw new WarmInputError(`${where}: a downloadDependencies entry of ${alias} has no "name" and "version"`);
      roots.add(checkedId(d.name, where), exactVersionOf(d.version, `${where}: ${d.name}`), name, where);
    }
  }
  return roots.roots;
}

/** The one version of "[1.2.3]" / "[1.2.3, 1.2.3]" (how assets files write a PackageDownload), or an error. */
function exactVersionOf(spec: string, where: string): string {
  const r = parseRange(spec);
  if (r?.min && r.max && r.minInclusive && r.maxInclusive && versionsEqual(r.min, r.max)) return normalizeVersion(r.min);
  throw new WarmInputError(`${where}: ${JSON.stringify(spec)} is not an exact version`);
}
