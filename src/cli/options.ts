// The command-line options of every command, one table each: what yargs parses and --help shows.
// Their values are resolved in settings.ts (sync) and in each command's complete step.
import { workloadKinds } from '../core/workloads.ts';
import { metricsOptions } from './metrics.ts';
import { registryOptions } from './registry-wiring.ts';

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
