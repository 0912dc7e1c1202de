// ECR refuses a push to a repository that does not exist: image-clone creates each backup
// repository it is about to copy into (ecr:CreateRepository) with the operator's settings, before
// the first byte moves, so a refusal stops the run with nothing half-copied. A repository that
// exists already (made by an earlier run, a concurrent one, or by hand) is success, and its
// settings are left as they are. A dry run asks ecr:DescribeRepositories which would be created.
import type { RegistryProviders } from '../auth/provider.ts';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { awsError, type EcrClients, type EcrSdk, loadEcrSdk } from '../auth/aws.ts';
import { createLimiter } from '../util/limit.ts';
import type { Repository } from './registry.ts';

export interface EcrRepositorySettings {
  tagMutability: 'MUTABLE' | 'IMMUTABLE';
  scanOnPush: boolean;
  /** AES256, or KMS with `kmsKey` (absent: the account's AWS managed key). */
  encryption: 'AES256' | 'KMS';
  kmsKey: string | undefined;
  tags: Record<string, string>;
  /** JSON texts put on each repository created (PutLifecyclePolicy, SetRepositoryPolicy). */
  lifecyclePolicy?: string | undefined;
  repositoryPolicy?: string | undefined;
}

export class EcrRepositories {
  readonly #providers: RegistryProviders;
  readonly #clients: EcrClients;
  readonly #settings: EcrRepositorySettings;

  constructor(providers: RegistryProviders, clients: EcrClients, settings: EcrRepositorySettings) {
    this.#providers = providers;
    this.#clients = clients;
    this.#settings = settings;
  }

  /** The distinct repositories among these that live on ECR (by host name or --registry-provider). */
  #onEcr(repositories: Repository[]): Repository[] {
    const distinct = new Map<string, Repository>();
    for (const r of repositories) if (this.#providers.ecrHost(r.registry)) distinct.set(`${r.registry.toLowerCase()}/${r.repository}`, { registry: r.registry, repository: r.repository });
    return [...distinct.values()];
  }

  /** Creates the ECR repositories among these that do not exist; resolves to the ones it created. */
  create(repositories: Repository[], concurrency: number): Promise<Repository[]> {
    const s = this.#settings;
    return this.#select(repositories, concurrency, async (sdk, client, repo, registryId) => {
      try {
        await client.send(new sdk.CreateRepositoryCommand({
          ...registryId,
          repositoryName: repo.repository,
          imageTagMutability: s.tagMutability,
          imageScanningConfiguration: { scanOnPush: s.scanOnPush },
          encryptionConfiguration: { encryptionType: s.encryption, ...(s.encryption === 'KMS' && s.kmsKey ? { kmsKey: s.kmsKey } : {}) },
          ...(Object.keys(s.tags).length ? { tags: Object.entries(s.tags).map(([Key, Value]) => ({ Key, Value })) } : {}),
        }));
      } catch (err) {
        // Another run (another cluster) created it meanwhile, or an earlier run did: success.
        if (err instanceof sdk.RepositoryAlreadyExistsException) return false;
        throw awsError(err, repo.registry, 'ecr:CreateRepository', repo.repository);
      }
      // Policies go on the repositories this run created; existing ones keep theirs.
      const name = { ...registryId, repositoryName: repo.repository };
      const put = (action: string, send: () => Promise<unknown>) => send().catch((err: unknown) => {
        const failure = awsError(err, repo.registry, action, repo.repository);
        failure.message += '; the repository was created without it (set it by hand, or delete the repository and run again)';
        throw failure;
      });
      const { lifecyclePolicy, repositoryPolicy } = s;
      if (lifecyclePolicy !== undefined) await put('ecr:PutLifecyclePolicy', () => client.send(new sdk.PutLifecyclePolicyCommand({ ...name, lifecyclePolicyText: lifecyclePolicy })));
      if (repositoryPolicy !== undefined) await put('ecr:SetRepositoryPolicy', () => client.send(new sdk.SetRepositoryPolicyCommand({ ...name, policyText: repositoryPolicy })));
      return true;
    });
  }

  /** The ECR repositories among these that do not exist yet (for a dry run: nothing is created). */
  missing(repositories: Repository[], concurrency: number): Promise<Repository[]> {
    return this.#select(repositories, concurrency, async (sdk, client, repo, registryId) => {
      try {
        await client.send(new sdk.DescribeRepositoriesCommand({ ...registryId, repositoryNames: [repo.repository] }));
        return false;
      } catch (err) {
        if (err instanceof sdk.RepositoryNotFoundException) return true;
        throw awsError(err, repo.registry, 'ecr:DescribeRepositories', repo.repository);
      }
    });
  }

  /** The ECR repositories for which `ask` answers true, asked `concurrency` at a time with their region's client. */
  async #select(repositories: Repository[], concurrency: number, ask: (sdk: EcrSdk, client: ECRClient, repo: Repository, registryId: { registryId?: string }) => Promise<boolean>): Promise<Repository[]> {
    const sdk = await loadEcrSdk();
    const limit = createLimiter(concurrency);
    const selected = await Promise.all(this.#onEcr(repositories).map((repo) => limit(async () => {
      const { account, region } = this.#providers.ecrHost(repo.registry)!;
      return (await ask(sdk, await this.#clients.client(region), repo, account ? { registryId: account } : {})) ? repo : undefined;
    })));
    return selected.filter((r): r is Repository => r !== undefined);
  }
}
