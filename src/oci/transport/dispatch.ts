// The HTTP clients behind the transport: one undici Agent that verifies TLS and one that does not,
// for the hosts the user named insecure. A test passes its own Dispatcher (undici's MockAgent) to
// stand in for both.
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

// undici's index also loads its mocks, caches, fetch, WebSocket and interceptors: ~0.07 s of every
// process's start (measured). Only the Agent and the request API are used, so load just those and
// attach the API as the index does. undici is pinned to one version in package.json: these paths hold.
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
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
}

export class Dispatchers {
  readonly #verified: Dispatcher;
  readonly #unverified: Dispatcher;
  readonly #insecure: Set<string>;

  constructor(options: DispatchOptions) {
    this.#insecure = new Set([...(options.insecureHosts ?? [])].map((h) => h.toLowerCase()));
    if (options.dispatcher) {
      this.#verified = this.#unverified = options.dispatcher;
      return;
    }
    const headersTimeout = options.headersTimeoutMs ?? 60_000;
    const agentOptions = {
      connections: options.connectionsPerHost ?? 16,
      headersTimeout,
      // A TCP or TLS handshake that hangs is a host that does not answer: no longer than a response.
      connectTimeout: Math.min(10_000, headersTimeout),
      bodyTimeout: options.bodyTimeoutMs ?? 60_000,
      // Many blobs in parallel go faster over several HTTP/1.1 connections than multiplexed on one.
      allowH2: false,
      keepAliveTimeout: 30_000,
    };
    this.#verified = new Agent(agentOptions);
    this.#unverified = new Agent({ ...agentOptions, connect: { rejectUnauthorized: false } });
  }

  isInsecure(host: string): boolean {
    return this.#insecure.has(host.toLowerCase());
  }

  /** The client for a host: TLS verified unless the user named the host insecure. */
  for(host: string): Dispatcher {
    return this.isInsecure(host) ? this.#unverified : this.#verified;
  }

  async close(): Promise<void> {
    await Promise.all([...new Set([this.#verified, this.#unverified])].map((d) => d.close()));
  }

  /** Closes at once, aborting requests in flight. */
  async destroy(): Promise<void> {
    await Promise.all([...new Set([this.#verified, this.#unverified])].map((d) => d.destroy()));
  }
}
