// `image-clone restore`: undo sync. Puts back the images recorded in each workload's annotation
// (where the container still runs the backup image sync set) and removes the annotation.
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../errors.ts';
import { resolveOption } from '../config.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { selectionOptions } from '../options.ts';
import { kubeSelection, selectionSettings } from '../settings.ts';

export const restoreOptions = {
  ...selectionOptions,
  'dry-run': { type: 'boolean', describe: 'Print what would be restored and change nothing (takes no lock)' },
  lock: { type: 'boolean', describe: 'Hold the run lock (the Lease sync holds) so that restore and sync never run at once (--no-lock to skip) [default: true]' },
  output: { alias: 'o', choices: ['table', 'json'] as const, describe: 'What stdout carries [default: table]' },
} as const;

interface RestoreRow {
  kind: string;
  namespace: string;
  name: string;
  container: string;
  image: string | null;
  action: 'restore' | 'keep';
  result: 'restored' | 'would restore' | 'kept' | 'failed';
  reason: string;
}

export function restoreCommand(context: CliContext): CommandModule {
  return {
    command: 'restore',
    describe: 'Put back the original images that sync recorded, and remove its annotation',
    builder: (yargs: Argv) => yargs.options(restoreOptions)
      .example('$0 restore --dry-run', 'show what would be restored')
      .example('$0 restore -n shop', 'restore the shop namespace')
      .epilogue('Exit codes: 0 done or nothing to do, 1 some workloads failed (each named), 2 usage, configuration or RBAC error, 4 a sync or restore holds the run lock, 5 the API server unreachable or failing, 130 interrupted.'),
    handler: async (argv) => {
      context.exitCode = await runRestore(argv as Record<string, unknown>, context);
    },
  };
}

async function runRestore(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const source = { flags: argv, env: context.env };
  const selection = selectionSettings(source);
  const dryRun = resolveOption(source, 'dry-run', 'boolean', false);
  const output = resolveOption(source, 'output', 'string', 'table');
  if (output !== 'table' && output !== 'json') throw new UsageError(`--output must be table or json, not ${JSON.stringify(output)}`);
  const lockWanted = resolveOption(source, 'lock', 'boolean', true);
  const { kube, discovery, ownNamespace } = await kubeSelection(selection, context.env);
  const { WorkloadLister } = await import('../../kube/list.ts');
  const { WorkloadPatcher } = await import('../../kube/patch.ts');
  const { discover } = await import('../../core/sync.ts');
  const { executeRestore, planRestore } = await import('../../core/restore.ts');

  const { unlessInterrupted } = await import('../interrupt.ts');

  // Restore writes the same workloads as sync: it takes the same lock, so the two never interleave.
  const lock = !dryRun && lockWanted ? await (await import('../../kube/lock.ts')).acquireLock(kube.kc, { namespace: ownNamespace }) : undefined;
  if (!dryRun && lockWanted && !lock) context.stderr.write(`warning: namespace ${ownNamespace} does not exist, so this run holds no lock; pass --own-namespace if image-clone lives elsewhere\n`);
  try {
    return await restoreSteps();
  } finally {
    await lock?.release();
  }

  async function restoreSteps(): Promise<number> {
    const steps = planRestore(await unlessInterrupted(discover(new WorkloadLister(kube.kc), discovery), context.signal));
    const outcomes = await executeRestore(steps, new WorkloadPatcher(kube.kc), { dryRun, signal: context.signal });
    const rows: RestoreRow[] = [];
    const failed = outcomes.filter((o) => o.result === 'failed').length;
    for (const { step: s, result, reason } of outcomes) {
      const base = { kind: s.workload.kind, namespace: s.workload.namespace, name: s.workload.name };
      for (const change of s.changes) rows.push({ ...base, container: change.container, image: change.image, action: 'restore', result, reason });
      for (const kept of s.kept) rows.push({ ...base, container: kept.container, image: null, action: 'keep', result: 'kept', reason: kept.reason });
    }

    // One vocabulary with sync's documents: workloads and containers, each counted as what it is.
    const outcome = (r: RestoreRow) => (r.result === 'would restore' ? 'restored' : r.result);
    const byWorkload = new Map<string, RestoreRow[]>();
    for (const r of rows) byWorkload.set(`${r.kind}/${r.namespace}/${r.name}`, [...(byWorkload.get(`${r.kind}/${r.namespace}/${r.name}`) ?? []), r]);
    const workloads = [...byWorkload.values()].map((own) => ({
      kind: own[0]!.kind, namespace: own[0]!.namespace, name: own[0]!.name, containers: own.length,
      result: own.some((r) => r.result === 'failed') ? 'failed' as const : own.find((r) => outcome(r) === 'restored')?.result ?? 'kept' as const,
    }));
    const counts = (results: Array<'restored' | 'kept' | 'failed'>) => ({ total: results.length, restored: results.filter((r) => r === 'restored').length, kept: results.filter((r) => r === 'kept').length, failed: results.filter((r) => r === 'failed').length });
    const summary = {
      workloads: counts(workloads.map((w) => (w.result === 'would restore' ? 'restored' : w.result))),
      containers: counts(rows.map(outcome)),
    };
    if (output === 'json') {
      context.stdout.write(`${JSON.stringify({ schemaVersion: 2, kind: 'restore', dryRun, workloads, containers: rows, summary }, null, 2)}\n`);
    } else {
      const { renderTable } = await import('../output/table.ts');
      const { outcome } = await import('../output/colour.ts');
      const width = (await import('../output/format.ts')).tableWidth(context.stdout);
      const table = renderTable(['WORKLOAD', 'CONTAINER', 'RESULT', 'REASON', 'IMAGE'],
        rows.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r.container, r.result, r.reason, r.image ?? '-']),
        [{ weight: 3, wrap: 'hard' }, { weight: 1, wrap: 'hard' }, { weight: 0, fixed: 13, wrap: 'hard', colour: outcome }, { weight: 3, wrap: 'words' }, { weight: 4, wrap: 'hard' }], width);
      const line = (what: string, c: typeof summary.containers) => `${what}: ${c.total}: ${c.restored} ${dryRun ? 'would be ' : ''}restored, ${c.kept} kept, ${c.failed} failed.`;
      context.stdout.write(`${rows.length ? table : 'No workloads carry image-clone\'s annotation.'}\n\n${line('Workloads', summary.workloads)}\n${line('Containers', summary.containers)}\n`);
    }
    return failed ? ExitCode.failed : ExitCode.ok;
  }
}
