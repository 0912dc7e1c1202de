// The keychain the registry client asks for each host, in order, the first answer winning: the
// explicit sources first (--registry-config, the docker and Podman config files and the helpers
// they name), so a laptop keeps working as it does today, then the cloud identity for the hosts no
// entry names (ECR through the AWS SDK, ecr.ts; Artifact Registry and gcr.io through Google's auth
// library, gcp.ts; ACR through AKS Workload Identity, azure.ts). The cloud code loads only when such
// a host is asked for.
import { EcrClients } from './aws.ts';
import type { Credential, CredentialSource, ExchangeChannel } from './credential.ts';
import { EcrCredentials } from './ecr.ts';
import { type RegistryProvider, RegistryProviders } from './provider.ts';
import type { ProxyEnvironment } from '../util/proxy-for-url.ts';

export interface Keychain {
  credentials: CredentialSource;
  providers: RegistryProviders;
  /** The ECR clients, shared with repository creation. */
  ecr: EcrClients;
}

/** What the cloud identities need: the environment they are read from, and the registry client's form POSTs (ACR's exchange). */
export interface CloudAccess {
  env: Record<string, string | undefined>;
  /** HTTPS_PROXY and NO_PROXY as read once (util/proxy-for-url.ts), for the AWS SDK's calls. */
  proxies?: ProxyEnvironment;
  channel: ExchangeChannel;
}

export function createKeychain(files: CredentialSource, overrides: ReadonlyMap<string, RegistryProvider>, cloud: CloudAccess): Keychain {
  const providers = new RegistryProviders(overrides);
  const ecr = new EcrClients(cloud.proxies);
  return {
    credentials: firstOf([files, new EcrCredentials(providers, ecr), googleCredentials(providers, cloud.env), azureCredentials(providers, cloud)]),
    providers,
    ecr,
  };
}

/** ACR's credentials for the `azure` hosts; azure.ts is loaded when the first one is asked for. */
function azureCredentials(providers: RegistryProviders, cloud: CloudAccess): CredentialSource {
  let source: Promise<CredentialSource> | undefined;
  return {
    async lookup(registry): Promise<Credential | undefined> {
      if (providers.providerOf(registry) !== 'azure') return undefined;
      source ??= import('./azure.ts').then(({ AcrCredentials }) => new AcrCredentials(cloud.env, cloud.channel));
      return (await source).lookup(registry);
    },
  };
}

/** gcp.ts and Google's library, imported the first time a Google host is asked for. */
function googleCredentials(providers: RegistryProviders, env: Record<string, string | undefined>): CredentialSource {
  let google: Promise<import('./gcp.ts').GoogleCredentials> | undefined;
  let loaded: import('./gcp.ts').GoogleCredentials | undefined;
  return {
    async lookup(registry) {
      if (providers.providerOf(registry) !== 'gcp') return undefined;
      google ??= import('./gcp.ts').then(({ GoogleCredentials }) => (loaded = new GoogleCredentials(env)));
      return (await google).lookup();
    },
    absence: (registry) => (providers.providerOf(registry) === 'gcp' ? loaded?.absence() : undefined),
  };
}

function firstOf(sources: readonly CredentialSource[]): CredentialSource {
  return {
    async lookup(registry, repository): Promise<Credential | undefined> {
      for (const source of sources) {
        const credential = await source.lookup(registry, repository);
        if (credential !== undefined) return credential;
      }
      return undefined;
    },
    absence: (registry) => sources.map((source) => source.absence?.(registry)).find((reason) => reason !== undefined),
  };
}
