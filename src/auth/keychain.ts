// The keychain the registry client asks for each host, in order, the first answer winning: the
// explicit sources first (--registry-config, the docker and Podman config files and the helpers
// they name), so a laptop keeps working as it does today, then the cloud identity for the hosts no
// entry names (ECR through the AWS SDK, ecr.ts). The cloud SDKs load only when such a host is asked for.
import { EcrClients } from './aws.ts';
import type { Credential, CredentialSource } from './credential.ts';
import { EcrCredentials } from './ecr.ts';
import { type RegistryProvider, RegistryProviders } from './provider.ts';

export interface Keychain {
  credentials: CredentialSource;
  providers: RegistryProviders;
  /** The ECR clients, shared with repository creation. */
  ecr: EcrClients;
}

export function createKeychain(files: CredentialSource, overrides: ReadonlyMap<string, RegistryProvider>): Keychain {
  const providers = new RegistryProviders(overrides);
  const ecr = new EcrClients();
  return {
    credentials: firstOf([files, new EcrCredentials(providers, ecr)]),
    providers,
    ecr,
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
