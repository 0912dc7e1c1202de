// ECR's registry credentials: GetAuthorizationToken, with the identity the AWS SDK's default chain
// finds (aws.ts), answers a base64 "AWS:<password>" valid for 12 hours. One token per account and
// region, shared by concurrent lookups, and renewed before it expires, so a run that outlives a
// token keeps working. A token whose stated expiry is already past when it arrives (an emulator's,
// a clock far off) is kept for ECR's documented 12 hours rather than fetched again for every request.
import { AuthError } from '../errors.ts';
import { awsError, type EcrClients, loadEcrSdk } from './aws.ts';
import type { Credential, CredentialSource } from './credential.ts';
import type { RegistryProviders } from './provider.ts';
import { type Renewable, RenewingCache, renewalTime } from './renewing.ts';

type BasicCredential = Extract<Credential, { kind: 'basic' }>;

const ecrTokenLifetimeMs = 12 * 3600_000;
/** Renew this long before expiry (or at three quarters of a shorter lifetime). */
const renewMarginMs = 15 * 60_000;

export class EcrCredentials implements CredentialSource {
  readonly #providers: RegistryProviders;
  readonly #clients: EcrClients;
  readonly #now: () => number;
  readonly #tokens: RenewingCache<BasicCredential>;

  constructor(providers: RegistryProviders, clients: EcrClients, now: () => number = Date.now) {
    this.#providers = providers;
    this.#clients = clients;
    this.#now = now;
    this.#tokens = new RenewingCache(now);
  }

  async lookup(registry: string): Promise<Credential | undefined> {
    const ecr = this.#providers.ecrHost(registry);
    if (ecr === undefined) return undefined;
    const key = `${ecr.region ?? ''}/${ecr.account ?? ''}`;
    return this.#tokens.get(key, () => this.#fetch(registry, ecr.region, ecr.account));
  }

  async #fetch(registry: string, region: string | undefined, account: string | undefined): Promise<Renewable<BasicCredential>> {
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
      value: { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      renewAt: renewalTime(started, lifetime, renewMarginMs),
    };
  }
}
