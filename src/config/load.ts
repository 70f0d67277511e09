import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config, type AuthConfig } from './schema.js';
import { NuproxyError } from '../errors.js';

/** Environment variables that override config keys (documented in the README). */
export const ENV_OVERRIDES = {
  NUPROXY_CONFIG: 'config file path (same as --config)',
  NUPROXY_HOST: 'listen.host',
  NUPROXY_PORT: 'listen.port',
  NUPROXY_PUBLIC_URL: 'publicUrl',
  NUPROXY_CACHE_DIR: 'cache.dir',
  NUPROXY_REDIS_URL: 'cache.metadata',
  NUPROXY_LOG_LEVEL: 'log.level',
  NUPROXY_OFFLINE: 'offline (true/false)',
  NUPROXY_WORKERS: 'workers (a number, or auto)',
} as const;

export type Env = Readonly<Record<string, string | undefined>>;

/** Secrets resolved from the environment variables named in the config, kept apart from the (loggable) config. */
export type ResolvedAuth =
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'header'; header: string; value: string };

export interface LoadedConfig {
  config: Readonly<Config>;
  secrets: ReadonlyMap<string, ResolvedAuth>; // by upstream name
  /** The writable upstream's push key in mapped key mode (from publish.upstreamKeyEnv). */
  publishKey?: string;
  /** The S3 keys (storage.kind s3), from the variables storage.s3 names. */
  s3Credentials?: { accessKeyId: string; secretAccessKey: string };
  source: string; // file path or "defaults"
}

function configError(problems: string[], source: string): NuproxyError {
  return new NuproxyError('CONFIG_INVALID', `invalid configuration (${source}):\n  - ${problems.join('\n  - ')}`, { problems });
}

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError([`cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], path);
  }
  try {
    const doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    return doc ?? {};
  } catch (err) {
    throw configError([`cannot parse config file: ${(err as Error).message}`], path);
  }
}

function applyEnv(raw: Record<string, unknown>, env: Env, problems: string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  const section = (k: string): Record<string, unknown> => {
    const v = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    const created: Record<string, unknown> = {};
    out[k] = created;
    return created;
  };
  if (env.NUPROXY_HOST) section('listen').host = env.NUPROXY_HOST;
  if (env.NUPROXY_PORT) {
    const port = Number(env.NUPROXY_PORT);
    if (!Number.isInteger(port)) problems.push(`NUPROXY_PORT: not a port number: ${JSON.stringify(env.NUPROXY_PORT)}`);
    else section('listen').port = port;
  }
  if (env.NUPROXY_PUBLIC_URL) out.publicUrl = env.NUPROXY_PUBLIC_URL;
  if (env.NUPROXY_CACHE_DIR) section('cache').dir = env.NUPROXY_CACHE_DIR;
  if (env.NUPROXY_REDIS_URL) section('cache').metadata = env.NUPROXY_REDIS_URL;
  if (env.NUPROXY_LOG_LEVEL) section('log').level = env.NUPROXY_LOG_LEVEL;
  if (env.NUPROXY_OFFLINE) {
    if (/^(1|true|yes)$/i.test(env.NUPROXY_OFFLINE)) out.offline = true;
    else if (/^(0|false|no)$/i.test(env.NUPROXY_OFFLINE)) out.offline = false;
    else problems.push(`NUPROXY_OFFLINE: not true or false: ${JSON.stringify(env.NUPROXY_OFFLINE)}`);
  }
  if (env.NUPROXY_WORKERS) {
    const w = env.NUPROXY_WORKERS.trim();
    if (w === 'auto') out.workers = 'auto';
    else if (/^\d+$/.test(w)) out.workers = Number(w);
    else problems.push(`NUPROXY_WORKERS: not a number or "auto": ${JSON.stringify(env.NUPROXY_WORKERS)}`);
  }
  return out;
}

function resolveSecret(auth: AuthConfig, env: Env, path: string, problems: string[]): ResolvedAuth | undefined {
  const need = (name: string, key: string): string | undefined => {
    const v = env[name];
    if (v === undefined || v === '') problems.push(`${path}.${key}: environment variable ${name} is not set`);
    return v;
  };
  switch (auth.type) {
    case 'basic': {
      const password = need(auth.passwordEnv, 'passwordEnv');
      return password === undefined ? undefined : { type: 'basic', username: auth.username, password };
    }
    case 'bearer': {
      const token = need(auth.tokenEnv, 'tokenEnv');
      return token === undefined ? undefined : { type: 'bearer', token };
    }
    case 'header': {
      const value = need(auth.valueEnv, 'valueEnv');
      return value === undefined ? undefined : { type: 'header', header: auth.header, value };
    }
  }
}

/** Validates a raw config object (as read from a file) plus env overrides; lists every problem with its key path. */
export function validateConfig(raw: unknown, env: Env = {}, source = 'defaults'): LoadedConfig {
  const problems: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError(['the config file must hold a mapping (key: value) at the top level'], source);
  }
  const withEnv = applyEnv(raw as Record<string, unknown>, env, problems);
  const parsed = configSchema.safeParse(withEnv);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
      problems.push(`${path || '(root)'}: ${issue.message}`);
    }
  }
  const secrets = new Map<string, ResolvedAuth>();
  if (parsed.success) {
    parsed.data.upstreams.forEach((u, i) => {
      if (!u.auth) return;
      const s = resolveSecret(u.auth, env, `upstreams[${i}].auth`, problems);
      if (s) secrets.set(u.name, s);
    });
  }
  let publishKey: string | undefined;
  if (parsed.success && parsed.data.publish.keyMode === 'mapped' && parsed.data.publish.upstreamKeyEnv) {
    const name = parsed.data.publish.upstreamKeyEnv;
    publishKey = env[name];
    if (!publishKey) problems.push(`publish.upstreamKeyEnv: environment variable ${name} is not set`);
  }
  if (parsed.success && parsed.data.publish.keyMode === 'mapped' && !parsed.data.upstreams.some((u) => u.writable)) {
    problems.push('publish.keyMode: mapped keys need an upstream with writable: true');
  }
  // a certificate is only ever verified (and so only ever maps to a token) when tls.clientCa asks clients for one
  if (parsed.success && parsed.data.access.certificates.length > 0 && parsed.data.tls?.clientCa === undefined) {
    problems.push('access.certificates: client certificates are only asked for with tls.clientCa (the CA that signs them) set: set tls.cert, tls.key and tls.clientCa, or remove access.certificates');
  }
  let s3Credentials: LoadedConfig['s3Credentials'];
  const s3 = parsed.success && parsed.data.storage.kind === 's3' ? parsed.data.storage.s3 : undefined;
  if (s3) {
    const accessKeyId = env[s3.accessKeyIdEnv];
    const secretAccessKey = env[s3.secretAccessKeyEnv];
    if (!accessKeyId) problems.push(`storage.s3.accessKeyIdEnv: environment variable ${s3.accessKeyIdEnv} is not set`);
    if (!secretAccessKey) problems.push(`storage.s3.secretAccessKeyEnv: environment variable ${s3.secretAccessKeyEnv} is not set`);
    if (accessKeyId && secretAccessKey) s3Credentials = { accessKeyId, secretAccessKey };
  }
  if (problems.length > 0 || !parsed.success) throw configError(problems, source);
  return { config: deepFreeze(parsed.data), secrets, ...(publishKey ? { publishKey } : {}), ...(s3Credentials ? { s3Credentials } : {}), source };
}

/** Loads the config file (if any) named by --config or NUPROXY_CONFIG, then env overrides, then validates. */
export function loadConfig(configPath: string | undefined, env: Env): LoadedConfig {
  const path = configPath ?? env.NUPROXY_CONFIG;
  const raw = path ? readConfigFile(path) : {};
  return validateConfig(raw, env, path ?? 'defaults');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** One configured secret, as SecretSet (src/upstream/secrets.ts) takes it. */
export interface SecretSource {
  /** Where it comes from, for the start-up warning (never the value). */
  label: string;
  value: string;
  /** Basic auth: the user name, so the header's base64 form is known too. */
  basicUser?: string;
}

/** Every secret the loaded config holds, for SecretSet (src/upstream/secrets.ts). */
export function secretSources(loaded: LoadedConfig): SecretSource[] {
  const out: SecretSource[] = [];
  for (const [name, a] of loaded.secrets) {
    if (a.type === 'basic') out.push({ label: `upstream ${name} password`, value: a.password, basicUser: a.username });
    else if (a.type === 'bearer') out.push({ label: `upstream ${name} token`, value: a.token });
    else out.push({ label: `upstream ${name} ${a.header} value`, value: a.value });
  }
  if (loaded.publishKey) out.push({ label: 'publish.upstreamKeyEnv key', value: loaded.publishKey });
  if (loaded.s3Credentials) {
    out.push({ label: 'storage.s3.accessKeyIdEnv key', value: loaded.s3Credentials.accessKeyId });
    out.push({ label: 'storage.s3.secretAccessKeyEnv key', value: loaded.s3Credentials.secretAccessKey });
  }
  return out;
}
