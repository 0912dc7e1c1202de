// `image-clone sync`: discover the cluster's workloads, resolve their images, plan, and (without
// --dry-run) copy, verify and patch. Like kubectl's commands: complete (settings from flags > env >
// file > defaults, checked, and the cluster they name), then run.
import type { Argv, CommandModule } from 'yargs';
import { AuthError, UnavailableError } from '../../errors.ts';
import type { Plan } from '../../core/plan.ts';
import type { ManifestLookup, Patcher } from '../../core/ports.ts';
import type { RegistryClient } from '../../oci/registry.ts';
import type { CliContext } from '../context.ts';
import { resolveOption } from '../config-layers.ts';
import { metricsSettings, withRunMetrics, type MetricsSettings } from '../metrics.ts';
import { ExitCode } from '../exit-codes.ts';
import type { RunReport } from '../output/document.ts';
import type { EventLog } from '../output/event-log.ts';
import { createProgress } from '../output/progress.ts';
import { syncOptions } from '../options.ts';
import { openRegistry, registrySettings, type RegistrySettings } from '../registry-wiring.ts';
import { prepareRepositories } from '../repositories.ts';
import { clusterScopeHint, kubeSelection, syncSettings, type SyncSettings } from '../settings.ts';

interface SyncRun {
  settings: SyncSettings;
  registry: RegistrySettings;
  cluster: Awaited<ReturnType<typeof kubeSelection>>;
  metrics: MetricsSettings;
  events: boolean;
}

export function syncCommand(context: CliContext): CommandModule {
  return {
    command: 'sync',
    describe: "Back up every image the cluster's workloads run and point the workloads at the copies",
    builder: (yargs: Argv) => yargs
      .options(syncOptions)
      .example('$0 sync --backup registry.example.com/mirror --dry-run', 'print the plan; change nothing')
      .example('$0 sync --backup registry.example.com/mirror -n shop -o json', 'back up and patch the shop namespace; JSON report')
      .epilogue('Exit codes: 0 nothing to do or all done, 1 the run completed but some images or workloads failed or are lost, 2 usage, configuration, credentials or RBAC error, 3 changes pending (only with --dry-run --exit-code), 4 another sync or restore holds the run lock, 5 the API server or the backup registry unreachable or refusing every request, or the backup out of storage or read-only, 130 interrupted.\n\nManual: docs/sync.md (how a run works, every option, exit codes); -o json|yaml: docs/json.md; as a CronJob: docs/cronjob.md.'),
    handler: async (argv) => {
      const run = await completeSync(argv as Record<string, unknown>, context);
      context.exitCode = await withRunMetrics(run.metrics, run.settings.dryRun, run.settings.logFormat, context, (record) => runSync(run, context, record));
    },
  };
}

async function completeSync(argv: Record<string, unknown>, context: CliContext): Promise<SyncRun> {
  const { settings, source } = await syncSettings(argv, context.env);
  const registry = registrySettings(source);
  const metrics = metricsSettings(source);
  const cluster = await kubeSelection(settings.selection, context.env);
  if (settings.pullSecret) settings.plan.pullSecret = settings.pullSecret;
  return { settings, registry, cluster, metrics, events: resolveOption(source, 'events', 'boolean', true) };
}

async function runSync({ settings, registry, cluster, events }: SyncRun, context: CliContext, record: (summary: RunReport['summary']) => void): Promise<number> {
  const { kube, discovery, ownNamespace } = cluster;
  const { WorkloadLister } = await import('../../kube/list.ts');
  const { planSync } = await import('../../core/pipeline.ts');
  const { transport, client, keychain } = await openRegistry(registry, context, (line) => log.line('warn', line));
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
  const { createEventLog } = await import('../output/event-log.ts');
  const log = createEventLog(progress, settings.logFormat, context.stderr);
  if (!settings.dryRun && settings.lock && !lock) {
    log.line('warn', `namespace ${ownNamespace} does not exist, so this run holds no lock; install manifests/ or pass --own-namespace`);
  }
  const { registry: backupRegistry, prefix } = settings.plan.backup;
  const backup = prefix ? `${backupRegistry}/${prefix}` : backupRegistry;
  const { unlessInterrupted } = await import('../interrupt.ts');
  try {
    log.phase('listing', 'Listing workloads');
    const self = await (await import('../identify-self.ts')).identifySelf(kube, context.env, (line) => log.line('warn', line));
    if (self) settings.plan.self = self;
    const lookups = await backupLookups(client, backupRegistry, log, settings.verify);
    // Listing and resolving only read: an interrupt abandons them at once.
    const lister = new WorkloadLister(kube.kc);
    const planned = await unlessInterrupted(planSync({ workloads: lister, manifests: lookups, warn: (line) => log.line('warn', line) }, discovery, settings.plan, registry.concurrency), context.signal)
      .catch((err: unknown) => { throw clusterScopeHint(err, { kube, discovery }); });
    lookups.throwIfAllFailed();
    // ECR refuses a push to a missing repository: create them now, before anything moves (dry run: name them).
    const targets = planned.requests.filter((r) => planned.resolutions.get(r.key)?.state === 'copy').map((r) => r.backup);
    await prepareRepositories(targets, registry.repositories, keychain, { dryRun: settings.dryRun, concurrency: registry.concurrency, log: (line) => log.line('info', line) });
    if (settings.dryRun) {
      progress.stop();
      const { planDocument } = await import('../output/document.ts');
      const { renderPlanTable } = await import('../output/plan-render.ts');
      await writeDocument(planned.plan, planDocument(planned.plan, backup, true), renderPlanTable, settings, context);
      const s = planned.plan.summary;
      if (s.images.lost || s.images.error || s.workloads.error) return ExitCode.failed;
      if (settings.exitCode && (s.images.copy || s.workloads.patch)) return ExitCode.changesPending;
      return ExitCode.ok;
    }

    const { CopyEngine } = await import('../../oci/copy-engine.ts');
    const { WorkloadPatcher } = await import('../../kube/patch.ts');
    const { executePlan } = await import('../../core/execute.ts');
    const pullSecrets = settings.pullSecret ? new (await import('../../kube/secrets.ts')).PullSecretCopier(kube.kc, settings.pullSecret, ownNamespace) : undefined;
    await pullSecrets?.source(); // a missing Secret stops the run before anything is copied
    // A read-only backup (in maintenance) refuses every push: the run changes nothing, not even the
    // workloads whose copies are there already, and says why (exit 5).
    const readOnly = new AbortController();
    const signal = AbortSignal.any([context.signal, lockAbort.signal, readOnly.signal]);
    const engine = new CopyEngine(client, {
      concurrency: registry.concurrency,
      signatures: settings.signatures,
      verifyBlobs: settings.verify,
      signal,
      onHalt: (cause) => {
        if (cause.condition === 'read-only') readOnly.abort(new Error('the backup registry is read-only'));
      },
      onEvent: (e) => {
        if (context.signal.aborted) return; // the interrupt says it once, not once per transfer
        if (e.kind === 'bytes') log.bytes(e.bytes);
        else if (e.kind === 'warning') log.line('warn', e.message);
      },
    });
    const workloadPatcher = new WorkloadPatcher(kube.kc, lister.custom);
    let patching = false;
    const patcher: Patcher = {
      patch: (...args) => {
        if (!patching) log.phase('patching', 'Patching workloads');
        patching = true;
        return workloadPatcher.patch(...args);
      },
      read: (...args) => workloadPatcher.read(...args),
    };
    const manifests: ManifestLookup = { digestOf: async (repo, reference) => (await client.headManifest(repo, reference, true))?.digest };
    // On an interrupt the copies abort (untagged), patches already sent finish, and no other is sent.
    const result = await executePlan(planned.workloads, planned.requests, planned.resolutions, settings.plan,
      { copier: engine, patcher, manifests, ...(pullSecrets ? { pullSecrets } : {}) },
      { concurrency: registry.concurrency, onEvent: (e) => context.signal.aborted && e.kind === 'image-failed' ? undefined : log.event(e), signal });
    context.signal.throwIfAborted();
    if (lockAbort.signal.aborted) throw new UnavailableError(`${(lockAbort.signal.reason as Error).message}; the run stopped (patches already sent finished, no other was sent)`);
    progress.stop();
    const { renderRunSummary } = await import('../output/report.ts');
    const { runReport } = await import('../output/document.ts');
    const registries = [...transport.stats].map(([name, stats]) => ({ registry: name, requests: stats.requests, manifestGets: stats.manifestGets, gaveUp: transport.givenUp.get(name)?.message ?? null }));
    const report = runReport(result, backup, performance.now() - started, registries);
    record(report.summary);
    await writeDocument(result.plan, report, renderRunSummary, settings, context);
    if (events) {
      const { recordWorkloadEvents, workloadEvents } = await import('../workload-events.ts');
      await recordWorkloadEvents(kube.kc, workloadEvents(report, planned.workloads), (line) => log.line('warn', line));
    }
    // A backup out of storage or read-only fails every copy the same way: the run stopped copying.
    if (engine.halted) {
      log.line('error', `${engine.halted.message}; the other images were not tried`);
      return ExitCode.unavailable;
    }
    const s = report.summary;
    return s.images.failed || s.images.lost || s.images.error || s.workloads.failed ? ExitCode.failed : ExitCode.ok;
  } finally {
    progress.stop();
    await (context.signal.aborted ? transport.destroy() : transport.close());
    await lock?.release();
  }
}

/**
 * Manifest lookups for planning, which also say when the backup refused every one: then there is no
 * run at all (exit 5), rather than a plan of "copy everything". Backup lookups ask for the push
 * scope the copy will need, so the token is fetched once.
 */
async function backupLookups(client: RegistryClient, backupRegistry: string, log: EventLog, verifyBlobs: boolean): Promise<ManifestLookup & { throwIfAllFailed(): void }> {
  const { registryKey } = await import('../../reference.ts');
  const { holdingOf } = await import('../../oci/holding.ts');
  let resolving = false;
  let answered = 0;
  let failed = 0;
  let last: unknown;
  const counted = async <T>(repo: { registry: string }, ask: (isBackup: boolean) => Promise<T>): Promise<T> => {
    if (!resolving) log.phase('resolving', 'Resolving images');
    resolving = true;
    const isBackup = registryKey(repo.registry) === registryKey(backupRegistry);
    try {
      const answer = await ask(isBackup);
      if (isBackup) answered++;
      return answer;
    } catch (err) {
      if (isBackup && !(err instanceof AuthError)) [failed, last] = [failed + 1, err];
      throw err;
    }
  };
  return {
    digestOf: (repo, reference) => counted(repo, async (isBackup) => (await client.headManifest(repo, reference, isBackup))?.digest),
    holdingOf: (repo, digest) => counted(repo, () => holdingOf(client, repo, digest, { blobs: verifyBlobs })),
    throwIfAllFailed: () => {
      if (!failed || answered) return;
      const why = last instanceof Error ? last.message.split('\n')[0] : String(last);
      throw new UnavailableError(`the backup registry ${backupRegistry} refused every request (${failed} lookup${failed === 1 ? '' : 's'}): ${why}; nothing was copied or patched`);
    },
  };
}

/** The plan or the report on stdout, in the format asked for; `renderTable` draws the table form. */
async function writeDocument<D>(plan: Plan, document: D, renderTable: (document: D, width?: number) => string, settings: SyncSettings, context: CliContext): Promise<void> {
  const write = (text: string) => context.stdout.write(text);
  switch (settings.output) {
    case 'json':
      write(`${JSON.stringify(document, null, 2)}\n`);
      break;
    case 'yaml':
      write((await import('@kubernetes/client-node')).dumpYaml(document));
      break;
    case 'kustomize':
      write((await import('../output/plan-render.ts')).renderKustomize(plan));
      break;
    default:
      write(renderTable(document, (await import('../output/format.ts')).tableWidth(context.stdout)));
  }
}
