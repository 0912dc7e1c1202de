// A cluster of many workloads in the harness: its shape, the objects of every kind, creating them
// with @kubernetes/client-node (bounded concurrency, retries) and counting them.
import { ApiException, AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { pool, sleep } from './concurrency.ts';

export const kinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'Job', 'ReplicaSet', 'ReplicationController', 'Pod'] as const;
export type Kind = (typeof kinds)[number];

export interface ClusterShape {
  namespaces: number;
  /** Namespaces are PREFIX-01, PREFIX-02, ... */
  namespacePrefix: string;
  /** Workloads of each kind in every namespace. */
  perNamespace: Record<Kind, number>;
  /**
   * Deployments per namespace with replicas: 1 (their pods stay Pending: no scheduler, no kubelet);
   * every other Deployment, StatefulSet, ReplicaSet and ReplicationController has replicas: 0.
   */
  deploymentsWithAPod: number;
  /** Jobs run (one Pending pod each) unless suspended; CronJobs are always suspended (no Jobs appear during the run). */
  suspendJobs: boolean;
  /** Creates in flight at once. */
  concurrency: number;
}

export function workloadsPerNamespace(shape: ClusterShape): number {
  return kinds.reduce((a, k) => a + shape.perNamespace[k], 0);
}

/** Objects the API server will hold once the controllers are done (what `kubectl get ... -A` lists). */
export function expectedObjects(shape: ClusterShape): Record<Kind, number> {
  const n = shape.namespaces;
  const p = shape.perNamespace;
  return {
    Deployment: n * p.Deployment,
    StatefulSet: n * p.StatefulSet,
    DaemonSet: n * p.DaemonSet,
    CronJob: n * p.CronJob,
    Job: n * p.Job,
    // One ReplicaSet per Deployment (made by the deployment controller), plus the bare ones.
    ReplicaSet: n * (p.Deployment + p.ReplicaSet),
    ReplicationController: n * p.ReplicationController,
    Pod: n * (p.Pod + Math.min(shape.deploymentsWithAPod, p.Deployment) + (shape.suspendJobs ? 0 : p.Job)),
  };
}

export function describeShape(shape: ClusterShape): string {
  const p = shape.perNamespace;
  const parts = kinds.filter((k) => p[k]).map((k) => `${p[k]} ${k}`);
  return `${shape.namespaces} namespaces x ${workloadsPerNamespace(shape)} workloads (${parts.join(', ')})`;
}

const podTemplate = (app: string, image: string, extra: Record<string, unknown> = {}) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: 'app', image }], terminationGracePeriodSeconds: 0, ...extra },
});

/** One workload object of `kind` running `image` (names are unique per namespace and kind). */
export function workloadObject(kind: Kind, name: string, namespace: string, image: string, opts: { replicas: number; suspendJobs: boolean }): KubernetesObject {
  const metadata = { name, namespace, labels: { app: name, 'bench.image-clone.io/fleet': 'true' } };
  const selector = { matchLabels: { app: name } };
  switch (kind) {
    case 'Deployment':
      return { apiVersion: 'apps/v1', kind, metadata, spec: { replicas: opts.replicas, selector, template: podTemplate(name, image) } } as KubernetesObject;
    case 'StatefulSet':
      return { apiVersion: 'apps/v1', kind, metadata, spec: { serviceName: name, replicas: 0, selector, template: podTemplate(name, image) } } as KubernetesObject;
    case 'DaemonSet':
      return { apiVersion: 'apps/v1', kind, metadata, spec: { selector, template: podTemplate(name, image) } } as KubernetesObject;
    case 'ReplicaSet':
      return { apiVersion: 'apps/v1', kind, metadata, spec: { replicas: 0, selector, template: podTemplate(name, image) } } as KubernetesObject;
    case 'ReplicationController':
      return { apiVersion: 'v1', kind, metadata, spec: { replicas: 0, selector: { app: name }, template: podTemplate(name, image) } } as KubernetesObject;
    case 'CronJob':
      return {
        apiVersion: 'batch/v1', kind, metadata,
        spec: { schedule: '0 3 * * *', suspend: true, jobTemplate: { spec: { template: podTemplate(name, image, { restartPolicy: 'OnFailure' }) } } },
      } as KubernetesObject;
    case 'Job':
      return {
        apiVersion: 'batch/v1', kind, metadata,
        spec: { suspend: opts.suspendJobs, backoffLimit: 0, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }], restartPolicy: 'Never', terminationGracePeriodSeconds: 0 } } },
      } as KubernetesObject;
    case 'Pod':
      return { apiVersion: 'v1', kind, metadata, spec: { containers: [{ name: 'app', image }], terminationGracePeriodSeconds: 0 } } as KubernetesObject;
  }
}

export interface CreatedCluster {
  namespaces: string[];
  workloads: number;
  byKind: Record<Kind, number>;
  /** Which image each workload runs: every image is used by about workloads / images of them. */
  imagesUsed: number;
  createMs: number;
  requestsPerSecond: number;
}

export function loadKubeConfig(kubeconfig: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc;
}

/**
 * Creates the namespaces and then every workload, `shape.concurrency` requests in flight.
 * Workload number j (over all namespaces, in creation order) runs images[j % images.length], so
 * every image is used by the same number of workloads, of every kind and in many namespaces.
 */
export async function createCluster(kubeconfig: string, shape: ClusterShape, images: string[], log: (s: string) => void): Promise<CreatedCluster> {
  const api = typedClients(loadKubeConfig(kubeconfig));
  const started = performance.now();
  const namespaces = Array.from({ length: shape.namespaces }, (_, i) => `${shape.namespacePrefix}-${String(i + 1).padStart(2, '0')}`);
  await pool(namespaces, shape.concurrency, async (name) => {
    await createOrExists(api, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject);
  });
  // Interleave kinds inside a namespace so that a slow kind never queues up behind the others.
  const jobs: KubernetesObject[] = [];
  let j = 0;
  for (const ns of namespaces) {
    const left = { ...shape.perNamespace };
    let deploymentsWithAPod = shape.deploymentsWithAPod;
    const counters = Object.fromEntries(kinds.map((k) => [k, 0])) as Record<Kind, number>;
    while (kinds.some((k) => left[k] > 0)) {
      for (const kind of kinds) {
        if (left[kind] <= 0) continue;
        left[kind]--;
        const n = ++counters[kind];
        const replicas = kind === 'Deployment' && deploymentsWithAPod-- > 0 ? 1 : 0;
        const image = images[j++ % images.length]!;
        jobs.push(workloadObject(kind, `${kind.toLowerCase()}-${n}`, ns, image, { replicas, suspendJobs: shape.suspendJobs }));
      }
    }
  }
  let done = 0;
  await pool(jobs, shape.concurrency, async (obj) => {
    await createOrExists(api, obj);
    if (++done % 1000 === 0) log(`  created ${done}/${jobs.length} workloads (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  });
  const createMs = performance.now() - started;
  const byKind = Object.fromEntries(kinds.map((k) => [k, shape.namespaces * shape.perNamespace[k]])) as Record<Kind, number>;
  return {
    namespaces, workloads: jobs.length, byKind, imagesUsed: Math.min(images.length, jobs.length), createMs,
    requestsPerSecond: (jobs.length + namespaces.length) / (createMs / 1000),
  };
}

type Creator = (namespace: string, body: any) => Promise<unknown>;

interface TypedClients {
  create: Record<Kind | 'Namespace', Creator>;
  list: Record<Kind, (limit: number) => Promise<{ items: unknown[]; metadata?: { remainingItemCount?: number } }>>;
}

/** Typed clients: KubernetesObjectApi would add a discovery request to every call. */
export function typedClients(kc: KubeConfig): TypedClients {
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  return {
    create: {
      Namespace: (_ns, body) => core.createNamespace({ body }),
      Deployment: (namespace, body) => apps.createNamespacedDeployment({ namespace, body }),
      StatefulSet: (namespace, body) => apps.createNamespacedStatefulSet({ namespace, body }),
      DaemonSet: (namespace, body) => apps.createNamespacedDaemonSet({ namespace, body }),
      ReplicaSet: (namespace, body) => apps.createNamespacedReplicaSet({ namespace, body }),
      CronJob: (namespace, body) => batch.createNamespacedCronJob({ namespace, body }),
      Job: (namespace, body) => batch.createNamespacedJob({ namespace, body }),
      ReplicationController: (namespace, body) => core.createNamespacedReplicationController({ namespace, body }),
      Pod: (namespace, body) => core.createNamespacedPod({ namespace, body }),
    },
    list: {
      Deployment: (limit) => apps.listDeploymentForAllNamespaces({ limit }),
      StatefulSet: (limit) => apps.listStatefulSetForAllNamespaces({ limit }),
      DaemonSet: (limit) => apps.listDaemonSetForAllNamespaces({ limit }),
      ReplicaSet: (limit) => apps.listReplicaSetForAllNamespaces({ limit }),
      CronJob: (limit) => batch.listCronJobForAllNamespaces({ limit }),
      Job: (limit) => batch.listJobForAllNamespaces({ limit }),
      ReplicationController: (limit) => core.listReplicationControllerForAllNamespaces({ limit }),
      Pod: (limit) => core.listPodForAllNamespaces({ limit }),
    },
  };
}

async function createOrExists(api: TypedClients, obj: KubernetesObject): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await api.create[obj.kind as Kind | 'Namespace'](obj.metadata?.namespace ?? '', obj);
      return;
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return; // already there (a rerun against a kept harness)
      // 429 / 5xx / a reset connection under load: back off and try again a few times.
      const retriable = !(err instanceof ApiException) || err.code === 429 || err.code >= 500;
      if (!retriable || attempt >= 5) throw new Error(`create ${obj.kind} ${obj.metadata?.namespace}/${obj.metadata?.name}: ${err instanceof ApiException ? `HTTP ${err.code} ${String(err.body).slice(0, 200)}` : (err as Error).message}`);
      await sleep(200 * 2 ** attempt);
    }
  }
}

/**
 * How many objects of each kind exist in all namespaces, cheaply: one `limit=1` list per kind
 * (the API server reports remainingItemCount).
 */
export async function countObjects(api: TypedClients): Promise<Record<Kind, number>> {
  const counts = {} as Record<Kind, number>;
  await Promise.all(kinds.map(async (kind) => {
    const list = await api.list[kind](1);
    counts[kind] = list.items.length + Number(list.metadata?.remainingItemCount ?? 0);
  }));
  return counts;
}
