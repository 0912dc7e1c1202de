// `image-clone restore`: put back the images recorded in our annotation, for each container that
// still runs the backup image we set. A container somebody changed since is left as it is.
import { oneLine } from '../util/text.ts';
import { maxConflictRetries, reread } from './execute.ts';
import { readRecorded, restorePatch, type ImageChange } from './patches.ts';
import type { Patcher } from './ports.ts';
import type { Workload } from './workloads.ts';

export interface RestoreStep {
  workload: Workload;
  changes: ImageChange[];
  /** Containers left alone, with why. */
  kept: Array<{ container: string; reason: string }>;
}


export function planRestore(workloads: Workload[]): RestoreStep[] {
  const steps: RestoreStep[] = [];
  for (const workload of workloads) {
    const recorded = readRecorded(workload.annotations);
    if (!recorded) continue;
    const changes: ImageChange[] = [];
    const kept: RestoreStep['kept'] = [];
    for (const [field, type] of [['containers', 'container'], ['initContainers', 'initContainer']] as const) {
      for (const [name, entry] of Object.entries(recorded[field] ?? {})) {
        const current = workload.containers.find((c) => c.name === name && c.type === type);
        if (!current) kept.push({ container: name, reason: 'no longer in the workload' });
        else if (current.image === entry.original) kept.push({ container: name, reason: 'already runs its original image' });
        else if (current.image !== entry.backup) kept.push({ container: name, reason: `changed since image-clone patched it (now ${current.image}); left as it is` });
        else changes.push({ container: name, type, image: entry.original });
      }
    }
    steps.push({ workload, changes, kept });
  }
  return steps;
}

const deletedDuringRun = 'deleted during the restore: nothing left to put back';

export interface RestoreOutcome {
  /** The step as carried out (re-planned after a conflict). */
  step: RestoreStep;
  /** `gone`: the workload was deleted during the run; there is nothing left to put back. */
  result: 'restored' | 'would restore' | 'kept' | 'gone' | 'failed';
  reason: string;
}

/**
 * Carries the steps out, one patch per workload. A workload another writer changed since it was
 * listed is read again and re-planned (their change is never overwritten), as sync does.
 */
export async function executeRestore(steps: RestoreStep[], patcher: Patcher, options: { dryRun: boolean; signal?: AbortSignal }): Promise<RestoreOutcome[]> {
  const outcomes: RestoreOutcome[] = [];
  for (const first of steps) {
    // Interrupted: patches already sent have finished (each is atomic); no other is sent.
    options.signal?.throwIfAborted();
    if (options.dryRun) {
      outcomes.push({ step: first, result: 'would restore', reason: 'the recorded original image' });
      continue;
    }
    let step = first;
    let outcome: RestoreOutcome | undefined;
    for (let attempt = 1; !outcome; attempt++) {
      try {
        const patched = await patcher.patch(step.workload.kind, step.workload.namespace, step.workload.name, restorePatch(step.workload, step.changes));
        if (patched.status === 'patched') outcome = { step, result: 'restored', reason: 'back to the recorded original image' };
        else if (patched.status === 'gone') outcome = { step, result: 'gone', reason: deletedDuringRun };
      } catch (err) {
        outcome = { step, result: 'failed', reason: oneLine(err) };
        break;
      }
      if (outcome) break;
      // Changed since it was listed: read it again and decide anew.
      const fresh = attempt < maxConflictRetries ? await reread(patcher, step.workload) : undefined;
      if (fresh === 'gone') {
        outcome = { step, result: 'gone', reason: deletedDuringRun };
        break;
      }
      const replanned = fresh ? planRestore([fresh])[0] : undefined;
      if (!replanned) outcome = { step: first, result: 'kept', reason: 'changed during the restore; run it again' };
      else step = replanned;
    }
    outcomes.push(outcome);
  }
  return outcomes;
}
