// Which scheme reaches a registry: https for every host, except that a host the user named
// insecure is probed once with https (unverified) and falls back to plain http.
import type { Dispatchers } from './dispatch.ts';

export class Schemes {
  readonly #dispatchers: Dispatchers;
  readonly #probed = new Map<string, Promise<'https:' | 'http:'>>();

  constructor(dispatchers: Dispatchers) {
    this.#dispatchers = dispatchers;
  }

  /** The origin (scheme://host) to send requests for `host` to. */
  origin(host: string, signal: AbortSignal | undefined): Promise<string> {
    if (!this.#dispatchers.isInsecure(host)) return Promise.resolve(`https://${host}`);
    let scheme = this.#probed.get(host);
    if (!scheme) {
      scheme = this.#dispatchers.route(new URL(`https://${host}`)).dispatcher
        .request({ origin: `https://${host}`, path: '/v2/', method: 'GET', signal: signal ?? null, headersTimeout: 10_000 })
        .then(async (r) => {
          await r.body.dump();
          return 'https:' as const;
        }, () => 'http:' as const);
      this.#probed.set(host, scheme);
    }
    return scheme.then((s) => `${s}//${host}`);
  }
}
