// Patching workloads: one patch per workload, image fields and our annotation only, with the
// resourceVersion we planned against as a precondition (a 409 means another writer got there
// first; we never overwrite their change). Built-in kinds take a strategic merge patch; custom
// kinds a JSON merge patch (custom resources accept no strategic merge patch), its pod template
// moved from spec.template, where core builds it, to the kind's own place.
import {
  ApiException, AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig,
} from '@kubernetes/client-node';
import { nestAt, type CustomKind } from '../core/custom-kinds.ts';
import type { PatchOutcome, Patcher } from '../core/ports.ts';
import type { BuiltinKind, WorkloadKind } from '../core/workloads.ts';
import type { KubeObject } from '../core/kube-object.ts';
import { apiProxy } from './kubeconfig.ts';
import { WorkloadLister } from './list.ts';
import { kubeError, withRetry } from './api-failures.ts';

type Patch = (name: string, namespace: string, body: object) => Promise<unknown>;

export class WorkloadPatcher implements Patcher {
  readonly #patch: Record<BuiltinKind, Patch>;
  readonly #custom: Map<string, CustomKind>;
  readonly #customApi: CustomObjectsApi;
  readonly #lister: WorkloadLister;
  readonly #proxy: string | undefined;

  /** `custom`: the custom kinds the run found (WorkloadLister.customKinds), patched by name. */
  constructor(kc: KubeConfig, custom: CustomKind[] = []) {
    this.#proxy = apiProxy(kc);
    const apps = kc.makeApiClient(AppsV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    this.#customApi = kc.makeApiClient(CustomObjectsApi);
    this.#custom = new Map(custom.map((k) => [k.name, k]));
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
    this.#lister = new WorkloadLister(kc, custom);
  }

  /** Applies `body` (built by core/patches.ts) unless the object changed since `resourceVersion`. */
  async patch(kind: WorkloadKind, namespace: string, name: string, body: object): Promise<PatchOutcome> {
    const custom = this.#custom.get(kind);
    const send = custom ? () => this.#patchCustom(custom, namespace, name, body) : () => this.#patch[kind as BuiltinKind](name, namespace, body);
    try {
      return { status: 'patched', object: (await withRetry(send)) as KubeObject };
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return { status: 'conflict' };
      if (err instanceof ApiException && err.code === 404) return { status: 'gone' };
      const { resource, group } = this.#lister.resource(kind);
      throw kubeError(err, `patch ${resource}${custom ? `.${group}` : ''} ${namespace}/${name}`, this.#proxy);
    }
  }

  /** A JSON merge patch; core built its pod template part at spec.template. */
  #patchCustom(kind: CustomKind, namespace: string, name: string, body: object): Promise<unknown> {
    const { metadata, spec } = body as { metadata?: object; spec?: { template?: object } };
    const moved = { ...(metadata ? { metadata } : {}), ...(spec?.template ? nestAt(kind.path, spec.template) : {}) };
    return this.#customApi.patchNamespacedCustomObject({
      group: kind.group, version: kind.version, namespace, plural: kind.resource, name, body: moved, fieldManager: 'image-clone',
    }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  /** The object as it is now, or undefined when it is gone. */
  async read(kind: WorkloadKind, namespace: string, name: string): Promise<KubeObject | undefined> {
    return (await this.#lister.list(kind, [namespace], undefined, `metadata.name=${name}`))[0];
  }
}
