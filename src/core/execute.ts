// Carrying out a plan: copy each image once (largest first), then patch each workload whose images
// are all verified in the backup, in one patch per workload. A copy that fails leaves its workloads
// untouched; a workload that changed under us is re-read and re-planned, never overwritten.
import { createLimiter } from '../util/limit.ts';
import { oneLine } from '../util/text.ts';
import { anchorTag, isAnchorTag, sealTag } from './naming.ts';
import { buildPlan, decidingRows, type ImageRequest, type Plan, type PlanConfig, type Resolution } from './plan.ts';
import { imagePatch, type ImageChange } from './patches.ts';
import type { CopyCounts, ImageCopier, ManifestLookup, Patcher, PullSecrets } from './ports.ts';
import { discoverWorkloads, type Workload, type WorkloadKind } from './workloads.ts';

export type SyncEvent =
  | { kind: 'copying'; images: number }
  | { kind: 'image-copied'; source: string; backup: string; digest: string; bytes: number; status: 'copied' | 'present' | 'tagged' }
  | { kind: 'tag-warning'; backup: string; message: string }
  | { kind: 'image-failed'; source: string; message: string }
  | { kind: 'workload-patched'; workload: string; containers: number }
  | { kind: 'workload-conflict'; workload: string; attempt: number }
  | { kind: 'workload-failed'; workload: string; message: string };

export type ImageResult = 'copied' | 'tagged' | 'present' | 'lost' | 'excluded' | 'failed' | 'error';
export type WorkloadResult = 'patched' | 'unchanged' | 'skipped' | 'failed';

export interface ExecutionResult {
  /** The plan as it stands after the copies (failed copies turned their workloads into errors). */
  plan: Plan;
  images: Map<string, { result: ImageResult; reason: string }>;
  workloads: Array<{ kind: WorkloadKind; namespace: string; name: string; result: WorkloadResult; reason: string }>;
  /** The blob figures of every copy together (what the report's summary shows). */
  totals: BlobTotals;
}

type BlobTotals = Pick<CopyCounts, 'blobsCopied' | 'blobsMounted' | 'blobsPresent' | 'bytesCopied'>;

/** Tries of one workload's patch when other writers keep changing it (sync and restore alike). */
export const maxConflictRetries = 3;
const workloadKey = (w: { kind: string; namespace: string; name: string }) => `${w.kind}/${w.namespace}/${w.name}`;

/** What the phases of one execution share: its inputs, and what each phase records. */
interface Execution {
  requests: ImageRequest[];
  resolutions: Map<string, Resolution>;
  ports: { copier: ImageCopier; patcher: Patcher; manifests: ManifestLookup; pullSecrets?: PullSecrets };
  options: { concurrency: number; signal?: AbortSignal };
  emit: (event: SyncEvent) => void;
  /** Each request's outcome. */
  images: Map<string, { result: ImageResult; reason: string }>;
  totals: BlobTotals;
  /** The resolutions as the copies left them: a failed copy makes its image an error for the patches. */
  usable: Map<string, Resolution>;
  /** Requests whose digest the backup now holds whole (copied or tagged): their human tags may be placed. */
  settled: ImageRequest[];
}

/**
 * Carries a plan out, in phases: copy what is missing, tag what is held without its anchors, place
 * the human tags, refresh what is attached to the images already there, then re-plan with what the
 * copies achieved and patch each workload once.
 */
export async function executePlan(
  workloads: Workload[], requests: ImageRequest[], resolutions: Map<string, Resolution>, config: PlanConfig,
  ports: Execution['ports'],
  options: { concurrency: number; onEvent?: (event: SyncEvent) => void; signal?: AbortSignal },
): Promise<ExecutionResult> {
  const run: Execution = {
    requests, resolutions, ports, options, emit: options.onEvent ?? (() => {}),
    images: new Map(), totals: { blobsCopied: 0, blobsMounted: 0, blobsPresent: 0, bytesCopied: 0 }, usable: new Map(resolutions), settled: [],
  };
  await copyMissing(run);
  await tagHeld(run);
  // Human tags (…:1.27) for people and tools that browse the backup: one per source tag and
  // repository, placed one after another so that two digests of one tag in this run settle in order.
  await placeHumanTags(run.settled, resolutions, ports, run.emit);
  await refreshAttachments(run);
  for (const request of requests) {
    if (run.images.has(request.key)) continue;
    const r = resolutions.get(request.key);
    run.images.set(request.key, { result: r?.state === 'present' ? 'present' : r?.state === 'lost' ? 'lost' : 'error', reason: r?.reason ?? 'not resolved' });
  }
  const plan = buildPlan(workloads, run.usable, config);
  return { plan, images: run.images, workloads: await patchWorkloads(run, plan, workloads, config), totals: run.totals };
}

const resolvedDigest = (run: Execution, r: ImageRequest) => (run.resolutions.get(r.key) as Extract<Resolution, { digest: string }>).digest;
const sourceName = (r: ImageRequest) => `${r.source.registry}/${r.source.repository}${r.source.tag ? `:${r.source.tag}` : ''}`;
const backupName = (run: Execution, r: ImageRequest) => `${r.backup.registry}/${r.backup.repository}:${anchorTag(resolvedDigest(run, r))}`;

/**
 * The requests in `state`, grouped by backup anchor: requests that name one digest of one
 * repository (by tag and by the digest pods run, or by two tags) share one copy or one tagging.
 */
function byAnchor(run: Execution, state: 'copy' | 'tag'): Map<string, ImageRequest[]> {
  const groups = new Map<string, ImageRequest[]>();
  for (const r of run.requests) if (run.resolutions.get(r.key)?.state === state) groups.set(backupName(run, r), [...(groups.get(backupName(run, r)) ?? []), r]);
  return groups;
}

/**
 * Copy: each distinct image once, to the anchor tag of its digest, then its seal. The engine
 * verifies that the anchor answers with the digest before it reports success.
 */
async function copyMissing(run: Execution): Promise<void> {
  const { ports, emit, images, totals } = run;
  const copies = byAnchor(run, 'copy');
  const toCopy = [...copies.values()].map((group) => group[0]!);
  if (!toCopy.length) return;
  emit({ kind: 'copying', images: toCopy.length });
  // What the backup holds already (from earlier runs, other clusters) is where a new image's base layers are looked for.
  const held = run.requests.filter((r) => ['present', 'tag'].includes(run.resolutions.get(r.key)?.state ?? ''));
  ports.copier.knownRepositories?.(held.map((r) => ({ registry: r.backup.registry, repository: r.backup.repository })));
  const outcomes = await ports.copier.copyAll(toCopy.map((r) => {
    const { tag: _, ...repository } = r.backup;
    const digest = resolvedDigest(run, r);
    return { source: { ...r.source, digest }, target: { ...repository, tag: anchorTag(digest) }, alsoTags: [sealTag(digest)] };
  }), Math.max(2, Math.ceil(run.options.concurrency / 2)));
  outcomes.forEach((outcome, i) => copies.get(backupName(run, toCopy[i]!))!.forEach((request, index) => {
    const first = index === 0;
    if ('result' in outcome) {
      const c = outcome.result.counts;
      if (first) {
        totals.blobsCopied += c.blobsCopied;
        totals.blobsMounted += c.blobsMounted;
        totals.blobsPresent += c.blobsPresent;
        totals.bytesCopied += c.bytesCopied;
      }
      // Another run (another cluster) may have copied it since this one planned: then nothing moved.
      const present = outcome.result.status === 'present';
      images.set(request.key, present ? { result: 'present', reason: 'already in the backup (copied by another run meanwhile)' } : { result: 'copied', reason: 'copied and verified' });
      if (first) emit({ kind: 'image-copied', source: sourceName(request), backup: backupName(run, request), digest: outcome.result.digest, bytes: c.bytesCopied, status: outcome.result.status });
      run.settled.push(request);
    } else {
      const message = oneLine(outcome.error);
      images.set(request.key, { result: 'failed', reason: message });
      run.usable.set(request.key, { state: 'error', reason: `copy failed: ${message}` });
      if (first) emit({ kind: 'image-failed', source: sourceName(request), message });
    }
  }));
}

/**
 * Tag: the backup holds all of the digest, but not every manifest under a tag of its own (a copy
 * an earlier version made, or one a human tag left): add the anchors and the seal from the
 * backup's own bytes, and check the seal.
 */
async function tagHeld(run: Execution): Promise<void> {
  const { ports, options, emit, images } = run;
  const tagSlots = createLimiter(options.concurrency);
  await Promise.all([...byAnchor(run, 'tag').values()].map((group) => tagSlots(async () => {
    const [request] = group as [ImageRequest];
    const digest = resolvedDigest(run, request);
    try {
      if (options.signal?.aborted) throw options.signal.reason;
      await ports.copier.tag(request.backup, digest, [anchorTag(digest), sealTag(digest)]);
      const held = await ports.manifests.digestOf(request.backup, sealTag(digest));
      if (held !== digest) throw new Error(`after tagging, ${request.backup.registry}/${request.backup.repository}:${sealTag(digest)} answers ${held ?? 'nothing'} instead of ${digest}`);
      for (const r of group) images.set(r.key, { result: 'tagged', reason: 'the backup held this digest without its anchor tag: tagged, no bytes moved' });
      emit({ kind: 'image-copied', source: sourceName(request), backup: backupName(run, request), digest, bytes: 0, status: 'tagged' });
      run.settled.push(...group);
    } catch (err) {
      const message = oneLine(err);
      for (const r of group) {
        images.set(r.key, { result: 'failed', reason: message });
        run.usable.set(r.key, { state: 'error', reason: `tagging failed: ${message}` });
      }
      emit({ kind: 'image-failed', source: sourceName(request), message });
    }
  })));
}

/**
 * Images already in the backup get what was attached to them upstream since (a new signature,
 * SBOM or referrer), when the source was asked or the pods' digest is known; not when it is gone.
 */
async function refreshAttachments(run: Execution): Promise<void> {
  const refresh = run.requests.filter((r) => {
    const s = run.resolutions.get(r.key);
    const inBackup = s?.state === 'present' || (s?.state === 'tag' && run.images.get(r.key)?.result === 'tagged');
    return inBackup && (r.digest !== undefined || s.upstream !== undefined);
  });
  if (!refresh.length || run.options.signal?.aborted) return;
  await run.ports.copier.refreshAttachments?.(refresh.map((r) => {
    const { tag: _, ...repository } = r.backup;
    const digest = resolvedDigest(run, r);
    return { source: { ...r.source, digest }, target: { ...repository, digest } };
  }), run.options.concurrency);
}

/** Patch: one patch per workload that has a container to patch, as re-planned after the copies. */
async function patchWorkloads(run: Execution, plan: Plan, workloads: Workload[], config: PlanConfig): Promise<ExecutionResult['workloads']> {
  const { ports, options, emit } = run;
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
      const deciding = decidingRows(containers);
      const failed = deciding.find((c) => c.action === 'error');
      const result: WorkloadResult = failed ? 'failed' : deciding.every((c) => c.action === 'unchanged') ? 'unchanged' : 'skipped';
      results.push({ ...base, result, reason: (failed ?? deciding.find((c) => c.action === 'skip') ?? deciding[0]!).reason });
      return;
    }
    if (options.signal?.aborted) {
      results.push({ ...base, result: 'skipped', reason: `the run stopped: ${oneLine(options.signal.reason)}` });
      return;
    }
    try {
      await ports.pullSecrets?.ensure(workload.namespace);
      results.push({ ...base, ...(await patchWorkload(workload, containers, run.usable, config, ports.patcher, emit, ports.pullSecrets?.name)) });
    } catch (err) {
      const message = oneLine(err);
      emit({ kind: 'workload-failed', workload: key, message });
      results.push({ ...base, result: 'failed', reason: message });
    }
  })));
  return results;
}

/**
 * The human tag points at the copy of the digest the source tag names upstream: it moves when this
 * run copied (or tagged) exactly that digest, and is created when missing. It is never set to a
 * digest the tag no longer names upstream (a workload still running an older build), so runs
 * converge and two clusters with different digests of one tag never flip it; when upstream is
 * unknown (gone), the copy is tagged only where the tag is missing. Before it moves, the
 * digest it leaves gets its anchors and seal if it had none (a copy an earlier version made): moving
 * a human tag never leaves a manifest untagged for garbage collection. Failures here are warnings:
 * every copy is already held by its anchor tag.
 */
async function placeHumanTags(settled: ImageRequest[], resolutions: Map<string, Resolution>, ports: { copier: ImageCopier; manifests: ManifestLookup }, emit: (e: SyncEvent) => void): Promise<void> {
  const groups = new Map<string, ImageRequest[]>();
  for (const request of settled) {
    const tag = request.backup.tag;
    if (tag === undefined || isAnchorTag(tag)) continue;
    const key = `${request.backup.registry}/${request.backup.repository}:${tag}`;
    groups.set(key, [...(groups.get(key) ?? []), request]);
  }
  const slots = createLimiter(8);
  await Promise.all([...groups.entries()].map(([name, group]) => slots(async () => {
    for (const request of group) {
      const resolution = resolutions.get(request.key) as Extract<Resolution, { digest: string }>;
      const tag = request.backup.tag!;
      try {
        // An older build is never written under the tag, not even where it is missing: another run
        // (another cluster) may be placing upstream's digest there at this moment.
        if (resolution.upstream !== undefined && resolution.upstream !== resolution.digest) continue;
        const current = await ports.manifests.digestOf(request.backup, tag);
        if (current === resolution.digest) continue;
        // Upstream unknown (gone, or the source failing): the tag is created when missing, never moved.
        if (current !== undefined && resolution.upstream === undefined) continue;
        if (current !== undefined && (await ports.manifests.digestOf(request.backup, sealTag(current))) !== current) {
          await ports.copier.tag(request.backup, current, [anchorTag(current), sealTag(current)]);
        }
        await ports.copier.tag(request.backup, resolution.digest, tag);
      } catch (err) {
        emit({ kind: 'tag-warning', backup: name, message: `could not set the human tag (every copy stays held by its anchor tag): ${oneLine(err)}` });
      }
    }
  })));
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
    const rediscovered = await reread(patcher, current);
    if (rediscovered === 'gone') return { result: 'skipped', reason: 'deleted during the run' };
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
    if (replanned.some((c) => c.code === 'unresolved')) {
      return { result: 'skipped', reason: 'its images changed during the run; the other writer\'s change is kept, and the next run will back it up' };
    }
    plannedContainers = replanned;
  }
}

/** A workload as it is now, after a conflict: 'gone' when deleted, undefined when it has no pod template. */
export async function reread(patcher: Patcher, workload: Workload): Promise<Workload | 'gone' | undefined> {
  const fresh = await patcher.read(workload.kind, workload.namespace, workload.name);
  if (!fresh) return 'gone';
  return discoverWorkloads({ objects: { [workload.kind]: [fresh] } })[0];
}
