// The lists of a policy that name packages (policy.deny, policy.exempt.*): id patterns as upstreams[].include
// ("Newtonsoft.Json", "Contoso.*", "*") and exact versions ("Newtonsoft.Json@13.0.3"), compiled once into sets
// and prefixes so a check per version costs a few lookups. The config validated every entry (schema.ts); one
// that is still not readable here matches nothing.
import { isValidPackageId } from '../protocol/id.js';
import { patternError } from '../protocol/id-rules.js';
import { lowerNormalizedVersion } from '../protocol/version.js';

export class EntryList {
  private readonly ids = new Map<string, string>();
  private readonly prefixes: { text: string; source: string }[] = [];
  private readonly versions = new Map<string, Map<string, string>>();
  private any: string | undefined;

  constructor(readonly entries: readonly string[] = []) {
    for (const entry of entries) {
      const at = entry.indexOf('@');
      if (at >= 0) {
        const id = entry.slice(0, at);
        const version = lowerNormalizedVersion(entry.slice(at + 1));
        if (!isValidPackageId(id) || version === undefined) continue;
        const byVersion = this.versions.get(id.toLowerCase()) ?? new Map<string, string>();
        byVersion.set(version, entry);
        this.versions.set(id.toLowerCase(), byVersion);
      } else if (patternError(entry) === undefined) {
        if (entry === '*') this.any ??= entry;
        else if (entry.endsWith('*')) this.prefixes.push({ text: entry.slice(0, -1).toLowerCase(), source: entry });
        else if (!this.ids.has(entry.toLowerCase())) this.ids.set(entry.toLowerCase(), entry);
      }
    }
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** The entry (as written) that names this version of the id, or undefined. Both arguments lowercase. */
  match(lowerId: string, lowerVersion: string): string | undefined {
    if (this.any !== undefined) return this.any;
    const exact = this.ids.get(lowerId);
    if (exact !== undefined) return exact;
    for (const p of this.prefixes) if (lowerId.startsWith(p.text)) return p.source;
    return this.versions.get(lowerId)?.get(lowerVersion);
  }
}
