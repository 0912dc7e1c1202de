// Which workloads are image-clone itself. Its images are backed up like any other, but its own
// CronJob (and the Job and Pod a run is) are never patched. It is told apart by what it is, not by
// where it lives: a team that installs it in its one namespace wants every other workload there
// protected. Two signs: the label its manifests put on everything they install (and that its Jobs
// and Pods inherit), and, in a cluster, the chain of controllers above the pod the run is.
import { workloadKinds, type Workload, type WorkloadKind } from './workloads.ts';
import type { KubeObject } from './kube-object.ts';

/** The label manifests/ sets on every object it installs, the CronJob's Job and Pod templates included. */
export const selfLabel = { key: 'app.kubernetes.io/name', value: 'image-clone' } as const;

export interface SelfIdentity {
  /** UIDs of the pod this run is and of each controller above it (its Job, that Job's CronJob, ...). */
  uids: string[];
  /** Where they were found, for messages: `Pod ns/name` up to the topmost controller. */
  chain: string[];
}

/** Why `workload` is image-clone itself, or undefined when it is not. */
export function selfReason(workload: Pick<Workload, 'uid' | 'labels'>, self: SelfIdentity | undefined): string | undefined {
  if (self?.uids.includes(workload.uid)) return 'image-clone itself (this run belongs to it)';
  if (workload.labels[selfLabel.key] === selfLabel.value) return `image-clone itself (labelled ${selfLabel.key}=${selfLabel.value})`;
  return undefined;
}

/** Looks up one object of a workload kind by namespace and name; undefined when there is none. */
export type ObjectLookup = (kind: WorkloadKind, namespace: string, name: string) => Promise<KubeObject | undefined>;

const isWorkloadKind = (kind: string | undefined): kind is WorkloadKind => (workloadKinds as readonly string[]).includes(kind ?? '');

/** Controllers above a pod are a short chain (Pod, Job, CronJob); a cycle or a long chain is not ours to follow. */
const maxDepth = 5;

/**
 * The pod `podName` in `namespace` and the controllers above it, followed through the controller
 * owner references. A controller of a kind that is not a workload kind (a custom resource) is
 * recorded by its UID and ends the chain: it cannot be looked up here, and nothing it owns is either.
 */
export async function findSelf(lookup: ObjectLookup, namespace: string, podName: string): Promise<SelfIdentity> {
  const self: SelfIdentity = { uids: [], chain: [] };
  let next: { kind: WorkloadKind; name: string } | undefined = { kind: 'Pod', name: podName };
  while (next && self.chain.length < maxDepth) {
    const object = await lookup(next.kind, namespace, next.name);
    const uid = object?.metadata?.uid;
    if (!uid || self.uids.includes(uid)) break;
    self.uids.push(uid);
    self.chain.push(`${next.kind} ${namespace}/${next.name}`);
    const owner = object.metadata?.ownerReferences?.find((r) => r.controller);
    next = undefined;
    if (!owner?.name || !owner.kind) break;
    if (isWorkloadKind(owner.kind)) next = { kind: owner.kind, name: owner.name };
    else if (owner.uid) {
      self.uids.push(owner.uid);
      self.chain.push(`${owner.kind} ${namespace}/${owner.name}`);
    }
  }
  return self;
}
