// The 5,000-workload cluster over 500 backed-up images that bench:plan and bench:sync's no-op part
// measure (issues 4 and 5), scaled down for a trial with --scale, and the smallest shapes (--smoke).
import type { Harness } from '../../test/harness/harness.ts';
import { nestedBackupPath, seedFleet, type FleetShape, type SeededFleet } from './fleets.ts';
import { kinds, type ClusterShape, type Kind } from './workloads.ts';

/**
 * 5,000 workloads in 50 namespaces, every kind, mostly Deployments (52%, five times the next
 * kind). Why not more: kube-controller-manager's client is limited to 20 requests/s per
 * controller and the deployment controller spends ~4 requests per new Deployment (create the
 * ReplicaSet, two status updates, one 409), so 2,600 Deployments take it ~9 minutes. Deployments,
 * StatefulSets, ReplicaSets and ReplicationControllers have replicas: 0, except 2 Deployments per
 * namespace with replicas: 1; Jobs run (one pod each). No scheduler or kubelet, so those pods stay
 * Pending. The deployment controller adds one ReplicaSet per Deployment.
 */
export const bigCluster: ClusterShape = {
  namespaces: 50,
  namespacePrefix: 'fleet',
  perNamespace: { Deployment: 52, StatefulSet: 10, DaemonSet: 8, CronJob: 7, Job: 6, ReplicaSet: 6, ReplicationController: 5, Pod: 6 },
  deploymentsWithAPod: 2,
  suspendJobs: false,
  concurrency: 24,
};

/** 500 small images: an index of 2 platforms each, 2 layers of 1 KiB (the first shared by a group of 10). */
export const bigFleet: FleetShape = {
  images: 500, groupSize: 10, platforms: 'linux/amd64,linux/arm64', layers: 2, sharedLayers: 1, layerSize: '1KiB', format: 'mixed', parallel: 8,
};

export const bigFleetPrefix = 'apps';

/** Scales the namespace count (and so the workloads) for a quick trial run: --scale 0.1 gives 5 namespaces. */
export function scaled(shape: ClusterShape, fleet: FleetShape, scale: number): { shape: ClusterShape; fleet: FleetShape } {
  if (scale === 1) return { shape, fleet };
  return {
    shape: { ...shape, namespaces: Math.max(1, Math.round(shape.namespaces * scale)) },
    fleet: { ...fleet, images: Math.max(fleet.groupSize, Math.round(fleet.images * scale)) },
  };
}

/**
 * --smoke: the smallest shapes that still have every kind: one namespace with one workload of each
 * kind (one Deployment with a pod), and 2 images of 2 layers of 4 KiB, the first shared.
 */
export function smallest(shape: ClusterShape, fleet: FleetShape): { shape: ClusterShape; fleet: FleetShape } {
  return {
    shape: { ...shape, namespaces: 1, perNamespace: Object.fromEntries(kinds.map((k) => [k, 1])) as Record<Kind, number>, deploymentsWithAPod: 1 },
    fleet: { ...fleet, images: 2, groupSize: 2, layers: 2, sharedLayers: 1, layerSize: '4KiB' },
  };
}

export interface BackedUpFleet {
  source: SeededFleet;
  backup: SeededFleet;
  /** The images as workloads name them: SOURCE/apps/app-N:v1. */
  images: string[];
  /** The same images' backup names: BACKUP/<prefix>/<source host>/apps/app-N:v1. */
  backupImages: string[];
  sameDigests: boolean;
}

/**
 * The fleet in `source`, and the same fleet under the names image-clone's nested naming gives it in
 * `backup` (seed-fleet's digests depend only on the shape, so the backup copies are byte-identical).
 */
export async function seedBackedUpFleet(h: Harness, fleet: FleetShape, backupPrefix: string): Promise<BackedUpFleet> {
  const src = h.env.registries.source.host;
  const dst = h.env.registries.backup.host;
  const backupPath = nestedBackupPath(backupPrefix, src, bigFleetPrefix);
  const [source, backup] = await Promise.all([seedFleet(h, src, fleet, bigFleetPrefix), seedFleet(h, dst, fleet, backupPath, { anchorTags: true })]);
  const sameDigests = source.names.every((n, i) => source.digests.get(n) === backup.digests.get(backup.names[i]!));
  return {
    source, backup, sameDigests,
    images: source.names.map((n) => `${src}/${n}`),
    backupImages: backup.names.map((n) => `${dst}/${n}`),
  };
}
