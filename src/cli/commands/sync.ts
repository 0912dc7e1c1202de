// `image-clone sync`: discover the cluster's workloads, resolve their images, plan, and (without
// --dry-run) copy, verify and patch. In kubectl's shape: complete (settings from flags > env > file
// > defaults, and the cluster they name), validate (what the settings say together), run.
import { executePlan } from '../../core/execute.ts';
import { planSync, type PlanResult } from '../../core/pipeline.ts';
import type { ManifestLookup, Patcher } from '../../core/ports.ts';
import { AuthError, UnavailableError } from '../../errors.ts';
import { WorkloadLister } from '../../kube/list.ts';
import { WorkloadPatcher } from '../../kube/patch.ts';
import { PullSecretCopier } from '../../kube/secrets.ts';
import { CopyEngine } from '../../oci/copy-engine.ts';
import { holdingOf } from '../../oci/holding.ts';
import type { RegistryClient } from '../../oci/registry.ts';
import { registryKey } from '../../reference.ts';
import { resolveOption } from '../config-layers.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { identifySelf } from '../identify-self.ts';
import { unlessInterrupted } from '../interrupt.ts';
import { metricsSettings, withRunMetrics, type MetricsSettings } from '../metrics.ts';
import { planDocument, runReport, type RunReport } from '../output/document.ts';
import { createEventLog, type EventLog } from '../output/event-log.ts';
import { renderPlanTable } from '../output/plan-render.ts';
import { createProgress, type Progress } from '../output/progress.ts';
import { renderRunSummary } from '../output/report.ts';
import { writeDocument } from '../output/write-document.ts';
import { openRegistry, registrySettings, type OpenRegistry, type RegistrySettings } from '../registry-wiring.ts';
import { prepareRepositories } from '../repositories.ts';
import { withRunLock } from '../run-lock.ts';
import { clusterScopeHint, kubeSelection } from '../kube-selection.ts';
import { syncSettings, validateSyncSettings, type SyncSettings } from '../settings.ts';
import { recordWorkloadEvents, workloadEvents } from '../workload-events.ts';

interface SyncOptions {
  settings: SyncSettings;
  registry: RegistrySettings;
  cluster: Awaited<ReturnType<typeof kubeSelection>>;
  metrics: MetricsSettings;
  events: boolean;
}

/** What one run has open: the registries, the cluster's lister, the log, and what stops it early. */
interface SyncRun extends SyncOptions {
  context: CliContext;
  registries: OpenRegistry;
  lister: WorkloadLister;
  progress: Progress;
  log: EventLog;
  /** Aborted when the run lock is lost mid-run. */
  lockLost: AbortController;
  started: number;
}

export async function sync(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const options = await completeSync(argv, context);
  validateSyncSettings(options.settings);
  // The kubeconfig is read once the settings are known to be sound.
  const cluster = await kubeSelection(options.settings.selection, context.env);
  return withRunMetrics(options.metrics, options.settings.dryRun, options.settings.logFormat, context, (record) => runSync({ ...options, cluster }, context, record));
}

async function completeSync(argv: Record<string, unknown>, context: CliContext): Promise<Omit<SyncOptions, 'cluster'>> {
  const { settings, source } = await syncSettings(argv, context.env);
  const registry = registrySettings(source);
  const metrics = metricsSettings(source);
  if (settings.pullSecret) settings.plan.pullSecret = settings.pullSecret;
  return { settings, registry, metrics, events: resolveOption(source, 'events', 'boolean', true) };
}

async function runSync(options: SyncOptions, context: CliContext, record: (summary: RunReport['summary']) => void): Promise<number> {
  const { settings, cluster } = options;
  // Credentials load first: a malformed file stops the run before any spinner starts.
  const registries = await openRegistry(options.registry, context, (line) => log.line('warn', line));
  const progress = createProgress({ stream: context.stderr, interactive: context.interactive && settings.logFormat === 'text', text: 'Listing workloads' });
  const log = createEventLog(progress, settings.logFormat, context.stderr);
  const lister = new WorkloadLister(cluster.kube.kc);
  const run: SyncRun = { ...options, context, registries, lister, progress, log, lockLost: new AbortController(), started: performance.now() };
  try {
    // A dry run writes nothing, so it needs no lock; a real run takes it before it plans.
    return await withRunLock(cluster.kube.kc, {
      enabled: !settings.dryRun && settings.lock,
      namespace: cluster.ownNamespace,
      warn: (line) => log.line('warn', line),
      onLost: (why) => run.lockLost.abort(new Error(why)),
    }, async () => {
      const planned = await planRun(run);
      return settings.dryRun ? printPlan(run, planned) : await carryOut(run, planned, record);
    });
  } finally {
    progress.stop();
    await (context.signal.aborted ? registries.transport.destroy() : registries.transport.close());
  }
}

/** List the workloads, resolve their images against the source and the backup, and plan. */
async function planRun(run: SyncRun): Promise<PlanResult> {
  const { settings, cluster: { kube, discovery }, registries, log, context } = run;
  log.phase('listing', 'Listing workloads');
  const self = await identifySelf(kube, context.env, (line) => log.line('warn', line));
  if (self) settings.plan.self = self;
  const lookups = backupLookups(registries.client, settings.plan.backup.registry, log, settings.verify);
  // Listing and resolving only read: an interrupt abandons them at once.
  const planned = await unlessInterrupted(planSync({ workloads: run.lister, manifests: lookups, warn: (line) => log.line('warn', line) }, discovery, settings.plan, run.registry.concurrency), context.signal)
    .catch((err: unknown) => { throw clusterScopeHint(err, { kube, discovery }); });
  lookups.throwIfAllFailed();
  // ECR refuses a push to a missing repository: create them now, before anything moves (dry run: name them).
  const targets = planned.requests.filter((r) => planned.resolutions.get(r.key)?.state === 'copy').map((r) => r.backup);
  await prepareRepositories(targets, run.registry.repositories, registries.keychain, { dryRun: settings.dryRun, concurrency: run.registry.concurrency, log: (line) => log.line('info', line) });
  return planned;
}

function backupName(settings: SyncSettings): string {
  const { registry, prefix } = settings.plan.backup;
  return prefix ? `${registry}/${prefix}` : registry;
}

/** --dry-run: the plan on stdout; the exit code says whether anything is lost or pending. */
function printPlan(run: SyncRun, planned: PlanResult): number {
  const { settings, context } = run;
  run.progress.stop();
  writeDocument(planned.plan, planDocument(planned.plan, backupName(settings), true), renderPlanTable, settings.output, context);
  const s = planned.plan.summary;
  if (s.images.lost || s.images.error || s.workloads.error) return ExitCode.failed;
  if (settings.exitCode && (s.images.copy || s.workloads.patch)) return ExitCode.changesPending;
  return ExitCode.ok;
}

/** Copy, verify and patch as planned; then the report, the Events, and the exit code. */
async function carryOut(run: SyncRun, planned: PlanResult, record: (summary: RunReport['summary']) => void): Promise<number> {
  const { settings, context, log, registries: { client, transport }, cluster: { kube, ownNamespace } } = run;
  const pullSecrets = settings.pullSecret ? new PullSecretCopier(kube.kc, settings.pullSecret, ownNamespace) : undefined;
  await pullSecrets?.source(); // a missing Secret stops the run before anything is copied
  // A read-only backup (in maintenance) refuses every push: the run changes nothing, not even the
  // workloads whose copies are there already, and says why (exit 5).
  const readOnly = new AbortController();
  const signal = AbortSignal.any([context.signal, run.lockLost.signal, readOnly.signal]);
  const engine = new CopyEngine(client, {
    concurrency: run.registry.concurrency,
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
  const manifests: ManifestLookup = { digestOf: async (repo, reference) => (await client.headManifest(repo, reference, true))?.digest };
  // On an interrupt the copies abort (untagged), patches already sent finish, and no other is sent.
  const result = await executePlan(planned.workloads, planned.requests, planned.resolutions, settings.plan,
    { copier: engine, patcher: announcingPatcher(new WorkloadPatcher(kube.kc, run.lister.custom), log), manifests, ...(pullSecrets ? { pullSecrets } : {}) },
    { concurrency: run.registry.concurrency, onEvent: (e) => context.signal.aborted && e.kind === 'image-failed' ? undefined : log.event(e), signal });
  context.signal.throwIfAborted();
  if (run.lockLost.signal.aborted) throw new UnavailableError(`${(run.lockLost.signal.reason as Error).message}; the run stopped (patches already sent finished, no other was sent)`);
  run.progress.stop();
  const registries = [...transport.stats].map(([name, stats]) => ({ registry: name, requests: stats.requests, manifestGets: stats.manifestGets, gaveUp: transport.givenUp.get(name)?.message ?? null }));
  const report = runReport(result, backupName(settings), performance.now() - run.started, registries);
  record(report.summary);
  writeDocument(result.plan, report, renderRunSummary, settings.output, context);
  if (run.events) await recordWorkloadEvents(kube.kc, workloadEvents(report, planned.workloads), (line) => log.line('warn', line));
  // A backup out of storage or read-only fails every copy the same way: the run stopped copying.
  if (engine.halted) {
    log.line('error', `${engine.halted.message}; the other images were not tried`);
    return ExitCode.unavailable;
  }
  const s = report.summary;
  return s.images.failed || s.images.lost || s.images.error || s.workloads.failed ? ExitCode.failed : ExitCode.ok;
}

/** The patcher, saying "Patching workloads" when the first patch goes out. */
function announcingPatcher(patcher: WorkloadPatcher, log: EventLog): Patcher {
  let patching = false;
  return {
    patch: (...args) => {
      if (!patching) log.phase('patching', 'Patching workloads');
      patching = true;
      return patcher.patch(...args);
    },
    read: (...args) => patcher.read(...args),
  };
}

/**
 * Manifest lookups for planning, which also say when the backup refused every one: then there is no
 * run at all (exit 5), rather than a plan of "copy everything". Backup lookups ask for the push
 * scope the copy will need, so the token is fetched once.
 */
function backupLookups(client: RegistryClient, backupRegistry: string, log: EventLog, verifyBlobs: boolean): ManifestLookup & { throwIfAllFailed(): void } {
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
