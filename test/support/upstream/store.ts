// In-memory package index of the test upstream: lowerId -> lowerVersion -> entry.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lowerId as toLowerId } from '../../../src/protocol/id.js';
import { parseRange } from '../../../src/protocol/range.js';
import {
  compareVersions,
  fullVersionString,
  isSemVer2,
  lowerNormalizedVersion,
  normalizeVersion,
  parseVersion,
  type NuGetVersion,
} from '../../../src/protocol/version.js';
import { readNupkg, type NuspecInfo } from '../nupkg.js';

export interface PackageEntry {
  /** Original-case id from the nuspec. */
  readonly id: string;
  readonly lowerId: string;
  readonly parsed: NuGetVersion;
  /** Normalized, original case, no build metadata. */
  readonly normalized: string;
  /** Normalized plus '+metadata' when present (catalogEntry.version, search). */
  readonly fullVersion: string;
  readonly lowerVersion: string;
  readonly bytes: Buffer;
  readonly info: NuspecInfo;
  /** nuget.org's package-level rule: the version or any dependency range bound is SemVer 2. */
  readonly semVer2: boolean;
  readonly sha512Base64: string;
  readonly sha256Hex: string;
  listed: boolean;
  /** Last change of this entry (bytes or listing), epoch ms, whole seconds, strictly increasing per store. */
  modified: number;
}

function rangeIsSemVer2(range: string): boolean {
  const r = parseRange(range);
  return (r?.min !== undefined && isSemVer2(r.min)) || (r?.max !== undefined && isSemVer2(r.max));
}

export function listNupkgFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile()) {
        const n = ent.name.toLowerCase();
        if (n.endsWith('.nupkg') && !n.endsWith('.symbols.nupkg')) out.push(p);
      }
    }
  };
  walk(dir);
  return out.sort();
}

export class PackageStore {
  private readonly byId = new Map<string, Map<string, PackageEntry>>();
  private readonly unlisted = new Set<string>();
  private clock = 0;
  /** Last change anywhere in the store (epoch ms). */
  storeModified: number;
  readonly created: number;

  constructor(unlisted: readonly string[] = []) {
    for (const u of unlisted) {
      const at = u.lastIndexOf('@');
      if (at <= 0) throw new Error(`unlisted entry must be 'Id@version': ${u}`);
      this.unlisted.add(this.key(u.slice(0, at), u.slice(at + 1)));
    }
    this.created = this.tick();
    this.storeModified = this.created;
  }

  /** Whole-second timestamps that strictly increase, so Last-Modified changes on every mutation. */
  private tick(): number {
    const now = Math.floor(Date.now() / 1000) * 1000;
    this.clock = Math.max(now, this.clock + 1000);
    return this.clock;
  }

  private key(id: string, version: string): string {
    const lv = lowerNormalizedVersion(version);
    if (lv === undefined) throw new Error(`invalid version: ${version}`);
    return `${toLowerId(id)}@${lv}`;
  }

  add(bytes: Uint8Array, listed?: boolean): PackageEntry {
    const info = readNupkg(bytes);
    const parsed = parseVersion(info.version);
    if (!parsed) throw new Error(`package ${info.id} has an invalid version: ${info.version}`);
    const lowerId = toLowerId(info.id);
    const normalized = normalizeVersion(parsed);
    const lowerVersion = normalized.toLowerCase();
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const semVer2 =
      isSemVer2(parsed) || info.dependencyGroups.some((g) => g.dependencies.some((d) => rangeIsSemVer2(d.range)));
    const entry: PackageEntry = {
      id: info.id,
      lowerId,
      parsed,
      normalized,
      fullVersion: fullVersionString(parsed),
      lowerVersion,
      bytes: buf,
      info,
      semVer2,
      sha512Base64: createHash('sha512').update(buf).digest('base64'),
      sha256Hex: createHash('sha256').update(buf).digest('hex'),
      listed: listed ?? !this.unlisted.has(`${lowerId}@${lowerVersion}`),
      modified: this.tick(),
    };
    let versions = this.byId.get(lowerId);
    if (!versions) {
      versions = new Map();
      this.byId.set(lowerId, versions);
    }
    versions.set(lowerVersion, entry);
    this.storeModified = entry.modified;
    return entry;
  }

  addDir(dir: string): number {
    const files = listNupkgFiles(dir);
    for (const f of files) this.add(readFileSync(f));
    return files.length;
  }

  setListed(id: string, version: string, listed: boolean): void {
    const entry = this.find(id, version);
    if (!entry) throw new Error(`test upstream has no package ${id} ${version}`);
    if (entry.listed === listed) return;
    entry.listed = listed;
    entry.modified = this.tick();
    this.storeModified = entry.modified;
  }

  /** Looks a package up by id and version as a user would type them (any case, any version spelling). */
  find(id: string, version: string): PackageEntry | undefined {
    const lowerVersion = lowerNormalizedVersion(version);
    return lowerVersion === undefined ? undefined : this.byId.get(toLowerId(id))?.get(lowerVersion);
  }

  /** Removes a package entirely (hard delete); false when it is not there. */
  remove(id: string, version: string): boolean {
    const entry = this.find(id, version);
    if (!entry) return false;
    const versions = this.byId.get(entry.lowerId)!;
    versions.delete(entry.lowerVersion);
    if (versions.size === 0) this.byId.delete(entry.lowerId);
    this.storeModified = this.tick();
    return true;
  }

  /** All versions of an id (exact lowercase key), ascending by NuGet precedence; [] when unknown. */
  versions(lowerId: string): PackageEntry[] {
    const m = this.byId.get(lowerId);
    if (!m) return [];
    return [...m.values()].sort((a, b) => compareVersions(a.parsed, b.parsed));
  }

  get(lowerId: string, lowerVersion: string): PackageEntry | undefined {
    return this.byId.get(lowerId)?.get(lowerVersion);
  }

  /** Lowercase ids, sorted. */
  ids(): string[] {
    return [...this.byId.keys()].sort();
  }

  idModified(lowerId: string): number {
    let max = 0;
    for (const e of this.byId.get(lowerId)?.values() ?? []) max = Math.max(max, e.modified);
    return max;
  }
}
