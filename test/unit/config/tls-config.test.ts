// tls.clientCa and access.certificates: a certificate mapping is refused at load time unless tls.clientCa makes
// the server ask for (and verify) client certificates; with it, the config loads.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { isNuproxyError } from '../../../src/errors.js';

function problems(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    if (isNuproxyError(err, 'CONFIG_INVALID')) return err.details.problems as string[];
    throw err;
  }
  return [];
}

const access = {
  tokens: [{ name: 'ci', permissions: ['read'] }],
  certificates: [{ subject: 'CN=build-agent,O=Contoso', token: 'ci' }],
};

describe('tls.clientCa and access.certificates', () => {
  it('refuses access.certificates without tls at all', () => {
    expect(problems({ access })).toEqual([expect.stringMatching(/^access\.certificates: .*tls\.clientCa/)]);
  });

  it('refuses access.certificates with tls but without tls.clientCa', () => {
    expect(problems({ access, tls: { cert: 'cert.pem', key: 'key.pem' } })).toEqual([expect.stringMatching(/^access\.certificates: .*tls\.clientCa/)]);
  });

  it('loads access.certificates with tls.clientCa', () => {
    const loaded = validateConfig({ access, tls: { cert: 'cert.pem', key: 'key.pem', clientCa: 'ca.pem' } });
    expect(loaded.config.tls?.clientCa).toBe('ca.pem');
    expect(loaded.config.access.certificates).toEqual(access.certificates);
  });

  it('loads tls.clientCa alone (every client needs a certificate; none maps to a token)', () => {
    expect(problems({ tls: { cert: 'cert.pem', key: 'key.pem', clientCa: 'ca.pem' } })).toEqual([]);
  });
});
