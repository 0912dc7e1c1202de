// ECR's registry credentials: GetAuthorizationToken, with the identity the AWS SDK's default chain
// finds (aws.ts), answers a base64 "AWS:<password>" valid for 12 hours. One token per account and
// region, shared by concurrent lookups, and renewed before it expires, so a run that outlives a
// token keeps working. A token whose stated expiry is already past when it arrives (an emulator's,
// a clock far off) is kept for ECR's documented 12 hours rather than fetched again for every request.
import { AuthError } from '../errors.ts';
import { awsError, type EcrClients, loadEcrSdk } from './aws.ts';
import type { Credential, CredentialSource } from './credential.ts';
import type { RegistryProviders } from './provider.ts';

interface Token {
  credential: Extract<Credential, { kind: 'basic' }>;
  /** Epoch ms from which a lookup fetches a new one. */
  renewAt: number;
}

const ecrTokenLifetimeMs = 12 * 3600_000;
/** Renew this long before expiry (or at three quarters of a shorter lifetime). */
const renewMarginMs = 15 * 60_000;

export class EcrCredentials implements CredentialSource {
  readonly #providers: RegistryProviders;
  readonly #clients: EcrClients;
  readonly #now: () => number;
  readonly #tokens = new Map<string, Promise<Token>>();

  constructor(providers: RegistryProviders, clients: EcrClients, now: () => number = Date.now) {
    this.#providers = providers;
    this.#clients = clients;
    this.#now = now;
  }

  async lookup(registry: string): Promise<Credential | undefined> {
    const ecr = this.#providers.ecrHost(registry);
    if (ecr === undefined) return undefined;
    const key = `${ecr.region ?? ''}/${ecr.account ?? ''}`;
    for (;;) {
      const cached = this.#tokens.get(key);
      if (cached === undefined) break;
      const token = await cached.catch(() => undefined);
      if (token !== undefined && token.renewAt > this.#now()) return token.credential;
      if (this.#tokens.get(key) !== cached) continue; // someone else is renewing it
      this.#tokens.delete(key);
      break;
    }
    const pending = this.#fetch(registry, ecr.region, ecr.account);
    this.#tokens.set(key, pending);
    pending.catch(() => {
      if (this.#tokens.get(key) === pending) this.#tokens.delete(key);
    });
    return (await pending).credential;
  }

  async #fetch(registry: string, region: string | undefined, account: string | undefined): Promise<Token> {
    const action = 'ecr:GetAuthorizationToken';
    const started = this.#now();
    let data;
    try {
      const [client, { GetAuthorizationTokenCommand }] = await Promise.all([this.#clients.client(region), loadEcrSdk()]);
      const answer = await client.send(new GetAuthorizationTokenCommand(account === undefined ? {} : { registryIds: [account] }));
      data = answer.authorizationData?.[0];
    } catch (err) {
      throw awsError(err, registry, action, account === undefined ? 'the default registry' : `registry ${account}`);
    }
    const decoded = Buffer.from(data?.authorizationToken ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0 || colon === decoded.length - 1) {
      throw new AuthError(registry, `${registry}: ${action} answered without a usable token`);
    }
    const expiresAt = data?.expiresAt?.getTime();
    const lifetime = expiresAt !== undefined && expiresAt > started ? expiresAt - started : ecrTokenLifetimeMs;
    return {
      credential: { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      renewAt: started + lifetime - Math.min(renewMarginMs, lifetime / 4),
    };
  }
}
