/**
 * The proxy's own URL space. Documents are stored with the placeholder base BASE and rendered per request by
 * replacing it with the public base URL, so one cached document serves every host name the proxy answers to.
 * (".invalid" is reserved by RFC 2606; it can never be a real upstream host.)
 */
export const BASE = 'https://nuproxy.invalid/';

export const FLAT_PATH = 'v3/flat/';
export const REGISTRATION_PATH = 'v3/registration/';

export function flatBase(base = BASE): string {
  return base + FLAT_PATH;
}

export function hiveBase(hive: string, base = BASE): string {
  return `${base}${REGISTRATION_PATH}${hive}/`;
}

export function registrationIndexUrl(hive: string, lowerId: string, base = BASE): string {
  return `${hiveBase(hive, base)}${lowerId}/index.json`;
}

export function registrationPageUrl(hive: string, lowerId: string, lower: string, upper: string, base = BASE): string {
  return `${hiveBase(hive, base)}${lowerId}/page/${lower}/${upper}.json`;
}

export function registrationLeafUrl(hive: string, lowerId: string, lowerVersion: string, base = BASE): string {
  return `${hiveBase(hive, base)}${lowerId}/${lowerVersion}.json`;
}

export function packageContentUrl(lowerId: string, lowerVersion: string, base = BASE): string {
  return `${flatBase(base)}${lowerId}/${lowerVersion}/${lowerId}.${lowerVersion}.nupkg`;
}

/**
 * Replaces the placeholder base in a stored document with the public base URL (which ends with "/"). A replacer
 * function, not a replacement string: in a string "$&", "$'" and "$`" are patterns, and "$" is legal in a URL.
 */
export function render(stored: string, publicBase: string): string {
  return stored.includes(BASE) ? stored.replaceAll(BASE, () => publicBase) : stored;
}
