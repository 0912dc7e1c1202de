// Registry authentication: what each registry host asked for (learned from its 401 challenge), and
// a cache of Bearer tokens keyed by realm, service, scope set and credential, shared by concurrent
// requests so that N parallel blob copies cause one token fetch.
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { AuthError, RegistryError } from '../../errors.ts';
import type { Challenge } from './challenge.ts';
import type { Credential, CredentialSource } from '../../auth/credential.ts';
import { readCapped } from '../../util/read.ts';
import { errorCode, isTransientNetworkError } from '../../util/retry-policy.ts';

/** How a host wants to be authenticated, once it has told us. */
export type HostAuth =
  | { kind: 'basic' }
  | { kind: 'bearer'; realm: string; service: string | undefined };

interface Token {
  value: string;
  /** Epoch ms after which the token must not be used. */
  expiresAt: number;
}

/** Token responses larger than this are not tokens (an HTML error page, a hostile server). */
const maxTokenResponseBytes = 64 * 1024;
/** The token spec's default and minimum lifetime. */
const minTokenLifetimeSeconds = 60;

export interface TokenFetch {
  /** `registry` is whom the token is for, for errors. */
  (url: URL, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, registry: string): Promise<Dispatcher.ResponseData>;
}

export class Authenticator {
  readonly #credentials: CredentialSource;
  readonly #fetchToken: TokenFetch;
  readonly #hostAuth = new Map<string, HostAuth>();
  readonly #tokens = new Map<string, Promise<Token>>();
  /** Hosts whose token server refused a request for several scopes at once (GCR, Artifact Registry). */
  readonly #singleScopeHosts = new Set<string>();
  readonly #now: () => number;

  constructor(credentials: CredentialSource, fetchToken: TokenFetch, now: () => number = Date.now) {
    this.#credentials = credentials;
    this.#fetchToken = fetchToken;
    this.#now = now;
  }

  /**
   * Records what a 401 challenge from `answeredBy` asked for. Returns false when the challenge names
   * no usable scheme. A relative realm is resolved against the registry; a realm that would take
   * credentials from https to plain http is refused.
   */
  learn(host: string, challenges: Challenge[], answeredBy: URL): boolean {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      let realm: URL;
      try {
        realm = new URL(bearer.params.realm!, answeredBy);
      } catch {
        throw new AuthError(host, `${host} named an invalid token server ${JSON.stringify(bearer.params.realm!.slice(0, 100))}`);
      }
      if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && answeredBy.protocol === 'http:')) {
        throw new AuthError(host, `${host} named a token server at ${realm.protocol}// (only https, or http for a registry reached over http)`);
      }
      this.#hostAuth.set(host, { kind: 'bearer', realm: realm.toString(), service: bearer.params.service });
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.#hostAuth.set(host, { kind: 'basic' });
      return true;
    }
    return false;
  }

  /**
   * Undefined when credentials are configured for the registry; otherwise why there are none, as
   * a source says it (a cloud identity missing), or '' (never a credential).
   */
  async anonymousBecause(registry: string, repository: string | undefined): Promise<string | undefined> {
    if ((await this.#credentials.lookup(registry, repository)) !== undefined) return undefined;
    return this.#credentials.absence?.(registry) ?? '';
  }

  knows(host: string): boolean {
    return this.#hostAuth.has(host);
  }

  /**
   * The Authorization header for a request to `host` needing `scopes`, or undefined when the host
   * has not asked for authentication (yet). `minValidityMs` refreshes a token that would expire
   * before a long request (a large upload) completes.
   */
  async authorization(host: string, registry: string, repository: string | undefined, scopes: string[], minValidityMs = 30_000): Promise<string | undefined> {
    const auth = this.#hostAuth.get(host);
    if (!auth) return undefined;
    const credential = await this.#credentials.lookup(registry, repository);
    if (auth.kind === 'basic') {
      if (credential?.kind !== 'basic') {
        const absence = this.#credentials.absence?.(registry);
        throw new AuthError(registry, `${registry} requires a username and password, and none is configured for it${absence ? ` (${absence})` : ''}`);
      }
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    }
    if (credential?.kind === 'registryToken') return `Bearer ${credential.token}`;
    const token = await this.#token(host, registry, auth, scopes, credential, minValidityMs);
    return `Bearer ${token.value}`;
  }

  /** Drops cached tokens for these scopes: the registry refused one (revoked, or too narrow). */
  invalidate(host: string, scopes: string[]): void {
    const auth = this.#hostAuth.get(host);
    if (auth?.kind !== 'bearer') return;
    const prefix = `${auth.realm}\n${auth.service ?? ''}\n${this.#scopeKey(host, scopes)}\n`;
    for (const key of this.#tokens.keys()) if (key.startsWith(prefix)) this.#tokens.delete(key);
  }

  #scopeKey(host: string, scopes: string[]): string {
    const effective = this.#singleScopeHosts.has(host) ? scopes.slice(0, 1) : scopes;
    return [...new Set(effective)].sort().join(' ');
  }

  async #token(host: string, registry: string, auth: Extract<HostAuth, { kind: 'bearer' }>, scopes: string[], credential: Credential | undefined, minValidityMs: number): Promise<Token> {
    const key = this.#cacheKey(host, auth, scopes, credential);
    const cached = this.#tokens.get(key);
    if (cached) {
      const token = await cached.catch(() => undefined);
      if (token && token.expiresAt - this.#now() > minValidityMs) return token;
      if (this.#tokens.get(key) === cached) this.#tokens.delete(key);
      else return this.#token(host, registry, auth, scopes, credential, minValidityMs); // someone else is refreshing
    }
    const pending = this.#requestToken(host, registry, auth, scopes, credential);
    this.#tokens.set(key, pending);
    pending.then(
      // After a fall-back to one scope, later requests look the token up by the one-scope key.
      () => this.#tokens.set(this.#cacheKey(host, auth, scopes, credential), pending),
      () => {
        if (this.#tokens.get(key) === pending) this.#tokens.delete(key);
      },
    );
    return pending;
  }

  #cacheKey(host: string, auth: Extract<HostAuth, { kind: 'bearer' }>, scopes: string[], credential: Credential | undefined): string {
    return `${auth.realm}\n${auth.service ?? ''}\n${this.#scopeKey(host, scopes)}\n${credentialIdentity(credential)}`;
  }

  async #requestToken(host: string, registry: string, auth: Extract<HostAuth, { kind: 'bearer' }>, scopes: string[], credential: Credential | undefined): Promise<Token> {
    const requested = this.#singleScopeHosts.has(host) ? scopes.slice(0, 1) : [...new Set(scopes)];
    try {
      return await this.#fetch(registry, auth, requested, credential);
    } catch (err) {
      // Some token servers refuse several scopes in one request; one scope still works (and a
      // cross-repository mount then falls back to a plain upload).
      if (requested.length > 1 && err instanceof AuthError && err.status !== undefined && err.status < 500) {
        this.#singleScopeHosts.add(host);
        return this.#fetch(registry, auth, requested.slice(0, 1), credential);
      }
      throw err;
    }
  }

  /** The token request; a token server that cannot be reached is named as such, not as the registry. */
  async #reachTokenServer(registry: string, url: URL, init: Parameters<TokenFetch>[1]): Promise<Dispatcher.ResponseData> {
    try {
      return await this.#fetchToken(url, init, registry);
    } catch (err) {
      // Already said (a proxy's refusal names the proxy).
      if (err instanceof AuthError || err instanceof RegistryError) throw err;
      const code = errorCode(err);
      if (code === undefined) throw err;
      const what = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found' : code;
      throw new RegistryError(registry, `${registry}: cannot reach its token server ${url.origin}${url.pathname} (${what}); the registry itself answers`, {
        transient: isTransientNetworkError(err), cause: err,
      });
    }
  }

  async #fetch(registry: string, auth: Extract<HostAuth, { kind: 'bearer' }>, scopes: string[], credential: Credential | undefined): Promise<Token> {
    const url = new URL(auth.realm);
    const headers: Record<string, string> = { accept: 'application/json' };
    let response: Dispatcher.ResponseData;
    const started = this.#now();
    if (credential?.kind === 'identityToken') {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.token, client_id: 'image-clone' });
      if (auth.service) form.set('service', auth.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      response = await this.#reachTokenServer(registry, url, { method: 'POST', headers, body: form.toString() });
    } else {
      if (auth.service) url.searchParams.set('service', auth.service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      if (credential?.kind === 'basic') {
        headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      }
      response = await this.#reachTokenServer(registry, url, { method: 'GET', headers });
    }
    const text = (await readCapped(response.body, maxTokenResponseBytes))?.toString('utf8');
    if (response.statusCode !== 200) {
      const hint = response.statusCode === 401 || response.statusCode === 403
        ? credential ? (credential.kind === 'basic' && credential.refused) || 'the configured credentials were refused'
          : `it requires credentials, and ${this.#credentials.absence?.(registry) ?? 'none are configured for it'}`
        : 'the token server failed';
      throw new AuthError(registry, `${registry}: could not get an access token (HTTP ${response.statusCode}): ${hint}`, response.statusCode);
    }
    let parsed: unknown;
    try {
      parsed = text === undefined ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const body = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
    const value = typeof body.token === 'string' && body.token ? body.token
      : typeof body.access_token === 'string' && body.access_token ? body.access_token : undefined;
    if (!value) {
      throw new AuthError(registry, `${registry}: the token server answered without a token (not a registry token endpoint?)`);
    }
    const lifetime = Math.max(Number(body.expires_in) || minTokenLifetimeSeconds, minTokenLifetimeSeconds);
    // Count from when we asked, not from issued_at: clocks differ, and the earlier start is safer.
    return { value, expiresAt: started + lifetime * 1000 };
  }
}


/** Identifies a credential in cache keys without keeping the secret itself in the key. */
function credentialIdentity(credential: Credential | undefined): string {
  if (!credential) return 'anonymous';
  const secret = credential.kind === 'basic' ? `${credential.username}:${credential.password}` : credential.token;
  return `${credential.kind}:${createHash('sha256').update(secret).digest('hex').slice(0, 16)}`;
}

