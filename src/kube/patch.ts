// Patching workloads: one strategic-merge patch per workload, image fields and our annotation
// only, with the resourceVersion we planned against as a precondition (a 409 means another
// writer got there first; we never overwrite their change).
import {
  ApiException, AppsV1Api, BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig,
} from '@kubernetes/client-node';
import type { PatchOutcome, Patcher } from '../core/ports.ts';
import type { KubeObject, WorkloadKind } from '../core/workloads.ts';
import { apiProxy } from './config.ts';
import { WorkloadLister, kubeError, resourceOf, withRetry } from './list.ts';

type Patch = (name: string, namespace: string, body: object) => Promise<unknown>;

export class WorkloadPatcher implements Patcher {
  readonly #patch: Record<WorkloadKind, Patch>;
  readonly #read: (kind: WorkloadKind, name: string, namespace: string) => Promise<KubeObject | undefined>;
  readonly #proxy: string | undefined;

  constructor(kc: KubeConfig) {
    this.#proxy = apiProxy(kc);
    const apps = kc.makeApiClient(AppsV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
    const fieldManager = 'image-clone';
    this.#patch = {
      Deployment: (name, namespace, body) => apps.patchNamespacedDeployment({ name, namespace, body, fieldManager }, smp),
      StatefulSet: (name, namespace, body) => apps.patchNamespacedStatefulSet({ name, namespace, body, fieldManager }, smp),
      DaemonSet: (name, namespace, body) => apps.patchNamespacedDaemonSet({ name, namespace, body, fieldManager }, smp),
      ReplicaSet: (name, namespace, body) => apps.patchNamespacedReplicaSet({ name, namespace, body, fieldManager }, smp),
      CronJob: (name, namespace, body) => batch.patchNamespacedCronJob({ name, namespace, body, fieldManager }, smp),
      Job: (name, namespace, body) => batch.patchNamespacedJob({ name, namespace, body, fieldManager }, smp),
      ReplicationController: (name, namespace, body) => core.patchNamespacedReplicationController({ name, namespace, body, fieldManager }, smp),
      Pod: (name, namespace, body) => core.patchNamespacedPod({ name, namespace, body, fieldManager }, smp),
    };
    // Re-reading after a conflict lists by name: the run then needs no 'get' permission at all.
    const lister = new WorkloadLister(kc);
    this.#read = async (kind, name, namespace) => (await lister.list(kind, [namespace], undefined, `metadata.name=${name}`))[0];
  }

  /** Applies `body` (built by core/patches.ts) unless the object changed since `resourceVersion`. */
  async patch(kind: WorkloadKind, namespace: string, name: string, body: object): Promise<PatchOutcome> {
    try {
      return { status: 'patched', object: (await withRetry(() => this.#patch[kind](name, namespace, body))) as KubeObject };
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return { status: 'conflict' };
      if (err instanceof ApiException && err.code === 404) return { status: 'gone' };
      throw kubeError(err, `patch ${resourceOf[kind].resource} ${namespace}/${name}`, this.#proxy);
    }
  }

  /** The object as it is now, or undefined when it is gone. */
  read(kind: WorkloadKind, namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.#read(kind, name, namespace);
  }
}
