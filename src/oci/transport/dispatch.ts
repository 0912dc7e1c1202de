// The HTTP clients behind the transport: one undici Agent that verifies TLS and one that does not,
// for the hosts the user named insecure, and the same pair per proxy when HTTPS_PROXY / HTTP_PROXY
// send a URL through one (util/proxy-for-url.ts decides which). A test passes its own Dispatcher (undici's
// MockAgent) to stand in for all of them.
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher, Pool as UndiciPool, ProxyAgent as UndiciProxyAgent } from 'undici';
import { proxyForUrl, type ProxyEnvironment } from '../../util/proxy-for-url.ts';

// undici's index also loads its mocks, caches, fetch, WebSocket and interceptors: ~0.07 s of every
// process's start (measured). Only the Agent and the request API are used, so load just those and
// attach the API as the index does. undici is pinned to one version in package.json: these paths hold.
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
const ProxyAgent = require('undici/lib/dispatcher/proxy-agent.js') as typeof UndiciProxyAgent;
Object.assign(
  (require('undici/lib/dispatcher/dispatcher.js') as { prototype: object }).prototype,
  require('undici/lib/api/index.js') as object,
);

export interface DispatchOptions {
  /** Hosts (host or host:port) reached over plain HTTP or unverified TLS. */
  insecureHosts?: Iterable<string>;
  /** Connections per registry host. */
  connectionsPerHost?: number;
  /** Time to wait for response headers; uploads get longer for the registry to commit. */
  headersTimeoutMs?: number;
  /** Longest pause between two chunks of a response body before it counts as stalled. */
  bodyTimeoutMs?: number;
  /** Used for every host instead of the transport's own agents (tests). */
  dispatcher?: Dispatcher;
  /** HTTPS_PROXY, HTTP_PROXY and NO_PROXY, read by the caller (util/proxy-for-url.ts); none: every request goes direct. */
  proxies?: ProxyEnvironment;
}

/** The client for one URL, and the proxy it goes through (for messages). */
export interface Route {
  dispatcher: Dispatcher;
  proxy?: URL;
}

export class Dispatchers {
  readonly #verified: Dispatcher;
  readonly #unverified: Dispatcher;
  readonly #insecure: Set<string>;
  readonly #proxies: ProxyEnvironment | undefined;
  readonly #agentOptions: UndiciAgent.Options;
  /** One pair of proxy agents per proxy URL, made when first needed. */
  readonly #proxied = new Map<string, Dispatcher>();
  /** The proxy (or none) per origin, decided once. */
  readonly #proxyOf = new Map<string, URL | undefined>();

  constructor(options: DispatchOptions) {
    this.#insecure = new Set([...(options.insecureHosts ?? [])].map((h) => h.toLowerCase()));
    const headersTimeout = options.headersTimeoutMs ?? 60_000;
    this.#agentOptions = {
      connections: options.connectionsPerHost ?? 16,
      headersTimeout,
      // A TCP or TLS handshake that hangs is a host that does not answer: no longer than a response.
      connectTimeout: Math.min(10_000, headersTimeout),
      bodyTimeout: options.bodyTimeoutMs ?? 60_000,
      // Many blobs in parallel go faster over several HTTP/1.1 connections than multiplexed on one.
      allowH2: false,
      keepAliveTimeout: 30_000,
    };
    if (options.dispatcher) {
      this.#verified = this.#unverified = options.dispatcher;
      this.#proxies = undefined;
      return;
    }
    this.#proxies = options.proxies;
    this.#verified = new Agent(this.#agentOptions);
    this.#unverified = new Agent({ ...this.#agentOptions, connect: { rejectUnauthorized: false } });
  }

  isInsecure(host: string): boolean {
    return this.#insecure.has(host.toLowerCase());
  }

  /** The client for a URL: through the proxy the environment names for it, TLS verified unless the user named the host insecure. */
  route(url: URL): Route {
    const insecure = this.isInsecure(url.host);
    let proxy: URL | undefined;
    if (this.#proxies) {
      if (!this.#proxyOf.has(url.origin)) this.#proxyOf.set(url.origin, proxyForUrl(url, this.#proxies));
      proxy = this.#proxyOf.get(url.origin);
    }
    if (!proxy) return { dispatcher: insecure ? this.#unverified : this.#verified };
    const key = `${insecure ? 'unverified' : 'verified'} ${proxy.href}`;
    let dispatcher = this.#proxied.get(key);
    if (!dispatcher) {
      dispatcher = this.#proxyAgent(proxy, insecure);
      this.#proxied.set(key, dispatcher);
    }
    return { dispatcher, proxy };
  }

  /** A proxy agent that pools and times out as the direct agents do. https goes through a CONNECT tunnel; plain http is forwarded. */
  #proxyAgent(proxy: URL, insecure: boolean): Dispatcher {
    const poolOptions = this.#agentOptions;
    return new ProxyAgent({
      ...poolOptions,
      uri: proxy.href,
      // Plain http is sent to the proxy as an absolute-URI request, as Go's clients do, not tunnelled:
      // proxies commonly allow CONNECT only to port 443.
      proxyTunnel: false,
      ...(insecure ? { requestTls: { rejectUnauthorized: false } } : {}),
      // Pools to the registries behind the proxy (and to the proxy, for forwarded http) keep the
      // direct agents' connection count and timeouts.
      factory: (origin, opts) => new Pool(origin, { ...poolOptions, ...opts }),
    });
  }

  #all(): Dispatcher[] {
    return [...new Set([this.#verified, this.#unverified, ...this.#proxied.values()])];
  }

  async close(): Promise<void> {
    await Promise.all(this.#all().map((d) => d.close()));
  }

  /** Closes at once, aborting requests in flight. */
  async destroy(): Promise<void> {
    await Promise.all(this.#all().map((d) => d.destroy()));
  }
}
