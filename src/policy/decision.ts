// Supply-chain policy (issue #16): what is known about one version, and the policy's decision on it. Pure types:
// policy.ts (compilePolicy) decides, feed/ gathers the facts from the winning upstream and filters every answer.

/** The rules, as named in config, log lines, metrics, the X-Nuproxy-Policy header and /explain. */
export type PolicyRule = 'minimumAge' | 'vulnerable' | 'malicious' | 'deny' | 'licenses';

/** Advisory severities as NuGet's VulnerabilityInfo numbers them (0 low … 3 critical). */
export type Severity = 0 | 1 | 2 | 3;

/** What nuproxy knows about one version of an id, from the upstream that wins it (and imported advisories). */
export interface VersionFacts {
  lowerId: string;
  /** Normalized, lowercase (protocol/version.ts). */
  lowerVersion: string;
  /** The upstream that wins the version in the merge (its policy overrides apply). */
  upstream: string;
  /** The upstream's own published date (registration catalogEntry.published); undefined when unknown. */
  published?: string | undefined;
  /** Whether it is listed (an unlisted version's published date is 1900: never "new"). */
  listed?: boolean | undefined;
  licenseExpression?: string | undefined;
  licenseUrl?: string | undefined;
  /** Advisories from the upstream's data (registration vulnerabilities, VulnerabilityInfo). */
  vulnerabilities?: readonly { severity: Severity; advisoryUrl?: string | undefined }[] | undefined;
}

export interface Decision {
  allowed: boolean;
  /** The first rule that blocks (undefined when allowed). */
  rule?: PolicyRule | undefined;
  /** Says why, for the 404 body, the log line and /explain (e.g. "published 2 days ago; policy.minimumAge is 3d"). */
  reason?: string | undefined;
  /** Rules that would block but an exemption lets through (for /explain). */
  exempted?: readonly PolicyRule[] | undefined;
  /** Allowed, but listed for review (policy.licenses.other: list): why, for /explain and the log. */
  listed?: readonly string[] | undefined;
}

/** The compiled policy of a config. */
export interface Policy {
  /** Whether any rule is on (off: nothing is filtered and no facts are gathered: today's answers). */
  readonly active: boolean;
  /** Which facts the rules in force need (the registration is fetched for a version list only when one does). */
  readonly needs: { published: boolean; license: boolean; vulnerabilities: boolean };
  /** The decision on one version at time `now` (ms). Pure and cheap: called for every version of a list. */
  decide(facts: VersionFacts, now: number): Decision;
  /**
   * Changes whenever a decision on the same facts may change while the process runs (the imported advisories,
   * when a rule reads them); cheap to read. The rules themselves change only at a start.
   */
  readonly revision: string;
}
