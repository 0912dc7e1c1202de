// Carrying out a plan: copy each image once (largest first), then patch each workload whose images
// are all verified in the backup, in one patch per workload. A copy that fails leaves its workloads
// untouched; a workload that changed under us is re-read and re-planned, never overwritten.
import type { ImageReference } from '../oci/reference.ts';
import { createLimiter } from '../oci/limit.ts';
import { buildPlan, type ImageRequest, type Plan, type PlanConfig, type Resolution } from './plan.ts';
import { imagePatch, type ImageChange } from './patches.ts';
import { discoverWorkloads, type KubeObject, type Workload, type WorkloadKind } from './workloads.ts';

/** The copy engine, as the pipeline sees it. */
export interface ImageCopier {
  copyAll(jobs: Array<{ source: ImageReference; target: ImageReference }>, imageConcurrency: number):
    Promise<Array<{ result: { status: 'copied' | 'present'; digest: string; counts: CopyCounts } } | { error: unknown }>>;
}

interface CopyCounts {
  blobsCopied: number;
  blobsMounted: number;
  blobsPresent: number;
  bytesCopied: number;
}

export interface Patcher {
  patch(kind: WorkloadKind, namespace: string, name: string, body: object): Promise<{ status: 'patched'; object: KubeObject } | { status: 'conflict' } | { status: 'gone' }>;
  read(kind: WorkloadKind, namespace: string, name: string): Promise<KubeObject | undefined>;
}

/** --pull-secret: the Secret copied into each namespace before its first patch. */
export interface PullSecrets {
  name: string;
  ensure(namespace: string): Promise<void>;
}

export type SyncEvent =
  | { kind: 'copying'; images: number }
  | { kind: 'image-copied'; source: string; backup: string; digest: string; bytes: number; status: 'copied' | 'present' }
  | { kind: 'image-failed'; source: string; message: string }
  | { kind: 'workload-patched'; workload: string; containers: number }
  | { kind: 'workload-conflict'; workload: string; attempt: number }
  | { kind: 'workload-failed'; workload: string; message: string };

export type ImageResult = 'copied' | 'present' | 'lost' | 'excluded' | 'failed' | 'error';
export type WorkloadResult = 'patched' | 'unchanged' | 'skipped' | 'failed';

export interface ExecutionResult {
  /** The plan as it stands after the copies (failed copies turned their workloads into errors). */
  plan: Plan;
  images: Map<string, { result: ImageResult; reason: string }>;
  workloads: Array<{ kind: WorkloadKind; namespace: string; name: string; result: WorkloadResult; reason: string }>;
  totals: { blobsCopied: number; blobsMounted: number; blobsPresent: number; bytesCopied: number };
}

const maxConflictRetries = 3;
const workloadKey = (w: { kind: string; namespace: string; name: string }) => `${w.kind}/${w.namespace}/${w.name}`;

export async function executePlan(
  workloads: Workload[], requests: ImageRequest[], resolutions: Map<string, Resolution>, config: PlanConfig,
  ports: { copier: ImageCopier; patcher: Patcher; pullSecrets?: PullSecrets },
  options: { concurrency: number; onEvent?: (event: SyncEvent) => void; signal?: AbortSignal },
): Promise<ExecutionResult> {
  const emit = options.onEvent ?? (() => {});
  const images = new Map<string, { result: ImageResult; reason: string }>();
  const totals = { blobsCopied: 0, blobsMounted: 0, blobsPresent: 0, bytesCopied: 0 };
  const usable = new Map(resolutions);

  // Copy: each distinct image once. The engine verifies the tag's digest before it reports success.
  const toCopy = requests.filter((r) => resolutions.get(r.key)?.state === 'copy');
  if (toCopy.length) emit({ kind: 'copying', images: toCopy.length });
  const outcomes = await ports.copier.copyAll(toCopy.map((r) => {
    const resolution = resolutions.get(r.key) as Extract<Resolution, { state: 'copy' }>;
    return { source: { ...r.source, digest: resolution.digest }, target: r.backup };
  }), Math.max(2, Math.ceil(options.concurrency / 2)));
  outcomes.forEach((outcome, i) => {
    const request = toCopy[i]!;
    const source = `${request.source.registry}/${request.source.repository}${request.source.tag ? `:${request.source.tag}` : ''}`;
    if ('result' in outcome) {
      const c = outcome.result.counts;
      totals.blobsCopied += c.blobsCopied;
      totals.blobsMounted += c.blobsMounted;
      totals.blobsPresent += c.blobsPresent;
      totals.bytesCopied += c.bytesCopied;
      images.set(request.key, outcome.result.status === 'present' ? { result: 'present', reason: 'already in the backup' } : { result: 'copied', reason: 'copied and verified' });
      emit({ kind: 'image-copied', source, backup: `${request.backup.registry}/${request.backup.repository}:${request.backup.tag}`, digest: outcome.result.digest, bytes: c.bytesCopied, status: outcome.result.status });
    } else {
      const message = oneLine(outcome.error);
      images.set(request.key, { result: 'failed', reason: message });
      usable.set(request.key, { state: 'error', reason: `copy failed: ${message}` });
      emit({ kind: 'image-failed', source, message });
    }
  });
  for (const request of requests) {
    if (images.has(request.key)) continue;
    const r = resolutions.get(request.key);
    images.set(request.key, { result: r?.state === 'present' ? 'present' : r?.state === 'lost' ? 'lost' : 'error', reason: r?.reason ?? 'not resolved' });
  }

  // Patch: re-plan with what the copies achieved, then one patch per workload.
  const plan = buildPlan(workloads, usable, config);
  const byKey = new Map(workloads.map((w) => [workloadKey(w), w]));
  const planned = new Map<string, typeof plan.workloads>();
  for (const c of plan.workloads) {
    const key = workloadKey(c);
    planned.set(key, [...(planned.get(key) ?? []), c]);
  }
  const limit = createLimiter(8);
  const results: ExecutionResult['workloads'] = [];
  await Promise.all([...planned.entries()].map(([key, containers]) => limit(async () => {
    const workload = byKey.get(key)!;
    const base = { kind: workload.kind, namespace: workload.namespace, name: workload.name };
    if (!containers.some((c) => c.action === 'patch')) {
      const failed = containers.find((c) => c.action === 'error');
      const result: WorkloadResult = failed ? 'failed' : containers.every((c) => c.action === 'unchanged') ? 'unchanged' : 'skipped';
      results.push({ ...base, result, reason: (failed ?? containers.find((c) => c.action === 'skip') ?? containers[0]!).reason });
      return;
    }
    if (options.signal?.aborted) {
      results.push({ ...base, result: 'skipped', reason: `the run stopped: ${oneLine(options.signal.reason)}` });
      return;
    }
    try {
      await ports.pullSecrets?.ensure(workload.namespace);
      results.push({ ...base, ...(await patchWorkload(workload, containers, usable, config, ports.patcher, emit, ports.pullSecrets?.name)) });
    } catch (err) {
      const message = oneLine(err);
      emit({ kind: 'workload-failed', workload: key, message });
      results.push({ ...base, result: 'failed', reason: message });
    }
  })));
  return { plan, images, workloads: results, totals };
}

/** Patches one workload; on a conflict, re-reads and re-plans it (another writer's change is kept). */
async function patchWorkload(workload: Workload, containers: Plan['workloads'], resolutions: Map<string, Resolution>, config: PlanConfig, patcher: Patcher, emit: (e: SyncEvent) => void, pullSecret?: string): Promise<{ result: WorkloadResult; reason: string }> {
  let current = workload;
  let plannedContainers = containers;
  for (let attempt = 1; ; attempt++) {
    const changes: ImageChange[] = plannedContainers
      .filter((c) => c.action === 'patch' && c.newImage)
      .map((c) => ({ container: c.container, type: current.containers.find((x) => x.name === c.container)?.type ?? 'container', image: c.newImage! }));
    if (!changes.length) {
      const why = plannedContainers.find((c) => c.action !== 'unchanged');
      return why ? { result: 'skipped', reason: `changed during the run: ${why.reason}` } : { result: 'unchanged', reason: 'already runs from the backup registry' };
    }
    const outcome = await patcher.patch(current.kind, current.namespace, current.name, imagePatch(current, changes, pullSecret));
    if (outcome.status === 'patched') {
      emit({ kind: 'workload-patched', workload: workloadKey(current), containers: changes.length });
      return { result: 'patched', reason: `${changes.length} container${changes.length === 1 ? '' : 's'} now run from the backup` };
    }
    if (outcome.status === 'gone') return { result: 'skipped', reason: 'deleted during the run' };
    emit({ kind: 'workload-conflict', workload: workloadKey(current), attempt });
    if (attempt >= maxConflictRetries) return { result: 'skipped', reason: 'kept changing during the run; the next run will patch it' };
    const fresh = await patcher.read(current.kind, current.namespace, current.name);
    if (!fresh) return { result: 'skipped', reason: 'deleted during the run' };
    const [rediscovered] = discoverWorkloads({ objects: { [current.kind]: [fresh] } });
    if (!rediscovered) return { result: 'skipped', reason: 'no longer has a pod template' };
    // Our own patch may have landed with its answer lost (then retried into this conflict).
    if (changes.every((change) => rediscovered.containers.some((c) => c.name === change.container && c.image === change.image))) {
      emit({ kind: 'workload-patched', workload: workloadKey(current), containers: changes.length });
      return { result: 'patched', reason: `${changes.length} container${changes.length === 1 ? '' : 's'} now run from the backup` };
    }
    // Containers whose image is unchanged keep the digest their pods reported.
    for (const c of rediscovered.containers) {
      const before = current.containers.find((x) => x.name === c.name && x.type === c.type);
      if (before?.image === c.image && before.runningDigest) c.runningDigest = before.runningDigest;
    }
    current = rediscovered;
    const replanned = buildPlan([current], resolutions, config).workloads;
    // An image another writer put there has not been resolved in this run: leave it for the next.
    plannedContainers = replanned.map((c) => (c.action === 'error' && c.reason === 'not resolved'
      ? { ...c, action: 'skip' as const, reason: 'its image changed during the run; the next run will back it up' }
      : c));
    if (plannedContainers.some((c) => c.action === 'skip' && c.reason.startsWith('its image changed'))) {
      return { result: 'skipped', reason: 'its images changed during the run; the other writer\'s change is kept, and the next run will back it up' };
    }
  }
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
