// Reading the workloads back after a sync: the container images of every workload the benchmark made.
import { AppsV1Api, BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { kinds, loadKubeConfig, type Kind } from './workloads.ts';

export interface WorkloadImages {
  kind: Kind;
  namespace: string;
  name: string;
  images: string[];
}

/** The container images of every workload carrying `labelSelector` (the bench's own objects, not the controllers'). */
export async function workloadImages(kubeconfig: string, labelSelector: string): Promise<WorkloadImages[]> {
  const kc = loadKubeConfig(kubeconfig);
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const lists: Record<Kind, () => Promise<{ items: any[] }>> = {
    Deployment: () => apps.listDeploymentForAllNamespaces({ labelSelector }),
    StatefulSet: () => apps.listStatefulSetForAllNamespaces({ labelSelector }),
    DaemonSet: () => apps.listDaemonSetForAllNamespaces({ labelSelector }),
    ReplicaSet: () => apps.listReplicaSetForAllNamespaces({ labelSelector }),
    CronJob: () => batch.listCronJobForAllNamespaces({ labelSelector }),
    Job: () => batch.listJobForAllNamespaces({ labelSelector }),
    ReplicationController: () => core.listReplicationControllerForAllNamespaces({ labelSelector }),
    Pod: () => core.listPodForAllNamespaces({ labelSelector }),
  };
  const out: WorkloadImages[] = [];
  for (const kind of kinds) {
    for (const o of (await lists[kind]()).items) {
      const spec = kind === 'Pod' ? o.spec : kind === 'CronJob' ? o.spec?.jobTemplate?.spec?.template?.spec : o.spec?.template?.spec;
      const images = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c: { image: string }) => c.image);
      out.push({ kind, namespace: o.metadata.namespace, name: o.metadata.name, images });
    }
  }
  return out;
}
