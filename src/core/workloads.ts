// Discovery, from the objects the API server lists: which workloads exist, which containers they
// run, which of them we may patch, and which digests their pods report. Pure: no I/O.

export const workloadKinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'ReplicationController', 'ReplicaSet', 'Job', 'Pod'] as const;
export type WorkloadKind = (typeof workloadKinds)[number];

/** The fields of a listed object that discovery reads (a subset of any workload or Pod). */
export interface KubeObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind?: string; name?: string; uid?: string; controller?: boolean }>;
  };
  spec?: unknown;
  status?: unknown;
}

interface PodSpecLike {
  imagePullSecrets?: Array<{ name?: string }>;
  containers?: Array<{ name?: string; image?: string }>;
  initContainers?: Array<{ name?: string; image?: string }>;
  ephemeralContainers?: Array<{ name?: string; image?: string }>;
}

export type ContainerType = 'container' | 'initContainer' | 'ephemeralContainer';

export interface WorkloadContainer {
  name: string;
  image: string;
  type: ContainerType;
  /** The digest every pod of the workload reports running for this container, when they all agree. */
  runningDigest?: string;
}

export interface Workload {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  containers: WorkloadContainer[];
  /** Names in the pod template's imagePullSecrets. */
  pullSecrets: string[];
  /** Argo CD, Flux, Helm…: who would revert our patch, if anyone. */
  managedBy?: string;
}

/** The annotation that records a workload's original images, for `image-clone restore`. */
export const originalImagesAnnotation = 'image-clone.io/original-images';

/** Where the pod template lives in each kind. */
export function podSpecOf(kind: WorkloadKind, spec: unknown): PodSpecLike | undefined {
  const s = spec as Record<string, any> | undefined;
  if (!s) return undefined;
  switch (kind) {
    case 'Pod':
      return s as PodSpecLike;
    case 'CronJob':
      return s.jobTemplate?.spec?.template?.spec;
    default:
      return s.template?.spec;
  }
}

/** The markers GitOps tools and package managers leave on what they own. */
export function managedBy(labels: Record<string, string>, annotations: Record<string, string>): string | undefined {
  // app.kubernetes.io/instance alone is not enough: Helm charts set it too.
  if (annotations['argocd.argoproj.io/tracking-id'] || labels['argocd.argoproj.io/instance']) return 'Argo CD';
  if (Object.keys(labels).some((k) => k.startsWith('kustomize.toolkit.fluxcd.io/') || k.startsWith('helm.toolkit.fluxcd.io/'))) return 'Flux';
  if (labels['app.kubernetes.io/managed-by'] === 'Helm' || annotations['meta.helm.sh/release-name']) return 'Helm';
  const managedByLabel = labels['app.kubernetes.io/managed-by'];
  if (managedByLabel && /argocd|flux|kustomize-controller|helm-controller/i.test(managedByLabel)) return managedByLabel;
  return undefined;
}

const controllerOf = (o: KubeObject) => o.metadata?.ownerReferences?.find((r) => r.controller);

export interface DiscoveryInput {
  /** Every listed object of each kind, owned or not (owned ReplicaSets, Jobs and Pods link pods to their workloads). */
  objects: Partial<Record<WorkloadKind, KubeObject[]>>;
}

/**
 * Turns listed objects into workloads: every Deployment, StatefulSet, DaemonSet, CronJob and
 * ReplicationController, and the ReplicaSets, Jobs and Pods that no controller owns (their owner is
 * the one to patch). Each container gets the digest its pods report, when they all agree.
 */
export function discoverWorkloads(input: DiscoveryInput): Workload[] {
  const byUid = new Map<string, { kind: WorkloadKind; object: KubeObject }>();
  for (const kind of workloadKinds) {
    for (const object of input.objects[kind] ?? []) {
      const uid = object.metadata?.uid;
      if (uid) byUid.set(uid, { kind, object });
    }
  }
  // The top-most controller of an object: Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob.
  const topOwner = (object: KubeObject): string | undefined => {
    let current = object;
    let uid: string | undefined;
    for (let depth = 0; depth < 5; depth++) {
      const ref = controllerOf(current);
      if (!ref?.uid) break;
      uid = ref.uid;
      const owner = byUid.get(ref.uid);
      if (!owner) break;
      current = owner.object;
    }
    return uid;
  };

  const podsByOwner = new Map<string, KubeObject[]>();
  for (const pod of input.objects.Pod ?? []) {
    const owner = topOwner(pod) ?? pod.metadata?.uid;
    if (!owner) continue;
    let pods = podsByOwner.get(owner);
    if (!pods) podsByOwner.set(owner, (pods = []));
    pods.push(pod);
  }

  const workloads: Workload[] = [];
  for (const kind of workloadKinds) {
    for (const object of input.objects[kind] ?? []) {
      // Owned objects are changed through their owner; patching them would be reverted.
      if (controllerOf(object) && (kind === 'ReplicaSet' || kind === 'Job' || kind === 'Pod')) continue;
      const meta = object.metadata ?? {};
      const podSpec = podSpecOf(kind, object.spec);
      if (!meta.name || !meta.namespace || !podSpec) continue;
      const labels = meta.labels ?? {};
      const annotations = meta.annotations ?? {};
      const pods = podsByOwner.get(meta.uid ?? '') ?? [];
      const containers: WorkloadContainer[] = [];
      const add = (list: PodSpecLike['containers'], type: ContainerType) => {
        for (const c of list ?? []) {
          if (!c.name || !c.image) continue;
          const digest = type === 'ephemeralContainer' ? undefined : agreedDigest(pods, c.name, c.image, type === 'initContainer');
          containers.push({ name: c.name, image: c.image, type, ...(digest ? { runningDigest: digest } : {}) });
        }
      };
      add(podSpec.containers, 'container');
      add(podSpec.initContainers, 'initContainer');
      add(podSpec.ephemeralContainers, 'ephemeralContainer');
      const manager = managedBy(labels, annotations);
      workloads.push({
        kind, namespace: meta.namespace, name: meta.name, uid: meta.uid ?? '', resourceVersion: meta.resourceVersion ?? '',
        labels, annotations, containers, pullSecrets: (podSpec.imagePullSecrets ?? []).flatMap((s) => (s.name ? [s.name] : [])),
        ...(manager ? { managedBy: manager } : {}),
      });
    }
  }
  return workloads;
}

export interface ContainerStatusLike {
  name?: string;
  image?: string;
  imageID?: string;
}

const digestInImageId = /@(sha256:[a-f0-9]{64})$/;

/**
 * The digest all pods report for a container whose spec still names `image`; undefined when no pod
 * reports one or they disagree (pods of an older rollout run another image).
 */
function agreedDigest(pods: KubeObject[], container: string, image: string, init: boolean): string | undefined {
  const digests = new Set<string>();
  for (const pod of pods) {
    const spec = pod.spec as PodSpecLike | undefined;
    const specImage = (init ? spec?.initContainers : spec?.containers)?.find((c) => c.name === container)?.image;
    if (specImage !== image) continue; // this pod runs another version of the workload
    const status = pod.status as { containerStatuses?: ContainerStatusLike[]; initContainerStatuses?: ContainerStatusLike[] } | undefined;
    const imageId = (init ? status?.initContainerStatuses : status?.containerStatuses)?.find((s) => s.name === container)?.imageID;
    const digest = imageId ? digestInImageId.exec(imageId)?.[1] : undefined;
    if (digest) digests.add(digest);
  }
  return digests.size === 1 ? [...digests][0] : undefined;
}
