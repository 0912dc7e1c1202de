// `image-clone restore`: undo sync. Puts back the images recorded in each workload's annotation
// (where the container still runs the backup image sync set) and removes the annotation.
// In kubectl's shape: complete (options from flags, env and defaults), validate, run.
import { discover } from '../../core/pipeline.ts';
import { executeRestore, planRestore } from '../../core/restore-plan.ts';
import { WorkloadLister } from '../../kube/list.ts';
import { WorkloadPatcher } from '../../kube/patch.ts';
import { resolveOption } from '../config-layers.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { unlessInterrupted } from '../interrupt.ts';
import { tableWidth } from '../output/format.ts';
import { renderRestoreTable, restoreDocument } from '../output/restore-report.ts';
import { withRunLock } from '../run-lock.ts';
import { clusterScopeHint, kubeSelection } from '../kube-selection.ts';
import { oneOf, selectionSettings, type Selection } from '../settings.ts';

interface RestoreOptions {
  selection: Selection;
  dryRun: boolean;
  output: string;
  lock: boolean;
}

export async function restore(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const options = completeRestore(argv, context);
  oneOf('output', options.output, ['table', 'json']);
  return runRestore(options, context);
}

function completeRestore(argv: Record<string, unknown>, context: CliContext): RestoreOptions {
  const source = { flags: argv, env: context.env };
  return {
    selection: selectionSettings(source),
    dryRun: resolveOption(source, 'dry-run', 'boolean', false),
    output: resolveOption(source, 'output', 'string', 'table'),
    lock: resolveOption(source, 'lock', 'boolean', true),
  };
}

async function runRestore(options: RestoreOptions, context: CliContext): Promise<number> {
  const { dryRun } = options;
  const { kube, discovery, ownNamespace } = await kubeSelection(options.selection, context.env);
  const warn = (line: string) => context.stderr.write(`warning: ${line}\n`);
  // Restore writes the same workloads as sync: it takes the same lock, so the two never interleave.
  return withRunLock(kube.kc, { enabled: !dryRun && options.lock, namespace: ownNamespace, warn }, async () => {
    const lister = new WorkloadLister(kube.kc);
    const listed = await unlessInterrupted(discover(lister, discovery, warn), context.signal)
      .catch((err: unknown) => { throw clusterScopeHint(err, { kube, discovery }); });
    const outcomes = await executeRestore(planRestore(listed), new WorkloadPatcher(kube.kc, lister.custom), { dryRun, signal: context.signal });
    const document = restoreDocument(outcomes, dryRun);
    if (options.output === 'json') context.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    else context.stdout.write(renderRestoreTable(document, tableWidth(context.stdout)));
    return outcomes.some((o) => o.result === 'failed') ? ExitCode.failed : ExitCode.ok;
  });
}
