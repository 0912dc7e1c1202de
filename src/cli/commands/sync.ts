// `image-clone sync`: discover the cluster's workloads, resolve their images, plan, and (without
// --dry-run) copy, verify and patch.
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { AuthError, UnavailableError, UsageError } from '../../errors.ts';
import { workloadKinds, type WorkloadKind } from '../../core/workloads.ts';
import type { Plan, PlanConfig } from '../../core/plan.ts';
import type { Patcher } from '../../core/ports.ts';
import { resolveOption, type OptionSource } from '../config.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { createProgress } from '../output/progress.ts';
import { openRegistry, registryOptions, registrySettings } from '../registry.ts';

/** Which workloads a command looks at: shared by sync and restore. */
export const selectionOptions = {
  namespace: { alias: 'n', type: 'string', array: true, nargs: 1, describe: 'Only this namespace (one per use, repeatable; or comma-separated) [default: all]' },
  'exclude-namespace': { type: 'string', array: true, nargs: 1, describe: 'Skip this namespace entirely (one per use, repeatable; or comma-separated) [default: kube-system]' },
  selector: { alias: 'l', type: 'string', describe: 'Only workloads matching this label selector' },
  kinds: { type: 'string', array: true, nargs: 1, describe: `Only these kinds (comma-separated or repeated) [default: all: ${workloadKinds.join(', ')}]` },
  kubeconfig: { type: 'string', describe: 'Kubeconfig file [default: KUBECONFIG, ~/.kube/config, or in-cluster]' },
  context: { type: 'string', describe: 'Kubeconfig context [default: the current one]' },
  'own-namespace': { type: 'string', describe: "image-clone's namespace: holds the run lock and the pull secret to copy; its images are backed up, its workloads never patched [default: the pod's namespace in a cluster, else image-clone]" },
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
  'log-format': { choices: ['text', 'json'] as const, describe: 'Progress and events on stderr: text lines, or JSON lines for log collectors [default: text]' },
  lock: { type: 'boolean', describe: 'Hold a Lease in the own namespace so two syncs never run at once (--no-lock to skip) [default: true]' },
  'pull-secret': { type: 'string', describe: "Copy this dockerconfigjson Secret from the own namespace into each patched namespace and add it to the pod templates' imagePullSecrets (needs the pull-secrets RBAC overlay)" },
  config: { type: 'string', describe: 'YAML file with any of these options (flags and IMAGE_CLONE_* variables win over it)' },
  ...registryOptions,
} as const;

export interface Selection {
  ownNamespace: string | undefined;
  namespaces: string[];
  excludeNamespaces: string[] | undefined;
  selector: string | undefined;
  kinds: WorkloadKind[];
  kubeconfig: string | undefined;
  context: string | undefined;
}

export function selectionSettings(source: OptionSource): Selection {
  const excluded = resolveOption(source, 'exclude-namespace', 'list', []);
  return {
    ownNamespace: resolveOption(source, 'own-namespace', 'string'),
    namespaces: resolveOption(source, 'namespace', 'list', []),
    excludeNamespaces: excluded.length ? excluded : undefined,
    selector: resolveOption(source, 'selector', 'string'),
    kinds: parseKinds(resolveOption(source, 'kinds', 'list', [])),
    kubeconfig: resolveOption(source, 'kubeconfig', 'string'),
    context: resolveOption(source, 'context', 'string'),
  };
}

/** Loads the kubeconfig and turns a selection into discovery options (kube-system and our own namespace skipped by default). */
export async function kubeSelection(selection: Selection, env: Record<string, string | undefined>) {
  const { loadKubeConfig } = await import('../../kube/config.ts');
  const kube = loadKubeConfig({ env, ...(selection.kubeconfig ? { kubeconfig: selection.kubeconfig } : {}), ...(selection.context ? { context: selection.context } : {}) });
  const ownNamespace = selection.ownNamespace ?? kube.ownNamespace ?? 'image-clone';
  const discovery = {
    namespaces: selection.namespaces,
    // The own namespace is listed (its images, the tool's own among them, get backed up) but never patched.
    excludeNamespaces: selection.excludeNamespaces ?? ['kube-system'],
    ...(selection.selector ? { labelSelector: selection.selector } : {}),
    kinds: selection.kinds,
  };
  return { kube, discovery, ownNamespace };
}

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
  selection: Selection;
  output: 'table' | 'json' | 'yaml' | 'kustomize';
  signatures: boolean;
  lock: boolean;
  pullSecret: string | undefined;
  logFormat: 'text' | 'json';
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
  const logFormat = resolveOption(source, option('log-format'), 'string', 'text');
  if (logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`--log-format must be text or json, not ${JSON.stringify(logFormat)}`);
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
    selection: selectionSettings(source),
    output: output as SyncSettings['output'],
    signatures: resolveOption(source, option('signatures'), 'boolean', true),
    lock: resolveOption(source, option('lock'), 'boolean', true),
    pullSecret: resolveOption(source, option('pull-secret'), 'string'),
    logFormat: logFormat as SyncSettings['logFormat'],
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
      .epilogue('Exit codes: 0 nothing to do or all done, 1 the run completed but some images or workloads failed or are lost, 2 usage, configuration, credentials or RBAC error, 3 changes pending (only with --dry-run --exit-code), 4 another sync or restore holds the run lock, 5 the API server or the backup registry unreachable or refusing every request, 130 interrupted.'),
    handler: async (argv) => {
      context.exitCode = await runSync(argv as Record<string, unknown>, context);
    },
  };
}

async function runSync(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const { settings, source } = await syncSettings(argv, context.env);
  const registry = registrySettings(source);
  const { WorkloadLister } = await import('../../kube/list.ts');
  const { planSync } = await import('../../core/sync.ts');
  const { registryKey } = await import('../../reference.ts');
  const { kube, discovery, ownNamespace } = await kubeSelection(settings.selection, context.env);
  settings.plan.neverPatchNamespaces = [ownNamespace];
  if (settings.pullSecret) settings.plan.pullSecret = settings.pullSecret;
  const { transport, client } = await openRegistry(registry, context, (line) => log.line('warn', line));
  // A dry run writes nothing, so it needs no lock; a real run takes it before it plans.
  const lockAbort = new AbortController();
  const lock = !settings.dryRun && settings.lock
    ? await (await import('../../kube/lock.ts')).acquireLock(kube.kc, { namespace: ownNamespace, onLost: (why) => lockAbort.abort(new Error(why)) })
        .catch(async (err: unknown) => {
          await transport.close();
          throw err;
        })
    : undefined;
  const started = performance.now();
  const progress = createProgress({ stream: context.stderr, interactive: context.interactive && settings.logFormat === 'text', text: 'Listing workloads' });
  const { createEventLog } = await import('../output/events.ts');
  const log = createEventLog(progress, settings.logFormat, context.stderr);
  if (!settings.dryRun && settings.lock && !lock) {
    log.line('warn', `namespace ${ownNamespace} does not exist, so this run holds no lock; install manifests/ or pass --own-namespace`);
  }
  const { registry: backupRegistry, prefix } = settings.plan.backup;
  const backup = prefix ? `${backupRegistry}/${prefix}` : backupRegistry;
  const { unlessInterrupted } = await import('../interrupt.ts');
  const lister = new WorkloadLister(kube.kc);
  let resolving = false;
  // Backup lookups that answered (a digest or "none") and that failed: all failed = no run at all.
  const backupLookups = { answered: 0, failed: 0, last: undefined as unknown };
  try {
    log.phase('listing', 'Listing workloads');
    // Listing and resolving only read: an interrupt abandons them at once.
    const planned = await unlessInterrupted(planSync(
      {
        workloads: lister,
        // Backup lookups ask for the push scope the copy will need, so the token is fetched once.
        manifests: { digestOf: async (repo, reference) => {
          if (!resolving) log.phase('resolving', 'Resolving images');
          resolving = true;
          const isBackup = registryKey(repo.registry) === registryKey(backupRegistry);
          try {
            const digest = (await client.headManifest(repo, reference, isBackup))?.digest;
            if (isBackup) backupLookups.answered++;
            return digest;
          } catch (err) {
            if (isBackup && !(err instanceof AuthError)) [backupLookups.failed, backupLookups.last] = [backupLookups.failed + 1, err];
            throw err;
          }
        } },
      },
      discovery,
      settings.plan,
      registry.concurrency,
    ), context.signal);
    if (backupLookups.failed && !backupLookups.answered) {
      const why = backupLookups.last instanceof Error ? backupLookups.last.message.split('\n')[0] : String(backupLookups.last);
      throw new UnavailableError(`the backup registry ${backupRegistry} refused every request (${backupLookups.failed} lookup${backupLookups.failed === 1 ? '' : 's'}): ${why}; nothing was copied or patched`);
    }
    if (settings.dryRun) {
      progress.stop();
      await writePlan(planned.plan, backup, settings, context);
      const s = planned.plan.summary;
      if (s.images.lost || s.images.error || s.workloads.error) return ExitCode.failed;
      if (settings.exitCode && (s.images.copy || s.workloads.patch)) return ExitCode.changesPending;
      return ExitCode.ok;
    }

    const { CopyEngine } = await import('../../oci/copy.ts');
    const { WorkloadPatcher } = await import('../../kube/patch.ts');
    const { executePlan } = await import('../../core/execute.ts');
    const pullSecrets = settings.pullSecret ? new (await import('../../kube/secrets.ts')).PullSecretCopier(kube.kc, settings.pullSecret, ownNamespace) : undefined;
    await pullSecrets?.source(); // a missing Secret stops the run before anything is copied
    const engine = new CopyEngine(client, {
      concurrency: registry.concurrency,
      signatures: settings.signatures,
      signal: AbortSignal.any([context.signal, lockAbort.signal]),
      onEvent: (e) => {
        if (context.signal.aborted) return; // the interrupt says it once, not once per transfer
        if (e.kind === 'bytes') log.bytes(e.bytes);
        else if (e.kind === 'warning') log.line('warn', e.message);
      },
    });
    const workloadPatcher = new WorkloadPatcher(kube.kc);
    let patching = false;
    const patcher: Patcher = {
      patch: (...args) => {
        if (!patching) log.phase('patching', 'Patching workloads');
        patching = true;
        return workloadPatcher.patch(...args);
      },
      read: (...args) => workloadPatcher.read(...args),
    };
    const manifests = { digestOf: async (repo: { registry: string; repository: string }, reference: string) => (await client.headManifest(repo, reference, true))?.digest };
    // On an interrupt the copies abort (untagged), patches already sent finish, and no other is sent.
    const result = await executePlan(planned.workloads, planned.requests, planned.resolutions, settings.plan,
      { copier: engine, patcher, manifests, ...(pullSecrets ? { pullSecrets } : {}) },
      { concurrency: registry.concurrency, onEvent: (e) => context.signal.aborted && e.kind === 'image-failed' ? undefined : log.event(e), signal: AbortSignal.any([context.signal, lockAbort.signal]) });
    context.signal.throwIfAborted();
    if (lockAbort.signal.aborted) throw new UnavailableError(`${(lockAbort.signal.reason as Error).message}; the run stopped (patches already sent finished, no other was sent)`);
    progress.stop();
    const { renderRunSummary } = await import('../output/report.ts');
    const { runReport } = await import('../output/document.ts');
    const report = runReport(result, backup, performance.now() - started);
    if (settings.output === 'json') context.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else if (settings.output === 'yaml') context.stdout.write((await import('@kubernetes/client-node')).dumpYaml(report));
    else if (settings.output === 'kustomize') context.stdout.write((await import('../output/plan.ts')).renderKustomize(result.plan));
    else context.stdout.write(renderRunSummary(report, (await import('../output/format.ts')).tableWidth(context.stdout)));
    const s = report.summary;
    return s.images.failed || s.images.lost || s.images.error || s.workloads.failed ? ExitCode.failed : ExitCode.ok;
  } finally {
    progress.stop();
    await (context.signal.aborted ? transport.destroy() : transport.close());
    await lock?.release();
  }
}

async function writePlan(plan: Plan, backup: string, settings: SyncSettings, context: CliContext): Promise<void> {
  const { renderKustomize, renderPlanTable } = await import('../output/plan.ts');
  const { planDocument } = await import('../output/document.ts');
  const document = planDocument(plan, backup, true);
  const write = (text: string) => context.stdout.write(text);
  switch (settings.output) {
    case 'json':
      write(`${JSON.stringify(document, null, 2)}\n`);
      break;
    case 'yaml': {
      const { dumpYaml } = await import('@kubernetes/client-node');
      write(dumpYaml(document));
      break;
    }
    case 'kustomize':
      write(renderKustomize(plan));
      break;
    default:
      write(renderPlanTable(document, (await import('../output/format.ts')).tableWidth(context.stdout)));
  }
}
