// `image-clone restore`: undo sync. Puts back the images recorded in each workload's annotation
// (where the container still runs the backup image sync set) and removes the annotation.
// Like kubectl's commands: complete (options from flags, env and defaults, checked), then run.
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.ts';
import { resolveOption } from '../config-layers.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { restoreOptions } from '../options.ts';
import { clusterScopeHint, kubeSelection, selectionSettings, type Selection } from '../settings.ts';

interface RestoreRun {
  selection: Selection;
  dryRun: boolean;
  output: 'table' | 'json';
  lock: boolean;
}

export function restoreCommand(context: CliContext): CommandModule {
  return {
    command: 'restore',
    describe: 'Put back the original images that sync recorded, and remove its annotation',
    builder: (yargs: Argv) => yargs.options(restoreOptions)
      .example('$0 restore --dry-run', 'show what would be restored')
      .example('$0 restore -n shop', 'restore the shop namespace')
      .epilogue('Exit codes: 0 done or nothing to do, 1 some workloads failed (each named), 2 usage, configuration or RBAC error, 4 a sync or restore holds the run lock, 5 the API server unreachable or failing, 130 interrupted.\n\nManual: docs/sync.md#image-clone-restore.'),
    handler: async (argv) => {
      context.exitCode = await runRestore(completeRestore(argv as Record<string, unknown>, context), context);
    },
  };
}

function completeRestore(argv: Record<string, unknown>, context: CliContext): RestoreRun {
  const source = { flags: argv, env: context.env };
  const output = resolveOption(source, 'output', 'string', 'table');
  if (output !== 'table' && output !== 'json') throw new UsageError(`--output must be table or json, not ${JSON.stringify(output)}`);
  return {
    selection: selectionSettings(source),
    dryRun: resolveOption(source, 'dry-run', 'boolean', false),
    output,
    lock: resolveOption(source, 'lock', 'boolean', true),
  };
}

async function runRestore(options: RestoreRun, context: CliContext): Promise<number> {
  const { dryRun } = options;
  const { kube, discovery, ownNamespace } = await kubeSelection(options.selection, context.env);
  const { WorkloadLister } = await import('../../kube/list.ts');
  const { WorkloadPatcher } = await import('../../kube/patch.ts');
  const { discover } = await import('../../core/pipeline.ts');
  const { executeRestore, planRestore } = await import('../../core/restore-plan.ts');
  const { unlessInterrupted } = await import('../interrupt.ts');

  // Restore writes the same workloads as sync: it takes the same lock, so the two never interleave.
  const lock = !dryRun && options.lock ? await (await import('../../kube/lock.ts')).acquireLock(kube.kc, { namespace: ownNamespace }) : undefined;
  if (!dryRun && options.lock && !lock) context.stderr.write(`warning: namespace ${ownNamespace} does not exist, so this run holds no lock; pass --own-namespace if image-clone lives elsewhere\n`);
  try {
    const lister = new WorkloadLister(kube.kc);
    const warn = (line: string) => context.stderr.write(`warning: ${line}\n`);
    const listed = await unlessInterrupted(discover(lister, discovery, warn), context.signal)
      .catch((err: unknown) => { throw clusterScopeHint(err, { kube, discovery }); });
    const steps = planRestore(listed);
    const outcomes = await executeRestore(steps, new WorkloadPatcher(kube.kc, lister.custom), { dryRun, signal: context.signal });
    const { restoreDocument, renderRestoreTable } = await import('../output/restore-report.ts');
    const document = restoreDocument(outcomes, dryRun);
    if (options.output === 'json') context.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    else context.stdout.write(renderRestoreTable(document, (await import('../output/format.ts')).tableWidth(context.stdout)));
    return outcomes.some((o) => o.result === 'failed') ? ExitCode.failed : ExitCode.ok;
  } finally {
    await lock?.release();
  }
}
