// The roots `nuproxy warm` starts from, and what every input reader shares: the error type and the checks.
import { isValidPackageId } from '../protocol/id.js';
import { parseVersion } from '../protocol/version.js';

/** A package to warm, as an input names it: an exact version or a range to resolve. */
export interface WarmRoot {
  id: string;
  /** An exact version (lock files, assets files, `id@1.2.3` lines). */
  version?: string;
  /** A NuGet version range or floating version (project files: a bare version means ">= it"). */
  range?: string;
  /** Where it was read: "file:line" (or just the file). */
  source?: string;
  /**
   * Read from a lock or assets file, which lists the whole resolved closure already: warm fetches it as is and
   * does not resolve its dependencies again (unless asked to, with --all-frameworks).
   */
  locked?: boolean;
  /** The target frameworks (as the file names them, e.g. "net8.0", "net8.0/linux-x64") the file lists it under. */
  frameworks?: string[];
}

/** What shapes the roots read from the inputs. */
export interface ReadOptions {
  /**
   * Keep only the lock and assets file targets of these frameworks (--tfm); a file with targets but none of
   * these is an error (a typo would otherwise warm nothing). Empty or absent: every target the file names.
   */
  tfms?: readonly string[];
}

/** An input that cannot be read or understood; the message names the file (and line when known). */
export class WarmInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WarmInputError';
  }
}

/** "file:line", or the file alone when the line is not known. */
export function at(file: string, line: number | undefined): string {
  return line === undefined ? file : `${file}:${line}`;
}

/** The id, or an error naming where it was read. */
export function checkedId(id: string, where: string): string {
  if (!isValidPackageId(id)) throw new WarmInputError(`${where}: not a valid package id: ${JSON.stringify(id)}`);
  return id;
}

/** The version (trimmed), or an error naming where it was read. */
export function checkedVersion(version: string, where: string): string {
  if (!parseVersion(version)) throw new WarmInputError(`${where}: not a valid version: ${JSON.stringify(version)}`);
  return version.trim();
}
