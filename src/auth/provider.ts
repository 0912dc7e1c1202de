// Which cloud a registry host belongs to, from its name or from --registry-provider HOST=NAME for a
// host the name does not reveal (a proxy, a VPC endpoint alias, a test). Each cloud has credentials
// of its own: `aws` (ecr.ts), `gcp` (gcp.ts), `azure` (azure.ts).
import { registryKey } from '../reference.ts';

export const registryProviders = ['aws', 'gcp', 'azure', 'generic'] as const;
export type RegistryProvider = (typeof registryProviders)[number];

/** An ECR registry's account and region, as its host name says them (absent for an overridden host). */
export interface EcrHost {
  account: string | undefined;
  region: string | undefined;
}

/** <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] (private ECR, FIPS endpoints, the China regions). */
const ecrHostPattern = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/;
const gcpHostPattern = /^(?:[a-z0-9-]+-docker\.pkg\.dev|gcr\.io|[a-z0-9-]+\.gcr\.io)$/;
const azureHostPattern = /^[a-z0-9-]+\.azurecr\.(?:io|cn|us)$/;

export class RegistryProviders {
  readonly #overrides: Map<string, RegistryProvider>;

  /** `overrides`: registry host (host[:port]) to provider, as --registry-provider gives them. */
  constructor(overrides: ReadonlyMap<string, RegistryProvider> = new Map()) {
    this.#overrides = new Map([...overrides].map(([host, provider]) => [registryKey(host), provider]));
  }

  providerOf(registry: string): RegistryProvider {
    const key = registryKey(registry);
    const named = this.#overrides.get(key);
    if (named !== undefined) return named;
    const host = key.replace(/:\d+$/, '');
    if (ecrHostPattern.test(host)) return 'aws';
    if (gcpHostPattern.test(host)) return 'gcp';
    if (azureHostPattern.test(host)) return 'azure';
    return 'generic';
  }

  /** The ECR account and region of an `aws` registry; undefined for any other. */
  ecrHost(registry: string): EcrHost | undefined {
    if (this.providerOf(registry) !== 'aws') return undefined;
    const match = ecrHostPattern.exec(registryKey(registry).replace(/:\d+$/, ''));
    return { account: match?.[1], region: match?.[2] };
  }
}
