// The identity check a package passes before it is committed (src/feed/verify.ts verifyPackage, the nuspec found
// through the zip's central directory by src/feed/nuspec.ts): on the machine's real packages (every one passes,
// its nuspec read equals yauzl's, and what it costs), and on packages built to fail it.
import { needTool } from '../../support/need.js';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { strToU8, zipSync, type Zippable } from 'fflate';
import type { ByteReader } from '../../../src/cache/blob-store.js';
import { openFileReader } from '../../../src/cache/fs-byte-reader.js';
import { nuspecOfPackage, readNuspecBytes, readTail } from '../../../src/feed/nuspec.js';
import { verifyNuspecOf, verifyPackage } from '../../../src/feed/verify.js';
import { isNuproxyError } from '../../../src/errors.js';
import { makeNupkg, makeNuspecXml } from '../../support/nupkg.js';
import { findRealPackagesDir } from '../../support/real-packages.js';

/** What a blob writer keeps of a file's end (fs-blob-store.ts TAIL): the identity check reads the directory there. */
const TAIL = 22 + 65535;

async function expectIntegrity(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isNuproxyError(err, 'INTEGRITY'), `expected an INTEGRITY error, got ${String(err)}`).toBe(true);
  expect((err as Error).message).toMatch(message);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nuproxy-identity-'));
});
const opened: ByteReader[] = [];
afterAll(async () => {
  for (const r of opened) await r.close();
  await rm(dir, { recursive: true, force: true });
});

/** A ByteReader over a file (what the checks read, as they read a blob writer's temp file), closed after all. */
async function readerOf(path: string): Promise<ByteReader> {
  const r = await openFileReader(path);
  opened.push(r);
  return r;
}

async function onDisk(name: string, bytes: Uint8Array): Promise<{ content: ByteReader; size: number; tail: Buffer }> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  const buf = Buffer.from(bytes);
  return { content: await readerOf(path), size: buf.length, tail: buf.subarray(Math.max(0, buf.length - TAIL)) };
}

describe('the identity of a package: its nuspec names what was asked for', () => {
  it('accepts what NuGet calls equal: id in any case, 1.0 = 1.0.0 = 1.0.0.0, prerelease labels in any case, metadata ignored', async () => {
    const cases: [nuspecId: string, nuspecVersion: string, lowerId: string, lowerVersion: string][] = [
      ['Mixed.CASE.Id', '1.0', 'mixed.case.id', '1.0.0'],
      ['plain', '1.0.0.0', 'plain', '1.0.0'],
      ['Pre.Release', '2.0.0-BETA.1', 'pre.release', '2.0.0-beta.1'],
      ['With.Meta', '3.1.0+build.7', 'with.meta', '3.1.0'],
      ['Four.Part', '1.2.3.4', 'four.part', '1.2.3.4'],
    ];
    for (const [id, version, lowerId, lowerVersion] of cases) {
      const f = await onDisk(`${lowerId}.nupkg`, makeNupkg({ id, version }));
      await verifyPackage({ lowerId, lowerVersion })(f.content, f.tail);
      const n = await onDisk(`${lowerId}.nuspec`, strToU8(makeNuspecXml({ id, version })));
      await verifyNuspecOf({ lowerId, lowerVersion })(n.content);
    }
  });

  it('refuses another id or another version, in a package and in a .nuspec alone, and names the upstream', async () => {
    const evil = await onDisk('evil.nupkg', makeNupkg({ id: 'Evil.Other', version: '6.6.6' }));
    await expectIntegrity(verifyPackage({ lowerId: 'wrongid', lowerVersion: '1.0.0', upstream: 'up' })(evil.content, evil.tail), /upstream up sent a package whose nuspec names another id than wrongid/);
    const ver = await onDisk('ver.nupkg', makeNupkg({ id: 'RightId', version: '2.0.0' }));
    await expectIntegrity(verifyPackage({ lowerId: 'rightid', lowerVersion: '1.0.0' })(ver.content, ver.tail), /another version than 1\.0\.0/);
    const pre = await onDisk('pre.nupkg', makeNupkg({ id: 'RightId', version: '1.0.0-beta' }));
    await expectIntegrity(verifyPackage({ lowerId: 'rightid', lowerVersion: '1.0.0' })(pre.content, pre.tail), /another version/);
    const lone = await onDisk('lone.nuspec', strToU8(makeNuspecXml({ id: 'Evil.Other', version: '6.6.6' })));
    await expectIntegrity(verifyNuspecOf({ lowerId: 'wrongid', lowerVersion: '1.0.0' })(lone.content), /\.nuspec whose nuspec names another id/);
    const err = await verifyPackage({ lowerId: 'wrongid', lowerVersion: '1.0.0', upstream: 'up' })(evil.content, evil.tail).catch((e: unknown) => e);
    // the upstream's text is not repeated to the client
    expect((err as Error).message).not.toMatch(/evil|6\.6\.6/i);
    expect((err as { details: Record<string, unknown> }).details.upstream).toBe('up');
  });

  it('refuses a package with no .nuspec at its root, or with two (NuGet refuses both)', async () => {
    const nuspec = strToU8(makeNuspecXml({ id: 'A', version: '1.0.0' }));
    const none = await onDisk('none.nupkg', zipSync({ 'sub/a.nuspec': nuspec, 'lib/x.dll': new Uint8Array(10) }));
    await expectIntegrity(verifyPackage({ lowerId: 'a', lowerVersion: '1.0.0' })(none.content, none.tail), /no \.nuspec at its root/);
    // the second one would be what another reader of the zip picks: the check must not choose between them
    const two = await onDisk('two.nupkg', zipSync({ 'a.nuspec': nuspec, 'B.NUSPEC': strToU8(makeNuspecXml({ id: 'B', version: '1.0.0' })) }));
    await expectIntegrity(verifyPackage({ lowerId: 'a', lowerVersion: '1.0.0' })(two.content, two.tail), /more than one \.nuspec/);
  });

  it('finds the nuspec when the central directory is larger than the kept tail (read from the file)', async () => {
    const files: Zippable = { 'Many.Files.nuspec': strToU8(makeNuspecXml({ id: 'Many.Files', version: '1.0.0' })) };
    for (let i = 0; i < 1500; i++) files[`content/${'deep/'.repeat(8)}file-${String(i).padStart(5, '0')}.txt`] = [strToU8(String(i)), { level: 0 }];
    const bytes = zipSync(files);
    const f = await onDisk('many.nupkg', bytes);
    const eocd = Buffer.from(bytes).lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    const cdSize = Buffer.from(bytes).readUInt32LE(eocd + 12);
    expect(cdSize).toBeGreaterThan(TAIL); // the case under test: the directory is not all in the tail
    await verifyPackage({ lowerId: 'many.files', lowerVersion: '1.0.0' })(f.content, f.tail);
    await expectIntegrity(verifyPackage({ lowerId: 'other', lowerVersion: '1.0.0' })(f.content, f.tail), /another id/);
  });

  describe('the real packages of this machine', () => {
    const root = findRealPackagesDir();
    const skip = needTool('real-packages', root !== undefined, 'the identity checks on real packages');
    if (skip || !root) {
      it.skip(`real packages (${skip})`, () => {});
      return;
    }
    const packages: { path: string; lowerId: string; lowerVersion: string }[] = [];
    for (const id of readdirSync(root)) {
      const idDir = join(root, id);
      let versions: string[] = [];
      try {
        versions = readdirSync(idDir);
      } catch {
        continue;
      }
      for (const v of versions) {
        const path = join(idDir, v, `${id}.${v}.nupkg`);
        if (existsSync(path)) packages.push({ path, lowerId: id, lowerVersion: v });
      }
    }

    it('every one passes, its nuspec is the one yauzl reads, and the check costs little next to the download', async () => {
      expect(packages.length).toBeGreaterThan(5);
      const timings: { name: string; size: number; tailMs: number; yauzlMs: number }[] = [];
      for (const p of packages) {
        const size = (await stat(p.path)).size;
        const content = await readerOf(p.path);
        expect(content.size).toBe(size);
        const tail = await readTail(content, TAIL); // what the writer holds at commit time
        const viaYauzl = await readNuspecBytes(content);
        expect((await nuspecOfPackage(content, tail)).equals(viaYauzl!), p.path).toBe(true);
        await verifyPackage({ lowerId: p.lowerId, lowerVersion: p.lowerVersion })(content, tail);
        // best of 5: what the check costs, not what the machine's other load does to it
        const best = async (fn: () => Promise<unknown>): Promise<number> => {
          let min = Infinity;
          for (let i = 0; i < 5; i++) {
            const t = performance.now();
            await fn();
            min = Math.min(min, performance.now() - t);
          }
          return min;
        };
        const tailMs = await best(() => verifyPackage({ lowerId: p.lowerId, lowerVersion: p.lowerVersion })(content, tail));
        const yauzlMs = await best(() => readNuspecBytes(content));
        timings.push({ name: `${p.lowerId} ${p.lowerVersion}`, size, tailMs, yauzlMs });
      }
      const total = timings.reduce((s, t) => s + t.tailMs, 0);
      const totalYauzl = timings.reduce((s, t) => s + t.yauzlMs, 0);
      const bytes = timings.reduce((s, t) => s + t.size, 0);
      const worst = timings.reduce((w, t) => (t.tailMs > w.tailMs ? t : w));
      console.log(
        `[identity] ${timings.length} real packages (${(bytes / 1048576).toFixed(1)} MB): zip + identity check ${(total / timings.length).toFixed(3)} ms per package on average ` +
          `(worst ${worst.tailMs.toFixed(3)} ms, ${worst.name}, ${(worst.size / 1048576).toFixed(1)} MB); reading the nuspec with yauzl alone: ${(totalYauzl / timings.length).toFixed(3)} ms`,
      );
      // generous ceiling: a few ms per package on a loaded machine, where its download takes far longer
      expect(total / timings.length).toBeLessThan(20);
      // and the bytes given to the caller are the package's own nuspec (kept beside it without a second read)
      const first = packages[0]!;
      let kept: Buffer | undefined;
      const size = (await stat(first.path)).size;
      const content = await readerOf(first.path);
      await verifyPackage({ lowerId: first.lowerId, lowerVersion: first.lowerVersion }, (b) => (kept = b))(content, await readTail(content, TAIL));
      expect(kept?.equals((await readNuspecBytes(content))!)).toBe(true);
      expect((await readFile(first.path)).length).toBe(size);
    });
  });
});
