// Discovery, from the objects the API server lists: which workloads exist, which containers they
// run, which of them we may patch, and which digests their pods report. Pure: no I/O.
import type { ContainerType, KubeObject, OwnerReference, WorkloadContainer } from './kube-object.ts';
import { agreedDigest, runningImages, type PodOfWorkload, type RunningContainer } from './pod-images.ts';

export const workloadKinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'ReplicationController', 'ReplicaSet', 'Job', 'Pod'] as const;
export type BuiltinKind = (typeof workloadKinds)[number];
/**
 * A built-in kind, a custom kind as `Kind.group` (custom-kinds.ts), or the kind of an owner that
 * image-clone does not patch (`Kind.group`, or `Kind` for the core group).
 */
export type WorkloadKind = BuiltinKind | (string & {});

/** The API group of each built-in kind. */
export const builtinGroup: Record<BuiltinKind, string> = {
  Deployment: 'apps', StatefulSet: 'apps', DaemonSet: 'apps', ReplicaSet: 'apps', CronJob: 'batch', Job: 'batch', ReplicationController: '', Pod: '',
};

const isBuiltin = (kind: string): kind is BuiltinKind => (workloadKinds as readonly string[]).includes(kind);

interface PodSpecLike {
  imagePullSecrets?: Array<{ name?: string }>;
  containers?: Array<{ name?: string; image?: string }>;
  initContainers?: Array<{ name?: string; image?: string }>;
  ephemeralContainers?: Array<{ name?: string; image?: string }>;
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
  /**
   * Images its pods run that `containers` does not cover (an older revision, a change made on a
   * pod, kubectl debug, another digest of a tag): backed up, never patched (pod-images.ts).
   */
  running?: RunningContainer[];
  /** Names in the pod template's imagePullSecrets. */
  pullSecrets: string[];
  /** Argo CD, Flux, Helm…: who would revert our patch, if anyone. */
  managedBy?: string;
  /**
   * A custom kind's pod spec lists, whole (containers, initContainers, imagePullSecrets): a JSON
   * merge patch replaces a list, so it must send each back entire.
   */
  template?: FullPodSpec;
  /** Why image-clone does not patch this workload (its images are still backed up), when it does not. */
  notPatched?: string;
  /** For an owner found through what it owns: the uids of those objects (a label selector may match them). */
  members?: string[];
  /** group/version of a custom kind, as the API server serves it (an Event about it names it). */
  apiVersion?: string;
}

/** The container lists of a custom kind's pod spec, every field kept. */
export interface FullPodSpec {
  containers?: Array<Record<string, unknown>>;
  initContainers?: Array<Record<string, unknown>>;
  imagePullSecrets?: Array<{ name?: string }>;
}

/** A custom kind's name in plans and reports: `Rollout.argoproj.io`, as kubectl spells a resource of a group. */
export const qualifiedKind = (group: string, kind: string) => (group ? `${kind}.${group}` : kind);

/** A container with no name (Knative allows one): named by its place, as the plan and the patch both call it. */
export const unnamedContainer = (field: 'containers' | 'initContainers', index: number) => `${field}[${index}]`;

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
  /**
   * Every listed object of each kind, owned or not (owned ReplicaSets, Jobs and Pods link pods to
   * their workloads). Custom kinds are keyed `Kind.group`, their pod template at spec.template.
   */
  objects: Partial<Record<WorkloadKind, KubeObject[]>>;
  /** The custom kinds that were listed: an owner of such a kind that is not in `objects` was not selected. */
  customKinds?: Array<{ group: string; kind: string }>;
  /** Kinds that could not be listed (`group/Kind` -> why): what they own is reported with why. */
  unlisted?: Record<string, string>;
  /** How the hint for an unpatched custom owner names the setting that would patch it; no hint without it. */
  workloadKindSetting?: string;
}

const groupOf = (apiVersion: string | undefined) => (apiVersion?.includes('/') ? apiVersion.split('/')[0]! : '');

/** The containers of a pod spec, unnamed ones named by their place. */
function containersOf(podSpec: PodSpecLike): Array<{ name: string; image: string; type: ContainerType }> {
  const out: Array<{ name: string; image: string; type: ContainerType }> = [];
  const add = (list: PodSpecLike['containers'], type: ContainerType, field: 'containers' | 'initContainers' | undefined) => {
    (list ?? []).forEach((c, index) => {
      const name = c.name || (field ? unnamedContainer(field, index) : undefined);
      if (name && c.image) out.push({ name, image: c.image, type });
    });
  };
  add(podSpec.containers, 'container', 'containers');
  add(podSpec.initContainers, 'initContainer', 'initContainers');
  add(podSpec.ephemeralContainers, 'ephemeralContainer', undefined);
  return out;
}

/** What was found under an owner that is not patched itself: the containers its objects and pods run. */
interface Gathered {
  namespace: string;
  /** The controller reference that names the owner, when the owner itself was not listed. */
  ref?: OwnerReference;
  containers: Map<string, { name: string; image: string; type: ContainerType }>;
  members: string[];
}

/**
 * Turns listed objects into workloads. A workload is an object no controller owns: every
 * Deployment, StatefulSet, DaemonSet, CronJob, ReplicationController and custom kind, and the
 * ReplicaSets, Jobs and Pods that no controller owns (an owned object is changed through its owner;
 * a patch to it would be reverted). Each container gets the digest its pods report, when they all
 * agree. Nothing that runs is left out: an owner image-clone does not list (an operator's custom
 * resource, a Node for static pods) or cannot patch (a custom resource without a pod template where
 * its kind keeps one) becomes a workload of its own that is reported, never patched, with the
 * containers found under it.
 */
export function discoverWorkloads(input: DiscoveryInput): Workload[] {
  const kinds = [...workloadKinds.filter((k) => input.objects[k]), ...Object.keys(input.objects).filter((k) => !isBuiltin(k)).sort()];
  const byUid = new Map<string, { kind: WorkloadKind; object: KubeObject }>();
  for (const kind of kinds) {
    for (const object of input.objects[kind] ?? []) {
      const uid = object.metadata?.uid;
      if (uid) byUid.set(uid, { kind, object });
    }
  }
  const listedKinds = new Set([...workloadKinds.map((k) => `${builtinGroup[k]}/${k}`), ...(input.customKinds ?? []).map((c) => `${c.group}/${c.kind}`)]);
  for (const kind of Object.keys(input.unlisted ?? {})) listedKinds.delete(kind);
  // The top-most controller of an object: Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob.
  // `ref` is set when the chain ends at an owner that was not listed.
  const topOwner = (object: KubeObject): { uid: string; ref?: OwnerReference } | undefined => {
    let current = object;
    let top: { uid: string; ref?: OwnerReference } | undefined;
    for (let depth = 0; depth < 8; depth++) {
      const ref = controllerOf(current);
      if (!ref?.uid) break;
      const owner = byUid.get(ref.uid);
      if (!owner) return { uid: ref.uid, ref };
      top = { uid: ref.uid };
      current = owner.object;
    }
    return top;
  };
  const hasTemplate = (uid: string) => {
    const owner = byUid.get(uid);
    return owner !== undefined && podSpecOf(owner.kind, owner.object.spec) !== undefined;
  };

  const podsByOwner = new Map<string, KubeObject[]>();
  const gathered = new Map<string, Gathered>();
  for (const kind of kinds) {
    for (const object of input.objects[kind] ?? []) {
      const top = topOwner(object);
      const ownerUid = top?.uid ?? object.metadata?.uid;
      if (kind === 'Pod' && ownerUid) {
        let pods = podsByOwner.get(ownerUid);
        if (!pods) podsByOwner.set(ownerUid, (pods = []));
        pods.push(object);
      }
      if (!top) continue;
      if (top.ref) {
        // Not listed, but of a kind that is: it was not selected (label selector, --kinds).
        if (listedKinds.has(`${groupOf(top.ref.apiVersion)}/${top.ref.kind}`)) continue;
      } else if (hasTemplate(top.uid)) continue; // its owner's template stands for it
      const podSpec = podSpecOf(kind, object.spec);
      if (!podSpec) continue;
      const key = top.uid;
      let entry = gathered.get(key);
      if (!entry) gathered.set(key, (entry = { namespace: object.metadata?.namespace ?? '', ...(top.ref ? { ref: top.ref } : {}), containers: new Map(), members: [] }));
      if (object.metadata?.uid) entry.members.push(object.metadata.uid);
      for (const c of containersOf(podSpec)) entry.containers.set(`${c.type}/${c.name}/${c.image}`, c);
    }
  }

  // A pod's own controller (an older ReplicaSet of a Deployment, a Job of a CronJob), when its pod
  // template names the container the workload's template does not: the pod is of an older revision.
  const revisionOf = (pod: KubeObject): PodOfWorkload['revisionOf'] => (c) => {
    const owner = byUid.get(controllerOf(pod)?.uid ?? '');
    const spec = owner && podSpecOf(owner.kind, owner.object.spec);
    const names = spec && containersOf(spec).some((o) => o.type === c.type && o.name === c.name && o.image === c.image);
    return names ? `${owner.kind} ${owner.object.metadata?.name ?? '?'}` : undefined;
  };
  /** The containers with the digest their pods agree on, and what the pods run besides (pod-images.ts). */
  const ran = (list: Iterable<{ name: string; image: string; type: ContainerType }>, pods: KubeObject[]): Pick<Workload, 'containers' | 'running'> => {
    const containers = [...list].map((c) => {
      const digest = agreedDigest(pods, c);
      return { ...c, ...(digest ? { runningDigest: digest } : {}) };
    });
    const running = runningImages(containers, pods.map((pod) => ({ pod, containers: containersOf((pod.spec ?? {}) as PodSpecLike), revisionOf: revisionOf(pod) })));
    return { containers, ...(running.length ? { running } : {}) };
  };

  const workloads: Workload[] = [];
  for (const kind of kinds) {
    for (const object of input.objects[kind] ?? []) {
      if (controllerOf(object)) continue; // changed through its owner, or reported under it
      const meta = object.metadata ?? {};
      if (!meta.name || !meta.namespace) continue;
      const podSpec = podSpecOf(kind, object.spec);
      const labels = meta.labels ?? {};
      const annotations = meta.annotations ?? {};
      const pods = podsByOwner.get(meta.uid ?? '') ?? [];
      const base = {
        kind, namespace: meta.namespace, name: meta.name, uid: meta.uid ?? '', resourceVersion: meta.resourceVersion ?? '', labels, annotations,
        ...(!isBuiltin(kind) && object.apiVersion ? { apiVersion: object.apiVersion } : {}),
      };
      if (!podSpec) {
        // A custom resource whose kind keeps its pod template elsewhere (an Argo Rollout with a
        // workloadRef): what runs under it is reported, and it is not patched.
        const found = gathered.get(meta.uid ?? '');
        if (!found) continue;
        workloads.push({ ...base, ...ran(found.containers.values(), pods), pullSecrets: [], members: found.members,
          notPatched: 'has no pod template where its kind keeps one: the images it runs are backed up, it is not patched' });
        continue;
      }
      const manager = managedBy(labels, annotations);
      const custom = !isBuiltin(kind);
      workloads.push({
        ...base, ...ran(containersOf(podSpec), pods), pullSecrets: (podSpec.imagePullSecrets ?? []).flatMap((s) => (s.name ? [s.name] : [])),
        ...(manager ? { managedBy: manager } : {}),
        ...(custom ? { template: podSpec as FullPodSpec } : {}),
      });
    }
  }
  // Owners that were not listed: reported with what runs under them, never patched.
  for (const [uid, found] of gathered) {
    if (!found.ref) continue;
    const group = groupOf(found.ref.apiVersion);
    const kind = found.ref.kind ?? 'Unknown';
    const what = group ? `${group} ${kind}` : kind;
    const why = input.unlisted?.[`${group}/${kind}`];
    const notPatched = why
      ? `owned by ${what}, which image-clone could not list (${why}): its image is backed up, the ${what} is not patched`
      : `owned by ${what}, which image-clone does not patch: its image is backed up${group && input.workloadKindSetting ? `; if its pod template sits at a fixed place, name it with ${input.workloadKindSetting} ${group}/${kind}=PATH` : ''}`;
    workloads.push({
      kind: qualifiedKind(group, kind), namespace: found.namespace, name: found.ref.name ?? uid, uid, resourceVersion: '', labels: {}, annotations: {},
      ...ran(found.containers.values(), podsByOwner.get(uid) ?? []), pullSecrets: [], members: found.members, notPatched,
      ...(found.ref.apiVersion ? { apiVersion: found.ref.apiVersion } : {}),
    });
  }
  return workloads;
}
