// Which workloads are image-clone itself (core/self-recognition.ts): in a cluster, the pod this run is and the
// controllers above it; anywhere, the label its manifests set. Finding the pod is best effort: when
// it fails the run goes on, and the label alone marks image-clone.
import { hostname } from 'node:os';
import type { LoadedKubeConfig } from '../kube/kubeconfig.ts';
import { selfLabel, type SelfIdentity } from '../core/self-recognition.ts';
import { selfInCluster } from '../kube/own-pod.ts';

/**
 * The pod's name: POD_NAME (the manifests set it from the downward API), else the hostname, which
 * the kubelet sets to the pod's name unless the pod spec names another. Undefined out of a cluster.
 */
export async function identifySelf(kube: LoadedKubeConfig, env: Record<string, string | undefined>, warn: (line: string) => void): Promise<SelfIdentity | undefined> {
  // Set only when the kubeconfig is the in-cluster ServiceAccount's: the pod's own namespace.
  const namespace = kube.ownNamespace;
  if (!namespace) return undefined;
  const podName = env.POD_NAME || hostname();
  const byLabel = `only workloads labelled ${selfLabel.key}=${selfLabel.value} are taken for image-clone itself (and not patched)`;
  try {
    const self = await selfInCluster(kube.kc, namespace, podName);
    if (!self.uids.length) warn(`no pod ${namespace}/${podName} found to tell which CronJob this run belongs to (set POD_NAME from the downward API); ${byLabel}`);
    return self;
  } catch (err) {
    warn(`cannot tell which CronJob this run belongs to: ${(err as Error).message}; ${byLabel}`);
    return undefined;
  }
}
