/**
 * The @type strings of the NuGet V3 service index, as data (protocol notes §1.2; NuGet.Client
 * src/NuGet.Core/NuGet.Protocol/ServiceTypes.cs). Matching is exact and case-sensitive, like the client's.
 */

/** Registration hives, by what they contain (§3.1). The proxy serves each hive the upstream has under its own name. */
export const REGISTRATION_HIVES = [
  { name: 'semver2', types: ['RegistrationsBaseUrl/3.6.0', 'RegistrationsBaseUrl/Versioned'] },
  { name: 'gz-semver1', types: ['RegistrationsBaseUrl/3.4.0'] },
  { name: 'semver1', types: ['RegistrationsBaseUrl', 'RegistrationsBaseUrl/3.0.0-beta', 'RegistrationsBaseUrl/3.0.0-rc'] },
] as const;

export type HiveName = (typeof REGISTRATION_HIVES)[number]['name'];

export const PACKAGE_BASE_ADDRESS_TYPES = ['PackageBaseAddress/Versioned', 'PackageBaseAddress/3.0.0'] as const;

/** What the proxy advertises for search: the client looks for /Versioned, /3.4.0, /3.0.0-beta (§1.2, pitfall 1). */
export const SEARCH_TYPES = ['SearchQueryService', 'SearchQueryService/3.0.0-beta', 'SearchQueryService/3.0.0-rc'] as const;
export const SEARCH_TYPES_UPSTREAM = [
  'SearchQueryService/Versioned',
  'SearchQueryService/3.5.0',
  'SearchQueryService/3.4.0',
  'SearchQueryService/3.0.0-beta',
  'SearchQueryService/3.0.0-rc',
  'SearchQueryService',
] as const;
/** Advertised only when the upstream supports the packageType filter. */
export const SEARCH_PACKAGE_TYPE = 'SearchQueryService/3.5.0';

export const AUTOCOMPLETE_TYPES = [
  'SearchAutocompleteService',
  'SearchAutocompleteService/3.0.0-beta',
  'SearchAutocompleteService/3.0.0-rc',
] as const;
export const AUTOCOMPLETE_TYPES_UPSTREAM = [
  'SearchAutocompleteService/Versioned',
  'SearchAutocompleteService/3.5.0',
  'SearchAutocompleteService/3.0.0-beta',
  'SearchAutocompleteService/3.0.0-rc',
  'SearchAutocompleteService',
] as const;
export const AUTOCOMPLETE_PACKAGE_TYPE = 'SearchAutocompleteService/3.5.0';

export const VULNERABILITY_INFO_TYPE = 'VulnerabilityInfo/6.7.0';

export const PACKAGE_PUBLISH_TYPES = ['PackagePublish/Versioned', 'PackagePublish/2.0.0'] as const;
export const PACKAGE_PUBLISH_TYPE = 'PackagePublish/2.0.0';
export const SYMBOL_PUBLISH_TYPES = ['SymbolPackagePublish/Versioned', 'SymbolPackagePublish/4.9.0'] as const;
export const SYMBOL_PUBLISH_TYPE = 'SymbolPackagePublish/4.9.0';
