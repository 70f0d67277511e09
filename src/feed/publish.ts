import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NuproxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { isValidPackageId, lowerId as toLowerId } from '../protocol/id.js';
import { normalizeVersion, parseVersion } from '../protocol/version.js';
import { readNuspecIdentity, type NuspecIdentity } from './nuspec.js';
import { packageCopy, spoolPush, teeInto } from './push-copy.js';
import type { Upstream } from './upstream.js';
import type { SecretSet } from '../upstream/secrets.js';
import { relayedAnswer, type PublishAnswer, type UpstreamAnswer } from './publish-answer.js';

export type { PublishAnswer } from './publish-answer.js';

export interface PublishOptions {
  /**
   * passthrough: the client's X-NuGet-ApiKey goes to the upstream; mapped: the upstream gets `upstreamKey`. Who
   * may push at all is access control's (src/access/, checked by http/ before a publish route runs): in mapped
   * mode the client's key is a nuproxy token with the push permission (publish.keys are such tokens).
   */
  keyMode: 'passthrough' | 'mapped';
  upstreamKey: string | undefined; // mapped mode: the key the upstream gets
  maxPackageSize: number;
  timeoutMs: number;
  tmpDir: string; // for the copy of a pushed package the proxy reads its id from (push-copy.ts), and scoped pushes' spools
  /** The configured secrets: cut out of every answer relayed to the client (relaySecrets). */
  secrets: SecretSet;
}

/** The client headers a push carries to the upstream (protocol notes §5.7, §9.1). */
const FORWARDED = ['content-type', 'content-length', 'x-nuget-client-version', 'x-nuget-protocol-version', 'x-nuget-session-id', 'user-agent'];

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Push, delete and relist go to the one writable upstream's own PackagePublish (and SymbolPackagePublish) URL.
 * Package bodies stream through (never held in memory) under a size limit; a copy of the package goes to a temp
 * file so the proxy can read which id was pushed and drop every cached answer about it once the upstream has
 * accepted it. A push with a token limited to some ids is spooled whole instead, and its id checked before the
 * upstream sees any of it. API keys are never logged, stored or echoed, and no configured secret comes back in an
 * answer.
 */
export class Publisher {
  constructor(
    private readonly writable: Upstream | undefined,
    private readonly opts: PublishOptions,
    private readonly invalidate: (lowerId: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.writable !== undefined;
  }

  async symbolsEnabled(): Promise<boolean> {
    if (!this.writable) return false;
    try {
      return (await this.writable.resources()).resources.symbolPublish !== undefined;
    } catch {
      return false;
    }
  }

  private target(): Upstream {
    if (!this.writable) {
      throw new NuproxyError('READ_ONLY', 'this feed is read-only: no upstream is configured with writable: true');
    }
    return this.writable;
  }

  /** The key the upstream gets (mapped mode: never the client's, which access control has checked). */
  private upstreamKey(clientKey: string | undefined): string | undefined {
    return this.opts.keyMode === 'passthrough' ? clientKey : this.opts.upstreamKey;
  }

  private headersFor(clientHeaders: Record<string, string | string[] | undefined>, key: string | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of FORWARDED) {
      const v = clientHeaders[name];
      if (typeof v === 'string') out[name] = v;
    }
    if (key) out['x-nuget-apikey'] = key;
    return out;
  }

  /**
   * Pushes a package (or symbol package) body. With `allowId` (a token with id scopes) the body is spooled to
   * disk first and its id read: one outside the scopes is refused (FORBIDDEN), one that cannot be read too
   * (BAD_REQUEST), and in both cases not a byte reaches the upstream. Without it the body streams through.
   */
  async push(
    kind: 'package' | 'symbols',
    clientHeaders: Record<string, string | string[] | undefined>,
    body: Readable,
    allowId?: (lowerId: string) => boolean,
  ): Promise<PublishAnswer> {
    const src = this.target();
    const key = this.upstreamKey(headerOf(clientHeaders, 'x-nuget-apikey'));
    const declared = Number(headerOf(clientHeaders, 'content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > this.opts.maxPackageSize) throw this.tooLarge();
    const { resources } = await src.resources();
    const base = kind === 'package' ? resources.publish : resources.symbolPublish;
    if (!base) {
      throw new NuproxyError('READ_ONLY', `upstream ${src.name} offers no ${kind === 'package' ? 'PackagePublish' : 'SymbolPackagePublish'} resource`, { upstream: src.name });
    }
    const url = `${base.replace(/\/+$/, '')}/`;
    if (allowId) return this.pushChecked(src, url, kind, clientHeaders, key, body, allowId);
    const copyPath = join(this.opts.tmpDir, `push-${randomBytes(8).toString('hex')}.nupkg`);
    const abort = new AbortController();
    let limitHit = false;
    let seen = 0;
    const max = this.opts.maxPackageSize;
    const limiter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        if (seen > max) {
          limitHit = true;
          abort.abort(); // the upstream sees a cut upload, never a complete package
          cb(new NuproxyError('PAYLOAD_TOO_LARGE', `package is larger than the ${max}-byte limit`));
          return;
        }
        cb(null, chunk);
      },
    });
    const toUpstream = new PassThrough();
    const copy = packageCopy(headerOf(clientHeaders, 'content-type') ?? '', copyPath);
    const feeding = pipeline(body, limiter, teeInto(copy.input), toUpstream).catch((err: unknown) => {
      abort.abort();
      toUpstream.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
    feeding.catch(() => undefined); // observed below; never an unhandled rejection
    try {
      let answer;
      try {
        answer = await src.send(url, {
          method: 'PUT',
          headers: this.headersFor(clientHeaders, key),
          body: toUpstream,
          timeoutMs: this.opts.timeoutMs,
          signal: abort.signal,
        });
      } catch (err) {
        if (limitHit) throw this.tooLarge();
        throw err;
      }
      const accepted = answer.status >= 200 && answer.status < 300;
      if (accepted) {
        // the upstream read the whole body before accepting it: the copy is complete too
        await feeding;
        await copy.done;
      } else {
        // an early refusal (bad key, duplicate): stop reading the client's body
        feeding.catch(() => undefined);
        body.destroy();
      }
      if (accepted && kind === 'package') await this.pushed(src, await readNuspecIdentity(copyPath), seen);
      return await this.answer(answer, clientHeaders);
    } finally {
      copy.input.destroy();
      await copy.done.catch(() => undefined);
      await rm(copyPath, { force: true });
    }
  }

  /** A scoped push: the whole body on disk, its id checked, then sent as one body of known length. */
  private async pushChecked(
    src: Upstream,
    url: string,
    kind: 'package' | 'symbols',
    clientHeaders: Record<string, string | string[] | undefined>,
    key: string | undefined,
    body: Readable,
    allowId: (lowerId: string) => boolean,
  ): Promise<PublishAnswer> {
    const spool = await spoolPush(body, headerOf(clientHeaders, 'content-type') ?? '', this.opts.tmpDir, this.opts.maxPackageSize);
    try {
      const id = spool.identity?.id;
      if (id === undefined || !isValidPackageId(id)) {
        throw new NuproxyError('BAD_REQUEST', 'the pushed package has no readable id (.nuspec): a token with id scopes may push only a package whose id can be checked');
      }
      if (!allowId(toLowerId(id))) {
        this.log.info({ upstream: src.name, id, kind }, 'push refused: the id is outside the token\'s scopes (nothing was sent upstream)');
        throw new NuproxyError('FORBIDDEN', `${id} is outside this token's scopes: it may not be pushed with it`);
      }
      const answer = await src.send(url, {
        method: 'PUT',
        // the client's headers, with the length of the body as spooled (the client may have sent it chunked)
        headers: { ...this.headersFor(clientHeaders, key), 'content-length': String(spool.bytes) },
        body: createReadStream(spool.path),
        timeoutMs: this.opts.timeoutMs,
      });
      if (answer.status >= 200 && answer.status < 300 && kind === 'package') await this.pushed(src, spool.identity, spool.bytes);
      return await this.answer(answer, clientHeaders);
    } finally {
      await spool.remove();
    }
  }

  /** After the upstream accepted a package: every cached answer about its id dropped. */
  private async pushed(src: Upstream, identity: NuspecIdentity | undefined, bytes: number): Promise<void> {
    if (identity && isValidPackageId(identity.id)) {
      await this.invalidate(toLowerId(identity.id));
      this.log.info({ upstream: src.name, id: identity.id, version: identity.version, bytes }, 'package pushed; cached answers for the id dropped');
    } else {
      this.log.warn({ upstream: src.name, bytes }, 'package pushed, but its id could not be read: cached answers stay until they expire');
    }
  }

  async deleteOrRelist(method: 'DELETE' | 'POST', rawId: string, rawVersion: string, clientHeaders: Record<string, string | string[] | undefined>): Promise<PublishAnswer> {
    const src = this.target();
    const key = this.upstreamKey(headerOf(clientHeaders, 'x-nuget-apikey'));
    const v = parseVersion(rawVersion);
    if (!isValidPackageId(rawId) || !v) throw new NuproxyError('BAD_REQUEST', 'invalid package id or version');
    const { resources } = await src.resources();
    if (!resources.publish) throw new NuproxyError('READ_ONLY', `upstream ${src.name} offers no PackagePublish resource`, { upstream: src.name });
    const url = `${resources.publish.replace(/\/+$/, '')}/${encodeURIComponent(rawId)}/${encodeURIComponent(normalizeVersion(v))}`;
    const answer = await src.send(url, { method, headers: this.headersFor(clientHeaders, key), timeoutMs: this.opts.timeoutMs });
    if (answer.status >= 200 && answer.status < 300) {
      await this.invalidate(toLowerId(rawId));
      this.log.info({ upstream: src.name, id: rawId, version: normalizeVersion(v), action: method === 'DELETE' ? 'delete' : 'relist' }, 'passed to the writable upstream; cached answers for the id dropped');
    }
    return this.answer(answer, clientHeaders);
  }

  /** The upstream's answer as the client gets it: with the secrets (and a pass-through client key) cut out. */
  private answer(a: UpstreamAnswer, clientHeaders: Record<string, string | string[] | undefined>): Promise<PublishAnswer> {
    return relayedAnswer(a, this.opts.secrets, this.opts.keyMode === 'passthrough' ? headerOf(clientHeaders, 'x-nuget-apikey') : undefined);
  }

  private tooLarge(): NuproxyError {
    return new NuproxyError('PAYLOAD_TOO_LARGE', `package is larger than the ${this.opts.maxPackageSize}-byte limit`);
  }
}

function headerOf(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}
