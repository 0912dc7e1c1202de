// The cluster a sync or restore works on: the kubeconfig loaded for the selection, and the hint a
// refused cluster-wide list gets. Apart from settings.ts so that `copy`, which reads no cluster,
// loads no Kubernetes client.
import { KubeError } from '../errors.ts';
import { loadKubeConfig, type LoadedKubeConfig } from '../kube/kubeconfig.ts';
import { flagNames, type Selection } from './settings.ts';

/** Loads the kubeconfig and turns a selection into discovery options (kube-system skipped by default). */
export async function kubeSelection(selection: Selection, env: Record<string, string | undefined>) {
  const kube = loadKubeConfig({ env, ...(selection.kubeconfig ? { kubeconfig: selection.kubeconfig } : {}), ...(selection.context ? { context: selection.context } : {}) });
  const ownNamespace = selection.ownNamespace ?? kube.ownNamespace ?? 'image-clone';
  const discovery = {
    namespaces: selection.namespaces,
    // The own namespace is listed like any other: its workloads are protected, image-clone itself
    // is backed up but never patched (core/self-recognition.ts).
    excludeNamespaces: selection.excludeNamespaces ?? ['kube-system'],
    ...(selection.selector ? { labelSelector: selection.selector } : {}),
    kinds: selection.kinds,
    customKinds: selection.customKinds,
    workloadKindSetting: flagNames.workloadKind,
  };
  return { kube, discovery, ownNamespace };
}

/**
 * A list refused in all namespaces (no -n) is a cluster-scope permission missing: with a Role in
 * some namespaces only, the fix is -n; the error line says so, and names the other way out.
 */
export function clusterScopeHint(err: unknown, cluster: { kube: LoadedKubeConfig; discovery: { namespaces: string[] } }): unknown {
  if (!(err instanceof KubeError) || err.status !== 403 || cluster.discovery.namespaces.length) return err;
  // The pod's namespace in a cluster, else the kubeconfig context's: the likeliest one the user may list.
  const { kc, ownNamespace } = cluster.kube;
  const example = ownNamespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'NAMESPACE';
  return new KubeError(`${err.message}; with permissions in some namespaces only (a Role), pass -n with the namespaces you may list `
    + `(-n ${example}, or IMAGE_CLONE_NAMESPACE), or bind a ClusterRole that may list them all (manifests/base/clusterrole.yaml)`, err.status, err.reason);
}
