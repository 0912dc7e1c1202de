// In a cluster: which pod this run is, and the controllers above it (core/self-recognition.ts follows the
// chain). Objects are listed by name in the pod's own namespace, so a run needs only the `list`
// it already has there (a Role in that namespace is enough), and no `get`.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { findSelf, type SelfIdentity } from '../core/self-recognition.ts';
import type { KubeObject } from '../core/kube-object.ts';
import { apiProxy } from './kubeconfig.ts';
import { WorkloadLister } from './list.ts';
import { kubeError, withRetry } from './api-failures.ts';

/**
 * The pod `podName` in `namespace` and its controllers. A listed pod that a controller owns is cut
 * down to what discovery needs (its owner's name is not kept), so the pod itself is listed whole.
 */
export async function selfInCluster(kc: KubeConfig, namespace: string, podName: string): Promise<SelfIdentity> {
  const core = kc.makeApiClient(CoreV1Api);
  const lister = new WorkloadLister(kc);
  return findSelf(async (kind, ns, name) => {
    if (kind !== 'Pod') return (await lister.list(kind, [ns], undefined, `metadata.name=${name}`))[0];
    try {
      const { items } = await withRetry(() => core.listNamespacedPod({ namespace: ns, fieldSelector: `metadata.name=${name}` }));
      return items[0] as KubeObject | undefined;
    } catch (err) {
      throw kubeError(err, `list pods in namespace ${ns}`, apiProxy(kc));
    }
  }, namespace, podName);
}
