// Listing workloads through @kubernetes/client-node, page by page (limit + continue), across all
// namespaces or the ones named.
import { ApiException, AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { KubeError } from '../errors.ts';
import { backoffMs, isTransientNetworkError, retryableStatuses, retryAfterMs } from '../util/retry.ts';
import type { WorkloadSource } from '../core/ports.ts';
import { podSpecOf, type ContainerStatusLike, type KubeObject, type WorkloadKind } from '../core/workloads.ts';

interface ListParams {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit: number;
  _continue?: string;
}

type Page = { items: unknown[]; metadata?: { _continue?: string } };
type Lister = (params: ListParams) => Promise<Page>;

/** The API resource of each kind: for messages, and RBAC rules say the same names. */
export const resourceOf: Record<WorkloadKind, { group: string; resource: string }> = {
  Deployment: { group: 'apps', resource: 'deployments' },
  StatefulSet: { group: 'apps', resource: 'statefulsets' },
  DaemonSet: { group: 'apps', resource: 'daemonsets' },
  ReplicaSet: { group: 'apps', resource: 'replicasets' },
  CronJob: { group: 'batch', resource: 'cronjobs' },
  Job: { group: 'batch', resource: 'jobs' },
  ReplicationController: { group: '', resource: 'replicationcontrollers' },
  Pod: { group: '', resource: 'pods' },
};

/** Objects per page: typed model objects of a full page are held at once, so pages stay modest. */
const pageSize = 250;
const retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 };

/** Whether a failed API call is worth another try: throttling, a server error, a broken connection. */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiException) return retryableStatuses.has(err.code);
  return isTransientNetworkError(err);
}

/**
 * Retries a call on transient failures, with jittered backoff (or the server's Retry-After). Safe
 * for lists, and for our patches too: they carry a resourceVersion precondition, so a patch that
 * landed but whose answer was lost comes back as a conflict, never as a double write.
 */
export async function withRetry<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= retry.attempts || !isTransient(err)) throw err;
      const delay = (err instanceof ApiException ? retryAfterMs(err.headers?.['retry-after']) : undefined) ?? backoffMs(attempt, retry);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export class WorkloadLister implements WorkloadSource {
  readonly #listers: Record<WorkloadKind, Lister>;
  /** API requests made, for the benchmarks. */
  requests = 0;

  constructor(kc: KubeConfig) {
    const apps = kc.makeApiClient(AppsV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    // Each kind: one call for all namespaces, another for one namespace.
    const either = (all: (p: ListParams) => Promise<Page>, one: (p: ListParams & { namespace: string }) => Promise<Page>): Lister =>
      (p) => (p.namespace ? one({ ...p, namespace: p.namespace }) : all(p));
    this.#listers = {
      Deployment: either((p) => apps.listDeploymentForAllNamespaces(p), (p) => apps.listNamespacedDeployment(p)),
      StatefulSet: either((p) => apps.listStatefulSetForAllNamespaces(p), (p) => apps.listNamespacedStatefulSet(p)),
      DaemonSet: either((p) => apps.listDaemonSetForAllNamespaces(p), (p) => apps.listNamespacedDaemonSet(p)),
      ReplicaSet: either((p) => apps.listReplicaSetForAllNamespaces(p), (p) => apps.listNamespacedReplicaSet(p)),
      CronJob: either((p) => batch.listCronJobForAllNamespaces(p), (p) => batch.listNamespacedCronJob(p)),
      Job: either((p) => batch.listJobForAllNamespaces(p), (p) => batch.listNamespacedJob(p)),
      ReplicationController: either((p) => core.listReplicationControllerForAllNamespaces(p), (p) => core.listNamespacedReplicationController(p)),
      Pod: either((p) => core.listPodForAllNamespaces(p), (p) => core.listNamespacedPod(p)),
    };
  }

  /** Every object of `kind` in the namespaces (all when none are named), following continue tokens. */
  async list(kind: WorkloadKind, namespaces: string[], labelSelector?: string, fieldSelector?: string): Promise<KubeObject[]> {
    const scopes = namespaces.length ? namespaces : [undefined];
    const pages = await Promise.all(scopes.map(async (namespace) => {
      const items: KubeObject[] = [];
      let token: string | undefined;
      do {
        const page = await this.#page(kind, {
          limit: pageSize, ...(namespace ? { namespace } : {}), ...(labelSelector ? { labelSelector } : {}),
          ...(fieldSelector ? { fieldSelector } : {}), ...(token ? { _continue: token } : {}),
        });
        for (const item of page.items as KubeObject[]) items.push(slimObject(kind, item));
        token = page.metadata?._continue || undefined;
      } while (token);
      return items;
    }));
    return pages.flat();
  }

  async #page(kind: WorkloadKind, params: ListParams): Promise<Page> {
    this.requests++;
    try {
      return await withRetry(() => this.#listers[kind](params));
    } catch (err) {
      throw kubeError(err, `list ${resourceOf[kind].resource}${params.namespace ? ` in namespace ${params.namespace}` : ' in all namespaces'}`);
    }
  }
}

/** One actionable line from whatever the client threw: the API's own message when there is one. */
export function kubeError(err: unknown, doing: string): KubeError {
  if (err instanceof ApiException) {
    let status: { message?: string; reason?: string } = {};
    if (typeof err.body === 'string') {
      try {
        status = JSON.parse(err.body);
      } catch {
        // not a Status object: fall back to the code
      }
    }
    const hint = err.code === 401 ? ': the credentials in the kubeconfig were refused' : '';
    return new KubeError(`cannot ${doing} (HTTP ${err.code}): ${status.message ?? (err.code === 401 ? 'Unauthorized' : 'no details')}${hint}`, err.code, status.reason);
  }
  const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message.split('\n')[0] : String(err));
  return new KubeError(`cannot ${doing}: the API server is unreachable (${detail})`);
}

/**
 * Only what discovery, planning and patching read of a listed object. Lists of thousands of
 * workloads are held in memory until planned: managedFields, volumes, env and the rest would
 * otherwise make up most of it.
 */
export function slimObject(kind: WorkloadKind, object: KubeObject): KubeObject {
  const meta = object.metadata ?? {};
  const containers = (list: Array<{ name?: string; image?: string }> | undefined) => list?.map(({ name, image }) => ({ name, image }));
  const spec = podSpecOf(kind, object.spec);
  const slimSpec = spec && {
    containers: containers(spec.containers),
    ...(spec.initContainers ? { initContainers: containers(spec.initContainers) } : {}),
    ...(spec.ephemeralContainers ? { ephemeralContainers: containers(spec.ephemeralContainers) } : {}),
    ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets.map(({ name }) => ({ name })) } : {}),
  };
  const statuses = (list: ContainerStatusLike[] | undefined) => list?.map(({ name, image, imageID }) => ({ name, image, imageID }));
  const status = object.status as { containerStatuses?: ContainerStatusLike[]; initContainerStatuses?: ContainerStatusLike[] } | undefined;
  return {
    metadata: {
      name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion,
      labels: meta.labels, annotations: meta.annotations,
      ownerReferences: meta.ownerReferences?.map(({ kind: k, name, uid, controller }) => ({ kind: k, name, uid, controller })),
    },
    spec: slimSpec && (kind === 'Pod' ? slimSpec : kind === 'CronJob' ? { jobTemplate: { spec: { template: { spec: slimSpec } } } } : { template: { spec: slimSpec } }),
    ...(kind === 'Pod' && status ? { status: { containerStatuses: statuses(status.containerStatuses), initContainerStatuses: statuses(status.initContainerStatuses) } } : {}),
  };
}
