import { SecretSet, type SecretSource } from '../upstream/secrets.js';

/**
 * The SecretSet for what nuproxy relays and writes (publish answers, JSON error bodies, log lines): the
 * secrets as they travel (SecretSet adds the base64 forms), and each as it reads inside a JSON string, since
 * log lines and JSON bodies quote text with `"`, `\` and control characters escaped. A password with a quote
 * in it would otherwise get past the redaction of a log line that quotes it.
 */
export function relaySecrets(sources: readonly SecretSource[]): SecretSet {
  const all: SecretSource[] = [...sources];
  for (const s of sources) {
    const escaped = JSON.stringify(s.value).slice(1, -1);
    if (escaped !== s.value) all.push({ label: s.label, value: escaped });
  }
  return new SecretSet(all);
}
