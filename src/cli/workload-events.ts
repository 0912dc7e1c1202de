// What a real run tells each workload, as Kubernetes Events (src/kube/event-series.ts records them):
// patched (Normal: which images now come from the backup), skipped (Normal: why), failed (Warning:
// the cause), and one Warning ImageLost per lost image a workload runs. Unchanged workloads and
// image-clone itself get none. A cluster that refuses Events costs one warning.
import type { Workload } from '../core/workloads.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import type { RunReport } from './output/document.ts';
import { KubeError } from '../errors.ts';
import { EventRecorder, type WorkloadEvent } from '../kube/event-series.ts';
import { createLimiter } from '../util/limit.ts';

const key = (w: { kind: string; namespace: string; name: string }) => `${w.kind}/${w.namespace}/${w.name}`;

/** The events of a run's report, for the workloads whose uid the listing saw. */
export function workloadEvents(report: Pick<RunReport, 'workloads' | 'containers'>, workloads: Array<Pick<Workload, 'kind' | 'namespace' | 'name' | 'uid' | 'apiVersion'>>): WorkloadEvent[] {
  const uids = new Map(workloads.map((w) => [key(w), w.uid]));
  const apiVersions = new Map(workloads.map((w) => [key(w), w.apiVersion]));
  const events: WorkloadEvent[] = [];
  for (const w of report.workloads) {
    const uid = uids.get(key(w));
    const containers = report.containers.filter((c) => key(c) === key(w));
    // image-clone's own CronJob, Jobs and Pods (core/self-recognition.ts): nothing to tell them.
    if (!uid || (containers.length > 0 && containers.every((c) => c.code === 'self'))) continue;
    // A custom kind is named Kind.group in the report; an Event names its own kind and apiVersion.
    const custom = apiVersions.get(key(w));
    const apiVersion = custom ?? (w.kind === 'Deployment' || w.kind === 'StatefulSet' || w.kind === 'DaemonSet' || w.kind === 'ReplicaSet' ? 'apps/v1' : w.kind === 'CronJob' || w.kind === 'Job' ? 'batch/v1' : 'v1');
    const regarding = { apiVersion, kind: custom ? w.kind.split('.')[0]! : w.kind, namespace: w.namespace, name: w.name, uid };
    const lost = [...new Set(containers.filter((c) => c.code === 'image-lost').map((c) => c.image))];
    for (const image of lost) {
      const names = containers.filter((c) => c.image === image).map((c) => c.container).join(', ');
      events.push({ regarding, type: 'Warning', reason: 'ImageLost', note: `image ${image} (container ${names}) is lost: neither its registry nor the backup has it; the workload cannot start on a node that does not have it cached` });
    }
    if (w.result === 'patched') {
      const moved = containers.filter((c) => c.result === 'patched' && c.newImage).map((c) => `${c.container}: ${c.newImage}`);
      events.push({ regarding, type: 'Normal', reason: 'BackedUp', note: `image-clone backed up its images and now runs them from the backup (${moved.join('; ')})` });
    } else if (w.result === 'failed') {
      events.push({ regarding, type: 'Warning', reason: 'BackupFailed', note: w.resultReason });
    } else if (w.result === 'skipped' && !lost.length) {
      events.push({ regarding, type: 'Normal', reason: 'BackupSkipped', note: w.resultReason });
    }
  }
  return events;
}

/**
 * Records the events, a few at a time. The first refusal (RBAC) stops the recording with one warning;
 * other errors are counted into one warning. Never throws: Events are a courtesy, not the run.
 */
export async function recordWorkloadEvents(kc: KubeConfig, events: WorkloadEvent[], warn: (line: string) => void, concurrency = 4): Promise<void> {
  if (!events.length) return;
  const recorder = new EventRecorder(kc);
  const limit = createLimiter(concurrency);
  let denied: string | undefined;
  let failed = 0;
  let last = '';
  await Promise.all(events.map((e) => limit(async () => {
    if (denied) return;
    try {
      await recorder.record(e);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof KubeError && err.status === 403) denied ??= message;
      else [failed, last] = [failed + 1, message];
    }
  })));
  if (denied) warn(`${denied}; no Kubernetes Events were recorded on the workloads (grant create and patch on events.k8s.io events, as manifests/ does)`);
  if (failed) warn(`${failed} of ${events.length} Kubernetes Events could not be recorded on the workloads: ${last}`);
}
