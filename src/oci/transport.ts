// HTTP to registries, on undici: scheme per host (TLS verified unless the user named the host
// insecure), authentication on 401 challenges, redirects that never carry credentials to another
// host, and retries with backoff for what is worth retrying.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import { AuthError, RegistryError } from '../errors.ts';
import { Authenticator, readCapped } from './auth.ts';
import { parseChallenges } from './challenge.ts';
import type { CredentialSource } from './credentials.ts';
import { apiHost } from '../reference.ts';
import { backoffMs, errorCode, isTransientNetworkError, retryableStatuses, retryAfterMs, type RetryPolicy } from '../util/retry.ts';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface TransportOptions {
  credentials: CredentialSource;
  /** Hosts (host or host:port) reached over plain HTTP or unverified TLS. */
  insecureHosts?: Iterable<string>;
  /** Connections per registry host. */
  connectionsPerHost?: number;
  retry?: Partial<RetryPolicy>;
  /** Time to wait for response headers; uploads get longer for the registry to commit. */
  headersTimeoutMs?: number;
  /** Longest pause between two chunks of a response body before it counts as stalled. */
  bodyTimeoutMs?: number;
  userAgent?: string;
  /** Told about each retry, for progress and logs. */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  registry: string;
  method: Method;
  path: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface RegistryRequest {
  /** Canonical registry name (docker.io, ghcr.io, 127.0.0.1:5000). */
  registry: string;
  /** Repository the request is about (for credentials scoped to a repository). */
  repository?: string;
  method: Method;
  /** A path below the registry ('/v2/…'), or an absolute URL the registry gave us (an upload Location). */
  path: string;
  /** Token scopes the request needs, e.g. 'repository:library/nginx:pull'. */
  scopes: string[];
  headers?: Record<string, string>;
  /** The body, made fresh for each attempt; a stream that cannot be made again is sent once. */
  body?: Buffer | (() => Dispatcher.DispatchOptions['body']);
  /** False when the body is a one-shot stream: no retry, no re-send after a 401. */
  replayable?: boolean;
  followRedirects?: boolean;
  /** Statuses the caller handles itself, so they are not retried or turned into errors. */
  accept?: number[];
  /** A long request (an upload): fresh token and a generous wait for the registry's answer. */
  long?: boolean;
  signal?: AbortSignal;
}

export interface RegistryResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: URL;
}

/** Counted per registry: the benchmarks and the idempotency tests read these. */
export interface RequestStats {
  requests: number;
  byMethod: Partial<Record<Method, number>>;
  retries: number;
}

const maxRedirects = 5;
const maxErrorBodyBytes = 64 * 1024;

export class Transport {
  readonly auth: Authenticator;
  readonly stats = new Map<string, RequestStats>();
  readonly #verified: Agent;
  readonly #unverified: Agent;
  readonly #insecure: Set<string>;
  readonly #scheme = new Map<string, Promise<'https:' | 'http:'>>();
  readonly #firstAnswer = new Map<string, Promise<void>>();
  readonly #retry: RetryPolicy;
  readonly #options: TransportOptions;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#insecure = new Set([...(options.insecureHosts ?? [])].map((h) => h.toLowerCase()));
    this.#retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, ...options.retry };
    const agentOptions = {
      connections: options.connectionsPerHost ?? 16,
      headersTimeout: options.headersTimeoutMs ?? 60_000,
      bodyTimeout: options.bodyTimeoutMs ?? 60_000,
      // Many blobs in parallel go faster over several HTTP/1.1 connections than multiplexed on one.
      allowH2: false,
      keepAliveTimeout: 30_000,
    };
    this.#verified = new Agent(agentOptions);
    this.#unverified = new Agent({ ...agentOptions, connect: { rejectUnauthorized: false } });
    this.auth = new Authenticator(options.credentials, async (url, init) => {
      const agent = this.#insecure.has(url.host.toLowerCase()) ? this.#unverified : this.#verified;
      return agent.request({ origin: url.origin, path: url.pathname + url.search, method: init.method, headers: init.headers, body: init.body ?? null });
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.#verified.close(), this.#unverified.close()]);
  }

  /** Closes at once, aborting requests in flight (an interrupted run does not wait for them). */
  async destroy(): Promise<void> {
    await Promise.all([this.#verified.destroy(), this.#unverified.destroy()]);
  }

  isInsecure(registry: string): boolean {
    return this.#insecure.has(apiHost(registry).toLowerCase());
  }

  /**
   * Sends a request, retrying transient failures. Resolves with any response whose status is 2xx,
   * 3xx (when not following redirects) or listed in `accept`; otherwise throws a RegistryError or
   * AuthError that says what went wrong. The caller must consume or dump the body.
   */
  async send(request: RegistryRequest): Promise<RegistryResponse> {
    const stats = this.#stats(request.registry);
    const replayable = request.replayable ?? true;
    for (let attempt = 1; ; attempt++) {
      let response: RegistryResponse | undefined;
      let failure: unknown;
      try {
        response = await this.#sendAuthenticated(request);
      } catch (err) {
        failure = err;
      }
      const retryable = response ? retryableStatuses.has(response.status) && !request.accept?.includes(response.status) : isRetryableError(failure);
      if (!retryable || !replayable || attempt >= this.#retry.attempts || request.signal?.aborted) {
        if (failure) throw classifyNetworkError(request.registry, failure);
        return this.#checkStatus(request, response!);
      }
      const delayMs = (response && retryAfterMs(response.headers['retry-after'])) ?? backoffMs(attempt, this.#retry);
      const reason = response ? `HTTP ${response.status}` : errorCode(failure) ?? String(failure);
      if (response) await response.body.dump().catch(() => {});
      stats.retries++;
      this.#options.onRetry?.({ registry: request.registry, method: request.method, path: redactPath(request.path), attempt, delayMs, reason });
      await sleep(delayMs, undefined, { signal: request.signal }).catch(() => {});
    }
  }

  async #checkStatus(request: RegistryRequest, response: RegistryResponse): Promise<RegistryResponse> {
    const { status } = response;
    if ((status >= 200 && status < 300) || request.accept?.includes(status) || (status >= 300 && status < 400 && !request.followRedirects)) {
      return response;
    }
    const text = request.method === 'HEAD' ? undefined : await readCapped(response.body, maxErrorBodyBytes).catch(() => undefined);
    if (request.method === 'HEAD') await response.body.dump().catch(() => {});
    const detail = registryErrorDetail(text);
    const what = `${request.method} ${describePath(request.path)}`;
    const refusedScope = status === 401 ? insufficientScope(response.headers['www-authenticate']) : undefined;
    if (refusedScope !== undefined) {
      // The token server accepted who we are but granted less than the registry asked for: a
      // permission, not a password. Say which repository and which scope.
      const scope = refusedScope || request.scopes.join(' ');
      const wanted = /[:,]push(,|$)/.test(scope) ? 'push to' : 'pull from';
      const who = await this.auth.hasCredential(request.registry, request.repository).catch(() => false)
        ? 'the credentials are valid but may not' : 'anonymous access may not (no credentials are configured for it), so it cannot';
      throw new AuthError(request.registry, `${request.registry}: ${who} ${wanted} ${request.repository ?? 'this repository'}: the token server did not grant the scope "${scope}" (HTTP 401 insufficient_scope${detail ? `: ${detail}` : ''})`, status);
    }
    if (status === 401 || status === 403) {
      throw new AuthError(request.registry, `${request.registry}: ${status === 401 ? 'authentication failed' : 'access denied'} for ${what} (HTTP ${status}${detail ? `: ${detail}` : ''})`, status);
    }
    throw new RegistryError(request.registry, `${request.registry}: ${what} failed (HTTP ${status}${detail ? `: ${detail}` : ''})`, {
      status,
      code: registryErrorCode(text),
      transient: retryableStatuses.has(status),
    });
  }

  /** One attempt: authenticate from what the host asked before, answer a new 401 challenge once. */
  async #sendAuthenticated(request: RegistryRequest): Promise<RegistryResponse> {
    const host = apiHost(request.registry);
    const origin = await this.#origin(host, request.signal);
    // The first request to a host finds out whether it wants credentials; the others wait for it
    // rather than each collecting the same 401 challenge.
    const firstAnswer = this.#firstAnswer.get(host);
    let answered: (() => void) | undefined;
    if (firstAnswer) await firstAnswer;
    else this.#firstAnswer.set(host, new Promise<void>((resolve) => (answered = resolve)));
    try {
      return await this.#sendWithAuth(request, host, origin);
    } finally {
      answered?.();
    }
  }

  async #sendWithAuth(request: RegistryRequest, host: string, origin: string): Promise<RegistryResponse> {
    const url = new URL(request.path, origin);
    const minValidityMs = request.long ? 10 * 60_000 : 30_000;
    let authorization = await this.auth.authorization(host, request.registry, request.repository, request.scopes, minValidityMs);
    let response = await this.#dispatch(origin, url, request, authorization);
    if (response.status === 401 && !request.accept?.includes(401)) {
      const challenges = parseChallenges(response.headers['www-authenticate']);
      const firstChallenge = !this.auth.knows(host);
      const canRetry = (request.replayable ?? true) || request.body === undefined;
      if (this.auth.learn(host, challenges, response.url) && canRetry) {
        // A second 401 with a token we just fetched means the grant is too narrow: fetch anew once.
        if (!firstChallenge) this.auth.invalidate(host, request.scopes);
        await response.body.dump().catch(() => {});
        authorization = await this.auth.authorization(host, request.registry, request.repository, request.scopes, minValidityMs);
        response = await this.#dispatch(origin, url, request, authorization);
      }
    }
    return response;
  }

  /**
   * Sends to `url`, following redirects if asked. Credentials go only to the registry's own origin:
   * never to a redirect target or an upload Location on another host.
   */
  async #dispatch(registryOrigin: string, url: URL, request: RegistryRequest, authorization: string | undefined): Promise<RegistryResponse> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const sameOrigin = current.origin === registryOrigin;
      const headers: Record<string, string> = { 'user-agent': this.#options.userAgent ?? 'image-clone', ...request.headers };
      if (sameOrigin && authorization) headers.authorization = authorization;
      const agent = this.#insecure.has(current.host.toLowerCase()) ? this.#unverified : this.#verified;
      const body = hop === 0 ? (typeof request.body === 'function' ? request.body() : request.body) : null;
      this.#count(request.registry, request.method);
      const response = await agent.request({
        origin: current.origin,
        path: current.pathname + current.search,
        method: request.method,
        headers,
        body: body ?? null,
        signal: request.signal ?? null,
        ...(request.long ? { headersTimeout: 15 * 60_000 } : {}),
        // undici closes the connection after every HEAD unless told otherwise; registries answer
        // HEAD without a body, and reusing the connection saved 15% of a fleet copy's time.
        ...(request.method === 'HEAD' ? { reset: false } : {}),
      });
      const location = response.headers.location;
      const isRedirect = [301, 302, 303, 307, 308].includes(response.statusCode) && typeof location === 'string';
      if (!isRedirect || !request.followRedirects || body) {
        return { status: response.statusCode, headers: response.headers, body: response.body, url: current };
      }
      await response.body.dump().catch(() => {});
      if (hop >= maxRedirects) throw new RegistryError(request.registry, `${request.registry}: more than ${maxRedirects} redirects for ${describePath(request.path)}`, { transient: false });
      const next = new URL(location, current);
      if (current.protocol === 'https:' && next.protocol !== 'https:') {
        throw new RegistryError(request.registry, `${request.registry}: refused a redirect from https to ${next.protocol.replace(':', '')}`, { transient: false });
      }
      current = next;
    }
  }

  /** https unless the host is named insecure; then https without verification, or plain http. */
  #origin(host: string, signal: AbortSignal | undefined): Promise<string> {
    if (!this.#insecure.has(host.toLowerCase())) return Promise.resolve(`https://${host}`);
    let scheme = this.#scheme.get(host);
    if (!scheme) {
      scheme = this.#unverified
        .request({ origin: `https://${host}`, path: '/v2/', method: 'GET', signal: signal ?? null, headersTimeout: 10_000 })
        .then(async (r) => {
          await r.body.dump();
          return 'https:' as const;
        }, () => 'http:' as const);
      this.#scheme.set(host, scheme);
    }
    return scheme.then((s) => `${s}//${host}`);
  }

  #stats(registry: string): RequestStats {
    let stats = this.stats.get(registry);
    if (!stats) {
      stats = { requests: 0, byMethod: {}, retries: 0 };
      this.stats.set(registry, stats);
    }
    return stats;
  }

  #count(registry: string, method: Method): void {
    const stats = this.#stats(registry);
    stats.requests++;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
  }
}

function isRetryableError(err: unknown): boolean {
  if (err instanceof AuthError || err instanceof RegistryError) return err instanceof RegistryError && err.transient;
  return isTransientNetworkError(err);
}

function classifyNetworkError(registry: string, err: unknown): unknown {
  if (err instanceof AuthError || err instanceof RegistryError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  const code = errorCode(err);
  if (code === undefined) return err;
  const hint = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
    : code === 'ECONNREFUSED' ? 'connection refused'
      : code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO' ? `TLS failed (${code}); for a registry without valid TLS, pass --insecure-registry ${registry}`
        : code;
  return new RegistryError(registry, `${registry}: cannot reach the registry: ${hint}`, { transient: isTransientNetworkError(err), cause: err });
}

/** The scope a 401 challenge says was missing (error="insufficient_scope"), '' when it names none, else undefined. */
function insufficientScope(header: string | string[] | undefined): string | undefined {
  const challenge = parseChallenges(header).find((c) => c.params.error === 'insufficient_scope');
  return challenge ? challenge.params.scope ?? '' : undefined;
}

/** The OCI error body's first message: {"errors":[{"code","message","detail"}]}. */
function registryErrorDetail(text: string | undefined): string | undefined {
  const first = firstRegistryError(text);
  if (first) return [first.code, first.message].filter(Boolean).join(': ');
  return undefined;
}

function registryErrorCode(text: string | undefined): string | undefined {
  return firstRegistryError(text)?.code;
}

function firstRegistryError(text: string | undefined): { code?: string; message?: string } | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = Array.isArray(parsed.errors) ? parsed.errors[0] : undefined;
    if (!first) return undefined;
    return {
      code: typeof first.code === 'string' ? first.code : undefined,
      message: typeof first.message === 'string' ? first.message.slice(0, 200) : undefined,
    };
  } catch {
    return undefined;
  }
}

/** Upload locations carry state tokens (distribution's _state HMAC): keep them out of messages. */
function redactPath(path: string): string {
  const queryAt = path.indexOf('?');
  return queryAt === -1 ? path : `${path.slice(0, queryAt)}?…`;
}

function describePath(path: string): string {
  const plain = redactPath(path);
  try {
    return new URL(plain).pathname;
  } catch {
    return plain;
  }
}
