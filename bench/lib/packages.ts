// Generated .nupkg sets (deterministic bytes, kept under .bench/packages between runs), and a static V3 feed
// (index.json + flat container) built from package folders, for nginx to serve.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeNupkg, readNupkg, type NupkgSpec } from '../../test/support/nupkg.js';
import { listNupkgFiles } from '../../test/support/upstream/store.js';
import { lowerId } from '../../src/protocol/id.js';
import { compareVersions, lowerNormalizedVersion, parseVersion } from '../../src/protocol/version.js';

export interface PackageRef {
  id: string;
  version: string;
  lowerId: string;
  lowerVersion: string;
  file: string;
  size: number;
}

/** Flat-container path of a package under a base ending in "/": {base}{id}/{ver}/{id}.{ver}.nupkg */
export function flatPath(p: Pick<PackageRef, 'lowerId' | 'lowerVersion'>): string {
  return `${p.lowerId}/${p.lowerVersion}/${p.lowerId}.${p.lowerVersion}.nupkg`;
}

function refOf(spec: NupkgSpec, file: string, size: number): PackageRef {
  const lv = lowerNormalizedVersion(spec.version);
  if (!lv) throw new Error(`bad version ${spec.version}`);
  return { id: spec.id, version: spec.version, lowerId: lowerId(spec.id), lowerVersion: lv, file, size };
}

/**
 * Writes the packages of `specs` into `{outDir}/packages/{set}/` (flat-container layout), unless the same specs
 * were written there before. Returns the folder and one ref per spec.
 */
export async function packageSet(outDir: string, set: string, specs: NupkgSpec[]): Promise<{ dir: string; refs: PackageRef[] }> {
  const dir = join(outDir, 'packages', set);
  const digest = createHash('sha256').update(JSON.stringify(specs)).digest('hex');
  const marker = join(dir, '.spec-sha256');
  const fresh = existsSync(marker) && readFileSync(marker, 'utf8') === digest;
  if (!fresh) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  }
  const refs: PackageRef[] = [];
  for (const spec of specs) {
    const probe = refOf(spec, '', 0);
    const file = join(dir, flatPath(probe));
    if (!fresh) {
      const bytes = makeNupkg(spec);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, bytes);
      refs.push({ ...probe, file, size: bytes.length });
    } else {
      refs.push({ ...probe, file, size: (await stat(file)).size });
    }
  }
  if (!fresh) await writeFile(marker, digest);
  return { dir, refs };
}

/**
 * A static V3 feed in `root`: `v3/index.json` (PackageBaseAddress/3.0.0 only) and `v3/flat/{id}/index.json` plus
 * the .nupkg files (hard links where possible). `baseUrl` is where nginx serves `root` (ends with "/").
 */
export async function buildStaticFeed(root: string, baseUrl: string, packageDirs: string[]): Promise<number> {
  const flat = join(root, 'v3', 'flat');
  const byId = new Map<string, string[]>();
  let n = 0;
  for (const d of packageDirs) {
    for (const f of listNupkgFiles(d)) {
      const info = readNupkg(await readFile(f));
      const lid = lowerId(info.id);
      const lv = lowerNormalizedVersion(info.version);
      if (!lv) continue;
      const dest = join(flat, flatPath({ lowerId: lid, lowerVersion: lv }));
      await mkdir(join(dest, '..'), { recursive: true });
      try {
        await link(f, dest);
      } catch {
        await copyFile(f, dest);
      }
      const list = byId.get(lid) ?? [];
      list.push(lv);
      byId.set(lid, list);
      n++;
    }
  }
  for (const [lid, versions] of byId) {
    versions.sort((a, b) => compareVersions(parseVersion(a)!, parseVersion(b)!));
    await writeFile(join(flat, lid, 'index.json'), JSON.stringify({ versions }));
  }
  await writeFile(
    join(root, 'v3', 'index.json'),
    JSON.stringify({
      version: '3.0.0',
      resources: [{ '@id': `${baseUrl}v3/flat/`, '@type': 'PackageBaseAddress/3.0.0' }],
    }),
  );
  return n;
}
