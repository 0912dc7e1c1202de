// The command-line options of every command, one table each: what yargs parses and --help shows.
// Their values are resolved in settings.ts (sync) and in each command's complete step.
import { registryProviders } from '../auth/provider.ts';
import { workloadKinds } from '../core/workloads.ts';

/** ECR repositories image-clone creates (cli/repositories.ts). */
const repositoryOptions = {
  'create-repositories': { type: 'boolean', describe: 'Create each missing ECR backup repository before the first push (--no-create-repositories where creation templates or a policy forbid it) [default: true]' },
  'ecr-tag-mutability': { choices: ['MUTABLE', 'IMMUTABLE'] as const, describe: 'Tag mutability of the ECR repositories image-clone creates; with IMMUTABLE a human tag that would move is left and reported [default: MUTABLE]' },
  'ecr-scan-on-push': { type: 'boolean', describe: 'Turn on scan on push in the ECR repositories image-clone creates [default: false]' },
  'ecr-kms-key': { type: 'string', describe: 'Encrypt the ECR repositories image-clone creates with this KMS key (ARN, id or alias) [default: AES256]' },
  'ecr-encryption': { choices: ['AES256', 'KMS'] as const, describe: "Encryption of the ECR repositories image-clone creates: AES256, or KMS (the account's AWS managed key unless --ecr-kms-key) [default: AES256, KMS with --ecr-kms-key]" },
  'ecr-repository-tag': { type: 'string', array: true, nargs: 1, describe: 'A resource tag KEY=VALUE on the ECR repositories image-clone creates (one per use, repeatable)' },
  'ecr-lifecycle-policy': { type: 'string', describe: 'Put this lifecycle policy (a JSON file) on the ECR repositories image-clone creates; never expire tagged images, the copies workloads run' },
  'ecr-repository-policy': { type: 'string', describe: 'Set this repository policy (a JSON file) on the ECR repositories image-clone creates, e.g. to let other accounts pull' },
} as const;

/** Registry access: shared by sync and copy (cli/registry-wiring.ts). */
const registryOptions = {
  'insecure-registry': { type: 'string', array: true, nargs: 1, describe: 'Reach this registry host over plain HTTP or unverified TLS (one per use, repeatable)' },
  'registry-config': { type: 'string', describe: 'Registry credentials in docker config.json format, read before ~/.docker/config.json' },
  'registry-provider': { type: 'string', array: true, nargs: 1, describe: `Whose registry a host is, HOST=${registryProviders.join('|')}, where its name does not say (one per use, repeatable): aws gets ECR credentials from the AWS identity, gcp an access token from Google's Application Default Credentials, azure ACR credentials from AKS Workload Identity` },
  concurrency: { type: 'number', describe: 'Blob transfers (and registry lookups) in flight at once [default: 8]' },
  'rate-limit-wait': { type: 'number', describe: 'Seconds to wait for a registry that answers 429 (a pull quota); asked to wait longer, the run stops asking it and names the cause [default: 60]' },
  'registry-timeout': { type: 'number', describe: 'Seconds to wait for a registry to answer a request; a registry that never answers is given up for the rest of the run after its retries [default: 60]' },
  ...repositoryOptions,
} as const;

/** --metrics-*: sync's figures pushed after each run (cli/metrics.ts). */
const metricsOptions = {
  'metrics-pushgateway': { type: 'string', describe: 'After each run, push its figures to this Prometheus Pushgateway (http(s)://host:port), job "image-clone"' },
  'metrics-cluster': { type: 'string', describe: 'The "cluster" grouping label of the pushed figures (one group per cluster on a shared Pushgateway)' },
} as const;

/** Which workloads a command looks at: shared by sync and restore. */
export const selectionOptions = {
  namespace: { alias: 'n', type: 'string', array: true, nargs: 1, describe: 'Only this namespace (one per use, repeatable; or comma-separated) [default: all]' },
  'exclude-namespace': { type: 'string', array: true, nargs: 1, describe: 'Skip this namespace entirely (one per use, repeatable; or comma-separated) [default: kube-system]' },
  selector: { alias: 'l', type: 'string', describe: 'Only workloads matching this label selector' },
  kinds: { type: 'string', array: true, nargs: 1, describe: `Only these kinds (comma-separated or repeated; custom kinds as Kind.group; owners image-clone does not patch come with Pod) [default: all: ${workloadKinds.join(', ')} and the custom kinds]` },
  'workload-kind': { type: 'string', array: true, nargs: 1, describe: 'A custom kind to patch like a Deployment, GROUP/KIND=PATH with PATH the dot path of its pod template, e.g. example.com/WebApp=spec.template (repeatable; docs/custom-workloads.md lists the kinds known already)' },
  kubeconfig: { type: 'string', describe: 'Kubeconfig file [default: KUBECONFIG, ~/.kube/config, or in-cluster]' },
  context: { type: 'string', describe: 'Kubeconfig context [default: the current one]' },
  'own-namespace': { type: 'string', describe: "image-clone's namespace: holds the run lock and the pull secret to copy (its other workloads are protected like any; image-clone itself is never patched) [default: the pod's namespace in a cluster, else image-clone]" },
} as const;

export const syncOptions = {
  backup: { type: 'string', describe: 'Backup registry and optional path prefix, e.g. registry.example.com/mirror (required)' },
  naming: { choices: ['nested', 'flat'] as const, describe: 'Backup names: nested <backup>/<host>/<path>, or flat (one path level, for Docker Hub or Quay) [default: nested]' },
  'dry-run': { type: 'boolean', describe: 'Print the plan and change nothing (reads only)' },
  'exit-code': { type: 'boolean', describe: 'With --dry-run: exit 3 when changes are pending' },
  ...selectionOptions,
  'include-image': { type: 'string', array: true, nargs: 1, describe: 'Only images whose canonical reference matches this glob (* any run, ? one character; repeatable)' },
  'exclude-image': { type: 'string', array: true, nargs: 1, describe: 'Skip images whose canonical reference matches this glob (repeatable)' },
  pin: { type: 'boolean', describe: 'Patch to <backup>:<tag>@<digest> so nodes pull exactly what ran before [default: true]' },
  'patch-managed': { type: 'boolean', describe: 'Also patch workloads that Argo CD, Flux or Helm manage (they may revert it)' },
  output: { alias: 'o', choices: ['table', 'json', 'yaml', 'kustomize'] as const, describe: 'What stdout carries [default: table]' },
  signatures: { type: 'boolean', describe: 'Copy cosign signatures, attestations, SBOMs and referrers with each image [default: true]' },
  verify: { type: 'boolean', describe: 'Check every manifest and blob the workloads run in the backup (a HEAD each), e.g. after a garbage collection; what is gone is copied again, or reported lost' },
  'log-format': { choices: ['text', 'json'] as const, describe: 'Progress and events on stderr: text lines, or JSON lines for log collectors [default: text]' },
  lock: { type: 'boolean', describe: 'Hold a Lease in the own namespace so two syncs never run at once (--no-lock to skip) [default: true]' },
  'pull-secret': { type: 'string', describe: "Copy this dockerconfigjson Secret from the own namespace into each patched namespace and add it to the pod templates' imagePullSecrets (needs the pull-secrets RBAC overlay)" },
  events: { type: 'boolean', describe: 'Record a Kubernetes Event on each workload a real run patched, skipped or failed, and on each one running a lost image (--no-events to skip) [default: true]' },
  config: { type: 'string', describe: 'YAML file with any of these options (flags and IMAGE_CLONE_* variables win over it)' },
  ...registryOptions,
  ...metricsOptions,
} as const;

export const restoreOptions = {
  ...selectionOptions,
  'dry-run': { type: 'boolean', describe: 'Print what would be restored and change nothing (takes no lock)' },
  lock: { type: 'boolean', describe: 'Hold the run lock (the Lease sync holds) so that restore and sync never run at once (--no-lock to skip) [default: true]' },
  output: { alias: 'o', choices: ['table', 'json'] as const, describe: 'What stdout carries [default: table]' },
} as const;

export const copyOptions = {
  ...registryOptions,
  platform: { type: 'string', array: true, nargs: 1, describe: 'Copy only this platform, os/arch[/variant] (one per use, repeatable); rewrites the index, so its digest changes' },
  signatures: { type: 'boolean', describe: 'Copy cosign signatures, attestations, SBOMs and referrers with the image [default: true]' },
  output: { alias: 'o', choices: ['text', 'json'] as const, describe: 'Summary format on stdout [default: text]' },
  'from-file': { type: 'string', describe: 'Copy every "SOURCE TARGET" pair listed in this file (one per line), in one run' },
} as const;
