// `image-clone sync`: discover the cluster's workloads, resolve their images, plan, and (without
// --dry-run) copy, verify and patch.
import type { Argv, CommandModule } from 'yargs';
import { AuthError, UnavailableError } from '../../errors.ts';
import type { Plan } from '../../core/plan.ts';
import type { Patcher } from '../../core/ports.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { createProgress } from '../output/progress.ts';
import { syncOptions } from '../options.ts';
import { openRegistry, registrySettings } from '../registry.ts';
import { kubeSelection, syncSettings, type SyncSettings } from '../settings.ts';

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
