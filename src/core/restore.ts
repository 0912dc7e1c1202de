// `image-clone restore`: put back the images recorded in our annotation, for each container that
// still runs the backup image we set. A container somebody changed since is left as it is.
import { readRecorded, type ImageChange } from './patches.ts';
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
