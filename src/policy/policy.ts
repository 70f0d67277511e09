// compilePolicy: the config's `policy` section (and each upstream's override) turned into the Policy of
// decision.ts. Rules are checked in a fixed order, deny, malicious, vulnerable, minimumAge, licenses, and the first
// that blocks (and is not exempted) is the decision; every reason names the rule's config key and the figures, so
// the 404 body, the log line and /explain say exactly why. Everything is compiled once; `decide` is a few lookups.
import type { PolicyConfig, PolicyOverride } from '../config/schema.js';
import { AdvisorySet, type AdvisorySource } from './advisories.js';
import type { Decision, Policy, PolicyRule, Severity, VersionFacts } from './decision.js';
import { EntryList } from './entries.js';
import { LicenseAllowList } from './licenses.js';

const SEVERITY_NAMES = ['low', 'moderate', 'high', 'critical'] as const;

const DAY = 86_400_000;
/** An unlisted version's published date on nuget.org (1900-01-01): such a version is never "new". */
const UNLISTED_BEFORE = Date.UTC(1901, 0, 1);

/** A duration as config writes it: "3d", "12h", "90m", "30s" (ms when nothing rounder fits). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', DAY], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0 && ms >= size) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function ago(ms: number): string {
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'} ago`;
  if (ms < 0) return 'in the future';
  if (ms >= DAY) return plural(Math.floor(ms / DAY), 'day');
  if (ms >= 3_600_000) return plural(Math.floor(ms / 3_600_000), 'hour');
  return plural(Math.floor(ms / 60_000), 'minute');
}

/** One upstream's rules (the global ones with its override merged over them), compiled. */
interface Rules {
  minimumAge: number;
  vulnerable: Severity | undefined;
  malicious: boolean;
  deny: EntryList;
  licenses: LicenseAllowList | undefined;
  other: 'allow' | 'block' | 'list';
  exempt: Record<'minimumAge' | 'vulnerable' | 'licenses', EntryList>;
  /** The config key each value came from: "policy.minimumAge" or "upstreams[company].policy.minimumAge". */
  key: (name: string) => string;
  /** What identifies these rules in the fingerprint. */
  text: string;
}

type Merged = Omit<PolicyConfig, 'licenses' | 'exempt'> & { licenses: PolicyConfig['licenses']; exempt: PolicyConfig['exempt'] };

function merge(global: PolicyConfig, o: PolicyOverride): { merged: Merged; overridden: Set<string> } {
  const overridden = new Set<string>();
  const pick = <T>(name: string, over: T | undefined, base: T): T => {
    if (over === undefined) return base;
    overridden.add(name);
    return over;
  };
  return {
    merged: {
      minimumAge: pick('minimumAge', o.minimumAge, global.minimumAge),
      vulnerable: pick('vulnerable', o.vulnerable, global.vulnerable),
      malicious: pick('malicious', o.malicious, global.malicious),
      deny: pick('deny', o.deny, global.deny),
      licenses: {
        allow: pick('licenses.allow', o.licenses?.allow, global.licenses.allow),
        other: pick('licenses.other', o.licenses?.other, global.licenses.other),
      },
      exempt: {
        minimumAge: pick('exempt.minimumAge', o.exempt?.minimumAge, global.exempt.minimumAge),
        vulnerable: pick('exempt.vulnerable', o.exempt?.vulnerable, global.exempt.vulnerable),
        licenses: pick('exempt.licenses', o.exempt?.licenses, global.exempt.licenses),
      },
    },
    overridden,
  };
}

function compileRules(c: Merged, key: (name: string) => string): Rules {
  const severity = c.vulnerable === 'off' ? undefined : (SEVERITY_NAMES.indexOf(c.vulnerable) as Severity);
  return {
    minimumAge: c.minimumAge,
    vulnerable: severity,
    malicious: c.malicious,
    deny: new EntryList(c.deny),
    licenses: c.licenses.allow.length > 0 ? new LicenseAllowList(c.licenses.allow) : undefined,
    other: c.licenses.other,
    exempt: { minimumAge: new EntryList(c.exempt.minimumAge), vulnerable: new EntryList(c.exempt.vulnerable), licenses: new EntryList(c.exempt.licenses) },
    key,
    text: JSON.stringify(c),
  };
}

/** Whether a rule of these rules can block something without advisories (malicious needs imported ones). */
function staticallyOn(r: Rules): boolean {
  return r.minimumAge > 0 || r.vulnerable !== undefined || !r.deny.empty || r.licenses !== undefined;
}

const ALLOWED: Decision = Object.freeze({ allowed: true });

/** The compiled policy. Beyond the Policy interface: `fingerprint`, which changes whenever a decision could. */
export class CompiledPolicy implements Policy {
  readonly needs: Policy['needs'];
  private readonly global: Rules;
  private readonly byUpstream = new Map<string, Rules>();
  private readonly on: boolean;
  private readonly anyMalicious: boolean;
  private readonly advisories: () => AdvisorySet;

  constructor(config: PolicyConfig, overrides: ReadonlyMap<string, PolicyOverride | undefined>, advisories: AdvisorySource) {
    this.advisories = typeof advisories === 'function' ? advisories : () => advisories;
    this.global = compileRules(config, (name) => `policy.${name}`);
    for (const [upstream, o] of overrides) {
      if (!o) continue;
      const { merged, overridden } = merge(config, o);
      this.byUpstream.set(upstream.toLowerCase(), compileRules(merged, (name) => (overridden.has(name) ? `upstreams[${upstream}].policy.${name}` : `policy.${name}`)));
    }
    const all = [this.global, ...this.byUpstream.values()];
    this.on = all.some(staticallyOn);
    this.anyMalicious = all.some((r) => r.malicious);
    this.needs = Object.freeze({
      published: all.some((r) => r.minimumAge > 0),
      license: all.some((r) => r.licenses !== undefined),
      vulnerabilities: all.some((r) => r.vulnerable !== undefined),
    });
  }

  /** Off (false) means every answer is exactly what it would be without a policy. */
  get active(): boolean {
    return this.on || (this.anyMalicious && this.advisories().maliciousAdvisories > 0);
  }

  get revision(): string {
    return this.anyMalicious || this.needs.vulnerabilities ? this.advisories().revision : '';
  }

  /** Equal strings: equal decisions for equal facts (the rules, and the imported advisories when a rule reads them). */
  get fingerprint(): string {
    const rules = [this.global.text, ...[...this.byUpstream].map(([name, r]) => `${name}=${r.text}`)].join('|');
    return `${hash(rules)}-${this.anyMalicious || this.needs.vulnerabilities ? this.advisories().revision : 'none'}`;
  }

  decide(f: VersionFacts, now: number): Decision {
    const r = this.byUpstream.get(f.upstream.toLowerCase()) ?? this.global;
    let exempted: PolicyRule[] | undefined;
    const block = (rule: PolicyRule, reason: string): Decision => ({ allowed: false, rule, reason, ...(exempted ? { exempted } : {}) });
    /** The rule blocks: either an exemption lets the version through (noted) or this is the decision. */
    const blocks = (rule: 'minimumAge' | 'vulnerable' | 'licenses', reason: string): Decision | undefined => {
      if (r.exempt[rule].match(f.lowerId, f.lowerVersion) === undefined) return block(rule, reason);
      (exempted ??= []).push(rule);
      return undefined;
    };

    const denied = r.deny.match(f.lowerId, f.lowerVersion);
    if (denied !== undefined) return block('deny', `${JSON.stringify(denied)} is in ${r.key('deny')}`);

    if (r.malicious) {
      const hit = this.advisories().match(f.lowerId, f.lowerVersion);
      if (hit) return block('malicious', `named by the malicious-package advisory ${hit.id}${hit.summary ? ` ("${hit.summary}")` : ''}; ${r.key('malicious')} is true`);
    }

    if (r.vulnerable !== undefined) {
      // the upstream's advisories, and imported ones with a severity
      const imported = this.advisories().vulnerabilities(f.lowerId, f.lowerVersion);
      const all = imported.length === 0 ? (f.vulnerabilities ?? []) : [...(f.vulnerabilities ?? []), ...imported];
      let worst: { severity: Severity; advisoryUrl?: string | undefined } | undefined;
      let count = 0;
      for (const v of all) {
        if (v.severity < r.vulnerable) continue;
        count++;
        if (!worst || v.severity > worst.severity) worst = v;
      }
      if (worst) {
        const url = worst.advisoryUrl ? ` (${worst.advisoryUrl.slice(0, 300)})` : '';
        const what = count === 1 ? `an advisory of severity ${SEVERITY_NAMES[worst.severity]}${url}` : `${count} advisories at or above ${SEVERITY_NAMES[r.vulnerable]}, the worst ${SEVERITY_NAMES[worst.severity]}${url}`;
        const d = blocks('vulnerable', `has ${what}; ${r.key('vulnerable')} is ${SEVERITY_NAMES[r.vulnerable]}`);
        if (d) return d;
      }
    }

    if (r.minimumAge > 0 && f.published !== undefined && f.listed !== false) {
      const published = Date.parse(f.published);
      // an unknown date is no evidence of youth; an unlisted version (1900) is not new
      if (Number.isFinite(published) && published >= UNLISTED_BEFORE && now - published < r.minimumAge) {
        const from = new Date(published + r.minimumAge).toISOString().slice(0, 16) + 'Z';
        const d = blocks('minimumAge', `published ${new Date(published).toISOString().slice(0, 10)}, ${ago(now - published)}; ${r.key('minimumAge')} is ${formatDuration(r.minimumAge)} (offered from ${from})`);
        if (d) return d;
      }
    }

    let listed: string[] | undefined;
    if (r.licenses) {
      const l = licenseReason(r, f);
      if (l?.listed) listed = [l.reason];
      else if (l !== undefined) {
        const d = blocks('licenses', l.reason);
        if (d) return d;
      }
    }
    return exempted || listed ? { allowed: true, ...(exempted ? { exempted } : {}), ...(listed ? { listed } : {}) } : ALLOWED;
  }
}

/**
 * Why the licence rule blocks this version (or, with licenses.other list, lists it: `listed`), or undefined when
 * it allows it.
 */
function licenseReason(r: Rules, f: VersionFacts): { reason: string; listed?: true } | undefined {
  const b = (reason: string): { reason: string; listed?: true } => ({ reason });
  const other = (reason: string): { reason: string; listed?: true } | undefined =>
    r.other === 'allow' ? undefined : r.other === 'list' ? { reason: `${reason}; ${r.key('licenses.other')} is list (offered)`, listed: true } : { reason: `${reason}; ${r.key('licenses.other')} is block` };
  const allow = r.licenses!;
  const list = allow.entries.length <= 8 ? ` (${allow.entries.join(', ')})` : '';
  const expr = f.licenseExpression?.trim();
  if (expr) {
    const verdict = allow.judge(expr);
    if (verdict === 'allowed') return undefined;
    if (verdict === 'blocked') return b(`licence ${JSON.stringify(expr.slice(0, 200))} is not allowed by ${r.key('licenses.allow')}${list}`);
    return other(`licence expression ${JSON.stringify(expr.slice(0, 200))} is not understood`);
  }
  const what = f.licenseUrl ? `only a licence URL or file (${f.licenseUrl.slice(0, 200)})` : 'no licence expression';
  return other(`has ${what}`);
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

/**
 * The policy of a config: `config` is Config['policy'], `upstreamOverrides` each upstream's `policy` by upstream
 * name (Config['upstreams'][i].policy; absent ones may be left out), `advisories` the imported malicious-package
 * advisories (a set, or a function giving the current one: see watchAdvisories).
 */
export function compilePolicy(
  config: PolicyConfig,
  upstreamOverrides: ReadonlyMap<string, PolicyOverride | undefined> = new Map(),
  advisories: AdvisorySource = new AdvisorySet(),
): CompiledPolicy {
  return new CompiledPolicy(config, upstreamOverrides, advisories);
}

/** The overrides map of a config's upstreams (what compilePolicy's second argument wants). */
export function upstreamOverrides(upstreams: readonly { name: string; policy?: PolicyOverride | undefined }[]): Map<string, PolicyOverride> {
  return new Map(upstreams.filter((u) => u.policy !== undefined).map((u) => [u.name, u.policy!]));
}
