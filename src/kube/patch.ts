// Patching workloads: one strategic-merge patch per workload, image fields and our annotation
// only, with the resourceVersion we planned against as a precondition (a 409 means another
// writer got there first; we never overwrite their change).
import {
  ApiException, AppsV1Api, BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig,
} from '@kubernetes/client-node';
import type { KubeObject, WorkloadKind } from '../core/workloads.ts';
import { kubeError, resourceOf } from './list.ts';

export type PatchOutcome = { status: 'patched'; object: KubeObject } | { status: 'conflict' } | { status: 'gone' };

type Patch = (name: string, namespace: string, body: object) => Promise<unknown>;
type Read = (name: string, namespace: string) => Promise<unknown>;

export class WorkloadPatcher {
  readonly #patch: Record<WorkloadKind, Patch>;
  readonly #read: Record<WorkloadKind, Read>;

  constructor(kc: KubeConfig) {
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
    this.#read = {
      Deployment: (name, namespace) => apps.readNamespacedDeployment({ name, namespace }),
      StatefulSet: (name, namespace) => apps.readNamespacedStatefulSet({ name, namespace }),
      DaemonSet: (name, namespace) => apps.readNamespacedDaemonSet({ name, namespace }),
      ReplicaSet: (name, namespace) => apps.readNamespacedReplicaSet({ name, namespace }),
      CronJob: (name, namespace) => batch.readNamespacedCronJob({ name, namespace }),
      Job: (name, namespace) => batch.readNamespacedJob({ name, namespace }),
      ReplicationController: (name, namespace) => core.readNamespacedReplicationController({ name, namespace }),
      Pod: (name, namespace) => core.readNamespacedPod({ name, namespace }),
    };
  }

  /** Applies `body` (built by core/patches.ts) unless the object changed since `resourceVersion`. */
  async patch(kind: WorkloadKind, namespace: string, name: string, body: object): Promise<PatchOutcome> {
    try {
      return { status: 'patched', object: (await this.#patch[kind](name, namespace, body)) as KubeObject };
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return { status: 'conflict' };
      if (err instanceof ApiException && err.code === 404) return { status: 'gone' };
      throw kubeError(err, `patch ${resourceOf[kind].resource} ${namespace}/${name}`);
    }
  }

  async read(kind: WorkloadKind, namespace: string, name: string): Promise<KubeObject | undefined> {
    try {
      return (await this.#read[kind](name, namespace)) as KubeObject;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw kubeError(err, `get ${resourceOf[kind].resource} ${namespace}/${name}`);
    }
  }
}
