// `nuproxy advisories import <file|dir>...` and `nuproxy advisories list`: the malicious-package advisories the
// policy's malicious rule blocks (README "Policies"). Import reads OSV files (one advisory, an array, or folders of
// .json files such as a checkout of the OpenSSF malicious-packages repository, osv/malicious/nuget), keeps the
// NuGet MAL- entries and stores them in the cache's state area (policy/advisory-store.ts): on the disk or in the
// bucket, so a running server (which polls it) and every instance sharing the store apply them without a restart.
// Merged by advisory id by default (an air-gapped site carries updates across); --replace starts over.
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createBlobStore } from '../app.js';
import { ADVISORIES_KEY, ADVISORY_POLL_MS, importAdvisories, readAdvisories } from '../policy/advisory-store.js';
import { emptyParse, MAX_OSV_FILE_BYTES, parseOsvText, type OsvParse } from '../policy/osv.js';
import type { CliCommand } from './context.js';

const SEVERITY_NAMES = ['low', 'moderate', 'high', 'critical'] as const;

export const ADVISORIES_USAGE = `nuproxy advisories import [--config FILE] [--replace] [--json] <file|dir>...
       nuproxy advisories list [--config FILE] [--json] [ID]

Advisories for the policy (README "Policies"): malicious-package ones (MAL-) for the malicious rule
(policy.malicious, on by default: versions they name are never offered), others with a severity for the
vulnerable rule (policy.vulnerable), beside the upstreams' own advisory data.

import  reads OSV advisory files (https://ossf.github.io/osv-schema/): a .json file holding one advisory or an
        array of them, or a folder (searched recursively for .json files), e.g. osv/malicious/nuget of the OpenSSF
        malicious-packages repository. Keeps, for NuGet packages, the MAL- entries and the advisories with a
        severity (database_specific.severity, as GitHub's advisories in OSV carry it); other ecosystems and
        other advisories are counted and left out; withdrawn ones are removed from the store. Stores them in
        the cache (${ADVISORIES_KEY}, on the disk or in the bucket): a running server applies them within
        ${ADVISORY_POLL_MS / 1000}s, and \`nuproxy export\` carries them to the other side of an air gap.
        Merged with what is stored, by advisory id (the newer "modified" wins). Any file that is not a readable
        advisory refuses the whole import, naming the file; nothing is stored then.
list    prints the stored advisories (id, packages, summary); with ID, only advisories or packages matching it.

Options:
  --replace   import: drop the stored advisories first (the default merges)
  --json      print the summary (import) or the advisories (list) as JSON
  --help, -h  this text

Exit codes: 0 done; 1 refused or failed; 2 usage.
`;

/** Most files one import reads (the OpenSSF repository holds about two thousand NuGet ones). */
const MAX_FILES = 500_000;
const MAX_DEPTH = 16;

/** The .json files of the arguments, in a stable order; folders recursively (symbolic links are not followed). */
async function inputFiles(paths: readonly string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new Error(`${dir}: folders nested deeper than ${MAX_DEPTH}`);
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== '.git') await walk(path, depth + 1);
      } else if (e.isFile() && e.name.toLowerCase().endsWith('.json')) {
        if (out.length >= MAX_FILES) throw new Error(`${dir}: more than ${MAX_FILES} .json files`);
        out.push(path);
      }
    }
  };
  for (const p of paths) {
    const path = resolve(cwd, p);
    const info = await lstat(path).catch(() => undefined);
    if (!info) throw new Error(`${p}: no such file or folder`);
    if (info.isDirectory()) await walk(path, 0);
    else out.push(path); // a file named on the command line is read whatever its name
  }
  return out;
}

async function parseFiles(files: readonly string[]): Promise<OsvParse> {
  const into = emptyParse();
  for (const file of files) {
    const size = (await stat(file)).size;
    if (size > MAX_OSV_FILE_BYTES) throw new Error(`${file}: ${size} bytes, larger than ${MAX_OSV_FILE_BYTES}: not an advisory file`);
    parseOsvText(await readFile(file, 'utf8'), file, into);
  }
  return into;
}

export const advisoriesCommand: CliCommand = async (args, ctx) => {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { replace: { type: 'boolean' }, json: { type: 'boolean' } } });
  } catch (err) {
    ctx.stderr.write(`nuproxy advisories: ${(err as Error).message}\n\nUsage: ${ADVISORIES_USAGE}`);
    return 2;
  }
  const [sub, ...rest] = parsed.positionals;
  const { values } = parsed;
  if ((sub !== 'import' && sub !== 'list') || (sub === 'import' && rest.length === 0) || (sub === 'list' && (rest.length > 1 || values.replace))) {
    ctx.stderr.write(`nuproxy advisories: ${sub === undefined ? 'import or list?' : sub === 'import' ? 'import what? (files or folders of OSV advisories)' : `unexpected ${JSON.stringify(sub === 'list' ? (values.replace ? '--replace' : rest[1]) : sub)}`}\n\nUsage: ${ADVISORIES_USAGE}`);
    return 2;
  }
  const blobs = await createBlobStore(ctx.loaded);
  await blobs.init({ sweep: false }); // a server may be running on this store
  try {
    if (sub === 'list') return await list(blobs, rest[0], values.json === true, ctx);
    const files = await inputFiles(rest, ctx.cwd);
    const input = await parseFiles(files);
    const summary = await importAdvisories(blobs, input, values.replace ? 'replace' : 'merge');
    const { ignored } = summary;
    if (values.json) ctx.stdout.write(`${JSON.stringify({ files: files.length, ...summary })}\n`);
    else {
      const left = [
        ignored.otherEcosystem > 0 ? `${ignored.otherEcosystem} of other ecosystems` : '',
        ignored.withoutSeverity > 0 ? `${ignored.withoutSeverity} neither MAL- nor with a severity` : '',
        ignored.invalidId > 0 ? `${ignored.invalidId} packages whose names cannot be NuGet ids` : '',
      ].filter(Boolean);
      ctx.stdout.write(
        [
          `Read ${files.length} file${files.length === 1 ? '' : 's'}: ${summary.read - summary.vulnerabilities} NuGet malicious-package advisories, ${summary.vulnerabilities} with a severity${left.length > 0 ? ` (left out: ${left.join(', ')})` : ''}.`,
          `${summary.mode === 'replace' ? 'Replaced the stored advisories' : 'Merged'}: ${summary.added} new, ${summary.updated} updated, ${summary.removed} withdrawn and removed.`,
          `Stored: ${summary.total} advisories naming ${summary.packageIds} package ids (${ADVISORIES_KEY}); a running server applies them within ${ADVISORY_POLL_MS / 1000}s.`,
          '',
        ].join('\n'),
      );
    }
    if (!ctx.loaded.config.policy.malicious) ctx.stderr.write('nuproxy advisories: note: policy.malicious is false in this config: the advisories block nothing until it is true\n');
    return 0;
  } catch (err) {
    ctx.stderr.write(`nuproxy advisories ${sub}: ${(err as Error).message}${sub === 'import' ? '\nNothing was stored.' : ''}\n`);
    return 1;
  }
};

async function list(blobs: Parameters<typeof readAdvisories>[0], filter: string | undefined, json: boolean, ctx: Parameters<CliCommand>[1]): Promise<number> {
  const read = await readAdvisories(blobs);
  if (read.state === 'corrupt') {
    ctx.stderr.write(`nuproxy advisories list: ${ADVISORIES_KEY} cannot be read: ${read.error}\n`);
    return 1;
  }
  const f = filter?.toLowerCase();
  const shown = [...read.set.advisories.values()]
    .filter((a) => f === undefined || a.id.toLowerCase() === f || a.affected.some((p) => p.name.toLowerCase() === f))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (json) {
    ctx.stdout.write(`${JSON.stringify(shown.map((a) => ({ id: a.id, modified: a.modified, summary: a.summary, ...(a.severity !== undefined ? { severity: SEVERITY_NAMES[a.severity] } : {}), packages: a.affected.map((p) => ({ id: p.name, versions: p.all ? 'all' : p.versions, ranges: p.ranges })) })))}\n`);
    return 0;
  }
  const lines = shown.map((a) => {
    const pkgs = a.affected.map((p) => `${p.name} ${p.all ? '(all versions)' : `(${[...p.versions.slice(0, 5), ...(p.versions.length > 5 ? [`… ${p.versions.length} versions`] : [])].join(', ')}${p.ranges.length > 0 ? `${p.versions.length > 0 ? '; ' : ''}${p.ranges.length} range${p.ranges.length === 1 ? '' : 's'}` : ''})`}`);
    return `${a.id}${a.severity !== undefined ? ` [${SEVERITY_NAMES[a.severity]}]` : ''}  ${pkgs.join(', ')}${a.summary ? `  ${a.summary}` : ''}`;
  });
  ctx.stdout.write(`${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${shown.length} of ${read.set.size} stored advisories${read.state === 'absent' ? ' (none imported yet: nuproxy advisories import)' : ''}\n`);
  return 0;
}
