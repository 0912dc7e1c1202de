// The authentication handshake of one attempt: send with what the host asked for before; on a 401,
// learn its challenge and send once more with fresh credentials. The first request to a host finds
// out whether it wants credentials; the others wait for it rather than each collecting the same 401.
import type { Authenticator } from './auth.ts';
import { parseChallenges } from './challenge.ts';
import type { RegistryRequest, RegistryResponse } from './types.ts';

export type SendAuthorized = (request: RegistryRequest, authorization: string | undefined) => Promise<RegistryResponse>;

export class Handshake {
  readonly #auth: Authenticator;
  readonly #firstAnswer = new Map<string, Promise<void>>();

  constructor(auth: Authenticator) {
    this.#auth = auth;
  }

  async send(request: RegistryRequest, host: string, send: SendAuthorized): Promise<RegistryResponse> {
    const firstAnswer = this.#firstAnswer.get(host);
    let answered: (() => void) | undefined;
    if (firstAnswer) await firstAnswer;
    else this.#firstAnswer.set(host, new Promise<void>((resolve) => (answered = resolve)));
    try {
      return await this.#answerChallenge(request, host, send);
    } finally {
      answered?.();
    }
  }

  async #answerChallenge(request: RegistryRequest, host: string, send: SendAuthorized): Promise<RegistryResponse> {
    const minValidityMs = request.long ? 10 * 60_000 : 30_000;
    let response = await send(request, await this.#auth.authorization(host, request.registry, request.repository, request.scopes, minValidityMs));
    if (response.status !== 401 || request.accept?.includes(401)) return response;
    const firstChallenge = !this.#auth.knows(host);
    const canResend = (request.replayable ?? true) || request.body === undefined;
    if (this.#auth.learn(host, parseChallenges(response.headers['www-authenticate']), response.url) && canResend) {
      // A second 401 with a token we just fetched means the grant is too narrow or was revoked: fetch anew once.
      if (!firstChallenge) this.#auth.invalidate(host, request.scopes);
      await response.body.dump().catch(() => {});
      response = await send(request, await this.#auth.authorization(host, request.registry, request.repository, request.scopes, minValidityMs));
    }
    return response;
  }
}
