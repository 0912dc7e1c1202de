// HTTP to registries, on undici, in layers of one job each: retry (retry.ts) around the
// authentication handshake (handshake.ts, auth.ts, challenge.ts) around one request on the wire
// that follows redirects without leaking credentials (redirect.ts), to an origin whose scheme is
// probed for insecure hosts (scheme.ts), through injectable dispatchers (dispatch.ts); what a
// failure means is said in error.ts, registries given up on are remembered in circuit.ts, and
// requests are counted in stats.ts.
import type { Dispatcher } from 'undici';
import type { CredentialSource } from '../../auth/credential.ts';
import { apiHost } from '../../reference.ts';
import type { RetryPolicy } from '../../util/retry-policy.ts';
import { RegistryError } from '../../errors.ts';
import { Authenticator } from './auth.ts';
import { RegistryCircuit } from './circuit.ts';
import { Dispatchers, type DispatchOptions } from './dispatch.ts';
import { checkStatus, classifyNetworkError } from './error.ts';
import { Handshake } from './handshake.ts';
import { proxyFailure } from './proxy-failure.ts';
import { dispatchFollowingRedirects, type Wire } from './redirect.ts';
import { sendWithRetry, type RetryEvent } from './retry-loop.ts';
import { Schemes } from './scheme.ts';
import { RequestCounter, type RequestStats } from './stats.ts';
import type { RegistryRequest, RegistryResponse } from './types.ts';
import { readCapped } from '../../util/read.ts';

export type { RegistryRequest, RegistryResponse } from './types.ts';
export type { RetryEvent } from './retry-loop.ts';
export type { RequestStats } from './stats.ts';

export interface TransportOptions extends DispatchOptions {
  credentials: CredentialSource;
  /** throttlePatienceMs: a 429 asking for a longer wait gives the registry up for the run (default 60 s). */
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /** Told about each retry, for progress and logs. */
  onRetry?: (event: RetryEvent) => void;
}

/** Token exchange answers larger than this are not token answers (an HTML page, a hostile server). */
const maxExchangeResponseBytes = 64 * 1024;

export class Transport {
  readonly auth: Authenticator;
  readonly #counter = new RequestCounter();
  readonly #circuit = new RegistryCircuit();
  readonly #dispatchers: Dispatchers;
  readonly #schemes: Schemes;
  readonly #handshake: Handshake;
  readonly #wire: Wire;
  readonly #retry: RetryPolicy;
  readonly #onRetry: (event: RetryEvent) => void;

  constructor(options: TransportOptions) {
    this.#dispatchers = new Dispatchers(options);
    this.#schemes = new Schemes(this.#dispatchers);
    this.#wire = { dispatchers: this.#dispatchers, counter: this.#counter, userAgent: options.userAgent ?? 'image-clone' };
    this.#retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, throttlePatienceMs: 60_000, ...options.retry };
    this.#onRetry = (event) => {
      this.#counter.retry(event.registry);
      options.onRetry?.(event);
    };
    // Token requests go through the same clients, so an insecure token server is reached the same
    // way, and a token server on another host is proxied (or not) by the same rules.
    this.auth = new Authenticator(options.credentials, (url, init, registry) => this.#direct(url, init, registry));
    this.#handshake = new Handshake(this.auth);
  }

  /** One request outside the registry API (a token server, a token exchange), no redirect followed. */
  #direct(url: URL, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, registry: string): Promise<Dispatcher.ResponseData> {
    const route = this.#dispatchers.route(url);
    return route.dispatcher
      .request({ origin: url.origin, path: url.pathname + url.search, method: init.method, headers: init.headers, body: init.body ?? null })
      .catch((err: unknown) => {
        throw route.proxy ? proxyFailure(registry, url, route.proxy, err) : err;
      });
  }

  /**
   * A form POST for a cloud's credential source (ACR's token exchange, auth/azure.ts): to a path
   * below the registry, whose scheme is found as for every request to it, or to an absolute URL (an
   * identity provider). Sent like a token request: no Authorization header, the answer whatever its
   * status; a network failure is retried by the registry request that asked for the credential.
   */
  async postForm(registry: string, target: string, form: URLSearchParams): Promise<{ status: number; body: string }> {
    const url = target.startsWith('/') ? new URL(target, await this.#schemes.origin(apiHost(registry), undefined)) : new URL(target);
    const headers = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.#wire.userAgent };
    const response = await this.#direct(url, { method: 'POST', headers, body: form.toString() }, registry);
    const body = await readCapped(response.body, maxExchangeResponseBytes);
    return { status: response.statusCode, body: body?.toString('utf8') ?? '' };
  }

  /** Requests counted per registry: the benchmarks and the idempotency tests read these. */
  get stats(): Map<string, RequestStats> {
    return this.#counter.byRegistry;
  }

  /** Registries given up on during the run (over their rate limit, or not answering), with the cause. */
  get givenUp(): ReadonlyMap<string, RegistryError> {
    return this.#circuit.given;
  }

  close(): Promise<void> {
    return this.#dispatchers.close();
  }

  /** Closes at once, aborting requests in flight (an interrupted run does not wait for them). */
  destroy(): Promise<void> {
    return this.#dispatchers.destroy();
  }

  isInsecure(registry: string): boolean {
    return this.#dispatchers.isInsecure(apiHost(registry));
  }

  /**
   * Sends a request, retrying transient failures. Resolves with any response whose status is 2xx,
   * 3xx (when not following redirects) or listed in `accept`; otherwise throws a RegistryError or
   * AuthError that says what went wrong. The caller must consume or dump the body.
   */
  async send(request: RegistryRequest): Promise<RegistryResponse> {
    this.#circuit.check(request.registry);
    try {
      let response: RegistryResponse;
      try {
        response = await sendWithRetry(request, (r) => this.#attempt(r), this.#retry, this.#onRetry);
      } catch (err) {
        throw classifyNetworkError(request.registry, err);
      }
      return await checkStatus(request, response, () => this.auth.anonymousBecause(request.registry, request.repository), this.#retry.throttlePatienceMs);
    } catch (err) {
      // Over its quota for longer than the run waits, or not answering at all after every retry:
      // later requests to it fail at once with this cause instead of repeating the wait.
      if (err instanceof RegistryError && (err.condition === 'rate-limited' || err.condition === 'unresponsive')) this.#circuit.open(request.registry, err);
      throw err;
    }
  }

  async #attempt(request: RegistryRequest): Promise<RegistryResponse> {
    this.#circuit.check(request.registry); // given up while this request waited for its retry
    const host = apiHost(request.registry);
    const origin = await this.#schemes.origin(host, request.signal);
    const url = new URL(request.path, origin);
    return this.#handshake.send(request, host, (r, authorization) => dispatchFollowingRedirects(this.#wire, origin, url, r, authorization));
  }
}
