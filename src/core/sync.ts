// The sync pipeline over small ports: discover -> resolve -> plan (what --dry-run prints), then
// copy -> verify -> patch. The CLI wires the ports to the cluster and the registries.
import { createLimiter } from '../util/limit.ts';
import { buildPlan, imagesToResolve, type ImageRequest, type Plan, type PlanConfig, type Resolution } from './plan.ts';
import type { ManifestLookup, WorkloadSource } from './ports.ts';
import { resolveImages } from './resolve.ts';
import { discoverWorkloads, workloadKinds, type KubeObject, type Workload, type WorkloadKind } from './workloads.ts';

export interface DiscoveryOptions {
  /** Only these namespaces (all when empty). */
  namespaces: string[];
  excludeNamespaces: string[];
  labelSelector?: string;
  /** Workload kinds to report and patch. */
  kinds: WorkloadKind[];
}

/** Kinds that own others, so their objects are listed whole even when a selector narrows the rest. */
const linkKinds: WorkloadKind[] = ['ReplicaSet', 'Job', 'Pod'];

/**
 * Lists what discovery needs and returns the workloads to consider. ReplicaSets, Jobs and Pods are
 * listed without the selector: they link pods (and the digests they run) to their workloads.
 */
export async function discover(source: WorkloadSource, options: DiscoveryOptions): Promise<Workload[]> {
  const selector = options.labelSelector;
  const objects: Partial<Record<WorkloadKind, KubeObject[]>> = {};
  const selectedUids = new Set<string>();
  // Two kinds at a time: each page of typed objects is large while it is being cut down, and
  // listing all eight at once cost more memory than time (bench/RESULTS.md, plan benchmark).
  const twoAtATime = createLimiter(2);
  await Promise.all(workloadKinds.map((kind) => twoAtATime(async () => {
    const link = linkKinds.includes(kind);
    if (!link && !options.kinds.includes(kind)) return;
    objects[kind] = await source.list(kind, options.namespaces, link ? undefined : selector);
    if (link && selector && options.kinds.includes(kind)) {
      for (const o of await source.list(kind, options.namespaces, selector)) if (o.metadata?.uid) selectedUids.add(o.metadata.uid);
    }
  })));
  const excluded = new Set(options.excludeNamespaces);
  return discoverWorkloads({ objects }).filter((w) =>
    options.kinds.includes(w.kind)
    && !excluded.has(w.namespace)
    && (!selector || !linkKinds.includes(w.kind) || selectedUids.has(w.uid)));
}

export interface PlanResult {
  plan: Plan;
  workloads: Workload[];
  requests: ImageRequest[];
  resolutions: Map<string, Resolution>;
}

export async function planSync(ports: { workloads: WorkloadSource; manifests: ManifestLookup }, discovery: DiscoveryOptions, config: PlanConfig, concurrency: number): Promise<PlanResult> {
  const workloads = await discover(ports.workloads, discovery);
  const requests = imagesToResolve(workloads, config);
  const resolutions = await resolveImages(requests, ports.manifests, concurrency);
  return { plan: buildPlan(workloads, resolutions, config), workloads, requests, resolutions };
}
