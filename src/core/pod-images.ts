// What pods run, set against what their workload's pod template names. Pods are the ground truth:
// a pod of an older revision (mid-rollout), an image changed on the pod (an admission webhook,
// `kubectl set image` on the Pod or its ReplicaSet), an ephemeral container (`kubectl debug`) and
// another digest of the template's tag all run, so all are backed up, though only the template is
// ever patched. Everything here reads the pods discovery was given: no request of its own. Pure.
import type { ContainerType, KubeObject, WorkloadContainer } from './kube-object.ts';

export interface ContainerStatusLike {
  name?: string;
  image?: string;
  imageID?: string;
}

/** An image a workload's pods run that its pod template does not name at that digest. */
export interface RunningContainer extends WorkloadContainer {
  /** The first pod (in list order) that runs it, and how many of the workload's pods do. */
  pod: string;
  pods: number;
  /**
   * revision: the pod's own controller (an older ReplicaSet, a Job of an earlier template) names
   * it: `revision` says which; digest: the template names the image, the pod runs another digest of
   * it; pod: no template names it (set on the pod, or a StatefulSet or DaemonSet pod of an older
   * revision); ephemeral containers are always `pod`.
   */
  origin: 'revision' | 'digest' | 'pod';
  revision?: string;
}

type Named = { name?: string; image?: string };
type PodLists = Partial<Record<'containers' | 'initContainers' | 'ephemeralContainers', Named[]>>;
type PodStatuses = Partial<Record<'containerStatuses' | 'initContainerStatuses' | 'ephemeralContainerStatuses', ContainerStatusLike[]>>;

const specField = { container: 'containers', initContainer: 'initContainers', ephemeralContainer: 'ephemeralContainers' } as const;
const statusField = { container: 'containerStatuses', initContainer: 'initContainerStatuses', ephemeralContainer: 'ephemeralContainerStatuses' } as const;
const digestInImageId = /@(sha256:[a-f0-9]{64})$/;

/** The digest a pod reports running for one of its containers (status imageID), if it reports one. */
export function podDigest(pod: KubeObject, type: ContainerType, name: string): string | undefined {
  const imageId = (pod.status as PodStatuses | undefined)?.[statusField[type]]?.find((s) => s.name === name)?.imageID;
  return imageId ? digestInImageId.exec(imageId)?.[1] : undefined;
}

/**
 * The digest all pods report for a container whose spec still names `image`; undefined when no pod
 * reports one or they disagree (then runningImages lists each digest that runs).
 */
export function agreedDigest(pods: KubeObject[], container: { name: string; image: string; type: ContainerType }): string | undefined {
  const digests = new Set<string>();
  for (const pod of pods) {
    const specImage = (pod.spec as PodLists | undefined)?.[specField[container.type]]?.find((c) => c.name === container.name)?.image;
    if (specImage !== container.image) continue; // this pod runs another version of the workload
    const digest = podDigest(pod, container.type, container.name);
    if (digest) digests.add(digest);
  }
  return digests.size === 1 ? [...digests][0] : undefined;
}

/** One pod of a workload: the object, its containers, and the controller that made it if not the workload itself. */
export interface PodOfWorkload {
  pod: KubeObject;
  containers: Array<{ name: string; image: string; type: ContainerType }>;
  /** `Kind name` of the pod's own controller, when its pod template names this container and image. */
  revisionOf: (container: { name: string; image: string; type: ContainerType }) => string | undefined;
}

/**
 * The images the pods run that `template` does not cover: a container (type, name, image) it does
 * not have, or a digest other than the one it will be pinned to (its pods disagree on the digest of
 * a tag). A pod that reports no digest yet (pending) runs what its reference names, and is covered
 * when the template names that reference. One entry per (type, name, image, digest).
 */
export function runningImages(template: WorkloadContainer[], pods: PodOfWorkload[]): RunningContainer[] {
  const found = new Map<string, RunningContainer>();
  for (const { pod, containers, revisionOf } of pods) {
    for (const c of containers) {
      const digest = podDigest(pod, c.type, c.name);
      const same = template.find((t) => t.type === c.type && t.name === c.name && t.image === c.image);
      if (same && (!digest || same.runningDigest === digest)) continue;
      const key = `${c.type}/${c.name}/${c.image}@${digest ?? ''}`;
      const seen = found.get(key);
      if (seen) {
        seen.pods++;
        continue;
      }
      const revision = same ? undefined : revisionOf(c);
      found.set(key, {
        ...c, ...(digest ? { runningDigest: digest } : {}), pod: pod.metadata?.name ?? '?', pods: 1,
        origin: same ? 'digest' : revision ? 'revision' : 'pod', ...(revision ? { revision } : {}),
      });
    }
  }
  return [...found.values()];
}

/** Which pods run it, and why no template covers it: "pod web-5d8f7-x2k of ReplicaSet web-5d8f7, an older revision, runs it". */
export function runningOrigin(c: RunningContainer): string {
  const who = c.pods === 1 ? `pod ${c.pod}` : `${c.pods} pods (${c.pod}, …)`;
  const run = c.pods === 1 ? 'runs' : 'run';
  if (c.type === 'ephemeralContainer') return `an ephemeral container of ${who} (kubectl debug)`;
  if (c.origin === 'revision') return `${who} of ${c.revision}, an older revision, ${run} it`;
  if (c.origin === 'digest') return `${who} ${run} ${c.runningDigest}, another digest of this tag than the other pods`;
  return `${who} ${run} it, though no pod template names it (set on the pod, e.g. by an admission webhook or kubectl set image, or a pod of an older revision)`;
}

/** Why an image only pods run is backed up and not patched, for people (the plan's reason). */
export function runningReason(c: RunningContainer): string {
  if (c.type === 'ephemeralContainer') return `${runningOrigin(c)}: backed up, never patched`;
  const replaced = c.origin === 'revision' ? `the rollout replaces ${c.pods === 1 ? 'it' : 'them'}` : 'the template is what is patched';
  return `${runningOrigin(c)}: backed up, not patched (${replaced})`;
}
