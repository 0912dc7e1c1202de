// The sync pipeline over small ports: discover -> resolve -> plan (what --dry-run prints), then
// copy -> verify -> patch. The CLI wires the ports to the cluster and the registries.
import { KubeError } from '../errors.ts';
import { createLimiter } from '../util/limit.ts';
import type { CustomKind, CustomKindSpec } from './custom-kinds.ts';
import { buildPlan, imagesToResolve, type ImageRequest, type Plan, type PlanConfig, type Resolution } from './plan.ts';
import type { ManifestLookup, WorkloadSource } from './ports.ts';
import { resolveImages } from './resolve.ts';
import { discoverWorkloads, workloadKinds, type Workload, type WorkloadKind } from './workloads.ts';
import type { KubeObject } from './kube-object.ts';

export interface DiscoveryOptions {
  /** Only these namespaces (all when empty). */
  namespaces: string[];
  excludeNamespaces: string[];
  labelSelector?: string;
  /** Workload kinds to report and patch (custom kinds as `Kind.group`; owners found through pods go with Pod). */
  kinds: WorkloadKind[];
  /** Custom kinds to look for (custom-kinds.ts): listed and patched where the cluster serves them. */
  customKinds?: CustomKindSpec[];
  /** How an unpatched custom owner's hint names the setting for its pod template (the CLI: --workload-kind). */
  workloadKindSetting?: string;
}

/** Kinds that own others, so their objects are listed whole even when a selector narrows the rest. */
const linkKinds: WorkloadKind[] = ['ReplicaSet', 'Job', 'Pod'];

/**
 * Lists what discovery needs and returns the workloads to consider. ReplicaSets, Jobs and Pods are
 * listed without the selector: they link pods (and the digests they run) to their workloads. A
 * custom kind the run may not list or patch is a warning naming it, never a failed run: what its
 * objects run is still found through their pods, and backed up.
 */
export async function discover(source: WorkloadSource, options: DiscoveryOptions, warn: (line: string) => void = () => {}): Promise<Workload[]> {
  const selector = options.labelSelector;
  const objects: Partial<Record<WorkloadKind, KubeObject[]>> = {};
  const selectedUids = new Set<string>();
  const served = options.customKinds?.length && source.customKinds ? await source.customKinds(options.customKinds) : [];
  const custom = served.filter((c) => options.kinds.includes(c.name));
  const unlisted: Record<string, string> = {};
  // Two kinds at a time: each page of typed objects is large while it is being cut down, and
  // listing all eight at once cost more memory than time (bench/RESULTS.md, plan benchmark).
  const twoAtATime = createLimiter(2);
  await Promise.all([
    ...workloadKinds.map((kind) => twoAtATime(async () => {
      const link = linkKinds.includes(kind);
      if (!link && !options.kinds.includes(kind)) return;
      objects[kind] = await source.list(kind, options.namespaces, link ? undefined : selector);
      if (link && selector && options.kinds.includes(kind)) {
        for (const o of await source.list(kind, options.namespaces, selector)) if (o.metadata?.uid) selectedUids.add(o.metadata.uid);
      }
    })),
    ...custom.map((kind) => twoAtATime(async () => {
      try {
        objects[kind.name] = await source.list(kind.name, options.namespaces, selector);
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 403)) throw err;
        unlisted[`${kind.group}/${kind.kind}`] = `RBAC: no list on ${kind.resource}.${kind.group}`;
        warn(`${err.message}; the ${kind.name} objects are not patched, and the images their pods run are still backed up (grant list and patch on ${kind.resource}.${kind.group} to patch them)`);
      }
    })),
  ]);
  const excluded = new Set(options.excludeNamespaces);
  // Every served custom kind counts as listed: an owner of a kind --kinds leaves out is not selected, as a Deployment would not be.
  const workloads = discoverWorkloads({ objects, customKinds: served, unlisted, ...(options.workloadKindSetting ? { workloadKindSetting: options.workloadKindSetting } : {}) }).filter((w) =>
    !excluded.has(w.namespace)
    && (w.members && !objects[w.kind]
      // An owner found through what it owns (not listed itself): shown with pods, as selected pods are.
      ? options.kinds.includes('Pod') && (!selector || w.members.some((uid) => selectedUids.has(uid)))
      : options.kinds.includes(w.kind) && (!selector || !linkKinds.includes(w.kind) || selectedUids.has(w.uid))));
  await markUnpatchable(source, custom, workloads, warn);
  return workloads;
}

/** Custom workloads this run may not patch (an access review per kind and namespace): skipped, with a warning naming the kind. */
async function markUnpatchable(source: WorkloadSource, custom: CustomKind[], workloads: Workload[], warn: (line: string) => void): Promise<void> {
  if (!source.canPatch) return;
  for (const kind of custom) {
    const mine = workloads.filter((w) => w.kind === kind.name && !w.notPatched);
    for (const namespace of new Set(mine.map((w) => w.namespace))) {
      if (await source.canPatch(kind, namespace)) continue;
      const why = `image-clone may not patch ${kind.resource}.${kind.group} in namespace ${namespace} (RBAC): its images are backed up, it is not patched`;
      warn(`cannot patch ${kind.resource}.${kind.group} in namespace ${namespace}: RBAC grants no patch on it; its images are backed up, its ${kind.name} objects are not patched`);
      for (const w of mine.filter((w) => w.namespace === namespace)) w.notPatched = why;
    }
  }
}

export interface PlanResult {
  plan: Plan;
  workloads: Workload[];
  requests: ImageRequest[];
  resolutions: Map<string, Resolution>;
}

export async function planSync(ports: { workloads: WorkloadSource; manifests: ManifestLookup; warn?: (line: string) => void }, discovery: DiscoveryOptions, config: PlanConfig, concurrency: number): Promise<PlanResult> {
  const workloads = await discover(ports.workloads, discovery, ports.warn);
  const requests = imagesToResolve(workloads, config);
  const resolutions = await resolveImages(requests, ports.manifests, concurrency);
  return { plan: buildPlan(workloads, resolutions, config), workloads, requests, resolutions };
}
