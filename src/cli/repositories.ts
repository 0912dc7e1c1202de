// Backup repositories a registry needs created before the first push (ECR): the options that say
// how, and the step that runs between planning and copying. Repositories on other registries are
// left to the registry (they appear on push).
import { readFile } from 'node:fs/promises';
import type { Keychain } from '../auth/keychain.ts';
import { AuthError, UsageError } from '../errors.ts';
import type { EcrRepositorySettings } from '../oci/ecr-repositories.ts';
import type { Repository } from '../oci/registry.ts';
import { errorCode } from '../util/retry-policy.ts';
import { resolveOption, type OptionSource } from './config-layers.ts';

export interface RepositorySettings {
  create: boolean;
  ecr: Omit<EcrRepositorySettings, 'lifecyclePolicy' | 'repositoryPolicy'>;
  /** Files whose JSON goes on each created repository: read when a run has ECR repositories to prepare. */
  policyFiles: { lifecycle: string | undefined; repository: string | undefined };
}

export function repositorySettings(source: OptionSource): RepositorySettings {
  const mutability = resolveOption(source, 'ecr-tag-mutability', 'string', 'MUTABLE').toUpperCase();
  if (mutability !== 'MUTABLE' && mutability !== 'IMMUTABLE') throw new UsageError(`--ecr-tag-mutability must be MUTABLE or IMMUTABLE, not ${JSON.stringify(mutability)}`);
  const kmsKey = resolveOption(source, 'ecr-kms-key', 'string');
  const encryption = resolveOption(source, 'ecr-encryption', 'string', kmsKey ? 'KMS' : 'AES256').toUpperCase();
  if (encryption !== 'AES256' && encryption !== 'KMS') throw new UsageError(`--ecr-encryption must be AES256 or KMS, not ${JSON.stringify(encryption)}`);
  if (kmsKey && encryption !== 'KMS') throw new UsageError('--ecr-kms-key goes with --ecr-encryption KMS');
  const tags: Record<string, string> = {};
  for (const pair of resolveOption(source, 'ecr-repository-tag', 'list', [])) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--ecr-repository-tag must be KEY=VALUE, not ${JSON.stringify(pair)}`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return {
    create: resolveOption(source, 'create-repositories', 'boolean', true),
    ecr: { tagMutability: mutability, scanOnPush: resolveOption(source, 'ecr-scan-on-push', 'boolean', false), encryption, kmsKey, tags },
    policyFiles: { lifecycle: resolveOption(source, 'ecr-lifecycle-policy', 'string'), repository: resolveOption(source, 'ecr-repository-policy', 'string') },
  };
}

/**
 * Before the copies: creates the ECR repositories among `targets` that do not exist (or, with
 * `dryRun`, names those it would create). Each created (or would-be) repository is told to `log`.
 * A refusal throws one line naming the action and the repository (AuthError, exit 2) before anything moved.
 */
export async function prepareRepositories(targets: Repository[], settings: RepositorySettings, keychain: Keychain, options: { dryRun: boolean; concurrency: number; log: (line: string) => void }): Promise<void> {
  if (!settings.create || !targets.some((t) => keychain.providers.ecrHost(t.registry))) return;
  const { EcrRepositories } = await import('../oci/ecr-repositories.ts');
  const policies = {
    lifecyclePolicy: await readPolicy('ecr-lifecycle-policy', settings.policyFiles.lifecycle),
    repositoryPolicy: await readPolicy('ecr-repository-policy', settings.policyFiles.repository),
  };
  const repositories = new EcrRepositories(keychain.providers, keychain.ecr, { ...settings.ecr, ...policies });
  const s = settings.ecr;
  const extras = [policies.lifecyclePolicy ? ', lifecycle policy' : '', policies.repositoryPolicy ? ', repository policy' : ''].join('');
  const how = `${s.tagMutability}, scan on push ${s.scanOnPush ? 'on' : 'off'}, ${s.encryption === 'KMS' ? `KMS${s.kmsKey ? ` ${s.kmsKey}` : ''}` : 'AES256'}${extras}`;
  if (options.dryRun) {
    // A plan is still worth having from an identity that may not describe repositories: say so and go on.
    const missing = await repositories.missing(targets, options.concurrency).catch((err: unknown) => {
      if (!(err instanceof AuthError)) throw err;
      options.log(`cannot tell which ECR repositories would be created: ${err.message}`);
      return [];
    });
    for (const r of missing) options.log(`would create ECR repository ${r.registry}/${r.repository} (${how})`);
    return;
  }
  for (const r of await repositories.create(targets, options.concurrency)) options.log(`created ECR repository ${r.registry}/${r.repository} (${how})`);
}

/** A policy file's text, checked to be JSON (the service says whether it is a valid policy). */
async function readPolicy(option: string, path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --${option} ${path}: ${errorCode(err) ?? (err as Error).message}`);
  }
  try {
    JSON.parse(text);
  } catch {
    throw new UsageError(`--${option} ${path} is not valid JSON`);
  }
  return text;
}
