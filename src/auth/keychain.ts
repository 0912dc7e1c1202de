// The keychain the registry client asks for each host, in order, the first answer winning: the
// explicit sources first (--registry-config, the docker and Podman config files and the helpers
// they name), so a laptop keeps working as it does today, then the cloud identity for the hosts no
// entry names (ECR through the AWS SDK, ecr.ts; ACR through AKS Workload Identity, azure.ts). The
// cloud code loads only when such a host is asked for.
import { EcrClients } from './aws.ts';
import type { Credential, CredentialSource, ExchangeChannel } from './credential.ts';
import { EcrCredentials } from './ecr.ts';
import { type RegistryProvider, RegistryProviders } from './provider.ts';

export interface Keychain {
  credentials: CredentialSource;
  providers: RegistryProviders;
  /** The ECR clients, shared with repository creation. */
  ecr: EcrClients;
}

/** What the Azure identity needs: the environment it is read from, and the registry client's form POSTs. */
export interface AzureAccess {
  env: Record<string, string | undefined>;
  channel: ExchangeChannel;
}

export function createKeychain(files: CredentialSource, overrides: ReadonlyMap<string, RegistryProvider>, azure: AzureAccess): Keychain {
  const providers = new RegistryProviders(overrides);
  const ecr = new EcrClients();
  return {
    credentials: firstOf([files, new EcrCredentials(providers, ecr), azureCredentials(providers, azure)]),
    providers,
    ecr,
  };
}

/** ACR's credentials for the `azure` hosts; azure.ts is loaded when the first one is asked for. */
function azureCredentials(providers: RegistryProviders, azure: AzureAccess): CredentialSource {
  let source: Promise<CredentialSource> | undefined;
  return {
    async lookup(registry): Promise<Credential | undefined> {
      if (providers.providerOf(registry) !== 'azure') return undefined;
      source ??= import('./azure.ts').then(({ AcrCredentials }) => new AcrCredentials(azure.env, azure.channel));
      return (await source).lookup(registry);
    },
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
  };
}
