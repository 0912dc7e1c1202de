// `image-clone sync`: discover the cluster's workloads, resolve their images, plan, and (without
// --dry-run) copy, verify and patch.
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.ts';
import { workloadKinds, type WorkloadKind } from '../../core/workloads.ts';
import type { PlanConfig } from '../../core/plan.ts';
import { resolveOption, type OptionSource } from '../config.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { createProgress } from '../output/progress.ts';
import { openRegistry, registryOptions, registrySettings } from '../registry.ts';

export const syncOptions = {
  backup: { type: 'string', describe: 'Backup registry and optional path prefix, e.g. registry.example.com/mirror (required)' },
  naming: { choices: ['nested', 'flat'] as const, describe: 'Backup names: nested <backup>/<host>/<path>, or flat (one path level, for Docker Hub or Quay) [default: nested]' },
  'dry-run': { type: 'boolean', describe: 'Print the plan and change nothing (reads only)' },
  'exit-code': { type: 'boolean', describe: 'With --dry-run: exit 3 when changes are pending' },
  namespace: { alias: 'n', type: 'string', array: true, describe: 'Only this namespace (repeatable) [default: all]' },
  'exclude-namespace': { type: 'string', array: true, describe: "Skip this namespace (repeatable) [default: kube-system and image-clone's own]" },
  selector: { alias: 'l', type: 'string', describe: 'Only workloads matching this label selector' },
  kinds: { type: 'string', array: true, describe: `Only these kinds (comma-separated or repeated) [default: all: ${workloadKinds.join(', ')}]` },
  'include-image': { type: 'string', array: true, describe: 'Only images whose canonical reference matches this glob (* any run, ? one character)' },
  'exclude-image': { type: 'string', array: true, describe: 'Skip images whose canonical reference matches this glob' },
  kubeconfig: { type: 'string', describe: 'Kubeconfig file [default: KUBECONFIG, ~/.kube/config, or in-cluster]' },
  context: { type: 'string', describe: 'Kubeconfig context [default: the current one]' },
  pin: { type: 'boolean', describe: 'Patch to <backup>:<tag>@<digest> so nodes pull exactly what ran before [default: true]' },
  'patch-managed': { type: 'boolean', describe: 'Also patch workloads that Argo CD, Flux or Helm manage (they may revert it)' },
  output: { alias: 'o', choices: ['table', 'json', 'yaml', 'kustomize'] as const, describe: 'What stdout carries [default: table]' },
  config: { type: 'string', describe: 'YAML file with any of these options (flags and IMAGE_CLONE_* variables win over it)' },
  ...registryOptions,
} as const;

type SyncOptionName = keyof typeof syncOptions;

const kindAliases: Record<string, WorkloadKind> = {
  deploy: 'Deployment', deployments: 'Deployment', sts: 'StatefulSet', statefulsets: 'StatefulSet', ds: 'DaemonSet', daemonsets: 'DaemonSet',
  cj: 'CronJob', cronjobs: 'CronJob', rc: 'ReplicationController', replicationcontrollers: 'ReplicationController', rs: 'ReplicaSet',
  replicasets: 'ReplicaSet', jobs: 'Job', po: 'Pod', pods: 'Pod',
};

export function parseKinds(values: string[]): WorkloadKind[] {
  if (!values.length) return [...workloadKinds];
  return values.map((value) => {
    const lower = value.toLowerCase();
    const kind = workloadKinds.find((k) => k.toLowerCase() === lower) ?? kindAliases[lower];
    if (!kind) throw new UsageError(`--kinds: unknown kind "${value}" (known: ${workloadKinds.join(', ')})`);
    return kind;
  });
}

/** --config FILE: a YAML mapping of option names (as on the command line, without dashes) to values. */
async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { loadYaml } = await import('@kubernetes/client-node');
  let parsed: unknown;
  try {
    parsed = loadYaml(text);
  } catch (err) {
    throw new UsageError(`--config ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === undefined || parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--config ${path} must be a mapping of option names to values`);
  const known = new Set<string>(Object.keys(syncOptions));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key) || key === 'config') throw new UsageError(`--config ${path}: unknown option "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

export interface SyncSettings {
  plan: PlanConfig;
  dryRun: boolean;
  exitCode: boolean;
  namespaces: string[];
  excludeNamespaces: string[] | undefined;
  selector: string | undefined;
  kinds: WorkloadKind[];
  kubeconfig: string | undefined;
  context: string | undefined;
  output: 'table' | 'json' | 'yaml' | 'kustomize';
}

/** Every sync setting from flags > IMAGE_CLONE_* > --config > defaults, in one place. */
export async function syncSettings(argv: Record<string, unknown>, env: Record<string, string | undefined>): Promise<{ settings: SyncSettings; source: OptionSource }> {
  const configPath = resolveOption({ flags: argv, env }, 'config', 'string');
  const source: OptionSource = { flags: argv, env, ...(configPath ? { file: await readConfigFile(configPath) } : {}) };
  const option = (name: SyncOptionName) => name;
  const backupText = resolveOption(source, option('backup'), 'string');
  if (!backupText) throw new UsageError('--backup is required (or IMAGE_CLONE_BACKUP): the registry and path to copy images into, e.g. registry.example.com/mirror');
  const { parseBackupLocation } = await import('../../core/naming.ts');
  const naming = resolveOption(source, option('naming'), 'string', 'nested');
  if (naming !== 'nested' && naming !== 'flat') throw new UsageError(`--naming must be nested or flat, not ${JSON.stringify(naming)}`);
  const output = resolveOption(source, option('output'), 'string', 'table');
  if (!['table', 'json', 'yaml', 'kustomize'].includes(output)) throw new UsageError(`--output must be table, json, yaml or kustomize, not ${JSON.stringify(output)}`);
  const excluded = resolveOption(source, option('exclude-namespace'), 'list', []);
  const settings: SyncSettings = {
    plan: {
      backup: parseBackupLocation(backupText),
      naming,
      pin: resolveOption(source, option('pin'), 'boolean', true),
      patchManaged: resolveOption(source, option('patch-managed'), 'boolean', false),
      includeImages: resolveOption(source, option('include-image'), 'list', []),
      excludeImages: resolveOption(source, option('exclude-image'), 'list', []),
    },
    dryRun: resolveOption(source, option('dry-run'), 'boolean', false),
    exitCode: resolveOption(source, option('exit-code'), 'boolean', false),
    namespaces: resolveOption(source, option('namespace'), 'list', []),
    excludeNamespaces: excluded.length ? excluded : undefined,
    selector: resolveOption(source, option('selector'), 'string'),
    kinds: parseKinds(resolveOption(source, option('kinds'), 'list', [])),
    kubeconfig: resolveOption(source, option('kubeconfig'), 'string'),
    context: resolveOption(source, option('context'), 'string'),
    output: output as SyncSettings['output'],
  };
  if (settings.exitCode && !settings.dryRun) throw new UsageError('--exit-code goes with --dry-run');
  return { settings, source };
}

export function syncCommand(context: CliContext): CommandModule {
  return {
    command: 'sync',
    describe: "Back up every image the cluster's workloads run and point the workloads at the copies",
    builder: (yargs: Argv) => yargs
      .options(syncOptions)
      .example('$0 sync --backup registry.example.com/mirror --dry-run', 'print the plan; change nothing')
      .example('$0 sync --backup registry.example.com/mirror -n shop -o json', 'back up and patch the shop namespace; JSON report')
      .epilogue('Exit codes: 0 nothing to do or all done, 1 some images or workloads failed or are lost, 2 usage or configuration error, 3 changes pending (only with --dry-run --exit-code).'),
    handler: async (argv) => {
      context.exitCode = await runSync(argv as Record<string, unknown>, context);
    },
  };
}

async function runSync(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const { settings, source } = await syncSettings(argv, context.env);
  const registry = registrySettings(source);
  const { loadKubeConfig } = await import('../../kube/config.ts');
  const { WorkloadLister } = await import('../../kube/list.ts');
  const { planSync } = await import('../../core/sync.ts');
  const { planDocument, renderKustomize, renderPlanTable } = await import('../output/plan.ts');

  const kube = loadKubeConfig({ env: context.env, ...(settings.kubeconfig ? { kubeconfig: settings.kubeconfig } : {}), ...(settings.context ? { context: settings.context } : {}) });
  const excludeNamespaces = settings.excludeNamespaces ?? ['kube-system', ...(kube.ownNamespace ? [kube.ownNamespace] : [])];
  const { transport, client } = await openRegistry(registry, context, (line) => progress.log(line));
  const progress = createProgress({ stream: context.stderr, interactive: context.interactive && settings.output === 'table', text: 'Listing workloads' });
  try {
    const { plan } = await planSync(
      {
        workloads: new WorkloadLister(kube.kc),
        manifests: { digestOf: async (repo, reference) => (await client.headManifest(repo, reference))?.digest },
      },
      { namespaces: settings.namespaces, excludeNamespaces, ...(settings.selector ? { labelSelector: settings.selector } : {}), kinds: settings.kinds },
      settings.plan,
      registry.concurrency,
    );
    progress.stop();
    if (!settings.dryRun) throw new UsageError('sync without --dry-run is not available yet: run with --dry-run to see the plan');
    const { registry: backupRegistry, prefix } = settings.plan.backup;
    const backup = prefix ? `${backupRegistry}/${prefix}` : backupRegistry;
    const write = (text: string) => context.stdout.write(text);
    switch (settings.output) {
      case 'json':
        write(`${JSON.stringify(planDocument(plan, backup, true), null, 2)}\n`);
        break;
      case 'yaml': {
        const { dumpYaml } = await import('@kubernetes/client-node');
        write(dumpYaml(planDocument(plan, backup, true)));
        break;
      }
      case 'kustomize':
        write(renderKustomize(plan));
        break;
      default:
        write(renderPlanTable(plan, Math.max(80, Math.min(context.stdout.columns ?? 80, 200)), true));
    }
    const s = plan.summary;
    if (s.images.lost || s.images.error || s.workloads.error) return ExitCode.failed;
    if (settings.exitCode && (s.images.copy || s.workloads.patch)) return ExitCode.changesPending;
    return ExitCode.ok;
  } finally {
    progress.stop();
    await transport.close();
  }
}
