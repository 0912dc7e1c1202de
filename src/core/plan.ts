// The plan: a pure function from (workloads, resolved images, config) to actions with reasons.
// `sync --dry-run` prints it; `sync` carries it out.
import { formatReference, parseReference, type ImageReference } from '../reference.ts';
import { backupReference, digestOfAnchorTag, humanTag, isUnderBackup, patchedReference, type BackupLocation, type NamingMode } from './naming.ts';
import { readRecorded } from './patches.ts';
import { runningOrigin, runningReason, type RunningContainer } from './pod-images.ts';
import { selfReason, type SelfIdentity } from './self-recognition.ts';
import type { Workload, WorkloadKind } from './workloads.ts';
import type { WorkloadContainer } from './kube-object.ts';
import type { SettingNames } from './setting-names.ts';

export interface PlanConfig {
  backup: BackupLocation;
  naming: NamingMode;
  /** Patch to `<backup>:<tag>@<digest>` (default) rather than `<backup>:<tag>`. */
  pin: boolean;
  /** Patch workloads that Argo CD, Flux or Helm manage (they will revert it unless told). */
  patchManaged: boolean;
  /** Glob patterns on canonical references: only matching images (all when empty). */
  includeImages: string[];
  excludeImages: string[];
  /** How reasons name the settings they point to (the CLI's flags). */
  names: SettingNames;
  /**
   * image-clone itself, when a run in a cluster found its pod and the controllers above it: backed
   * up, never patched (so is anything labelled as image-clone; see self.ts).
   */
  self?: SelfIdentity;
  /** --pull-secret: bare Pods cannot gain imagePullSecrets, so they are skipped when it is set. */
  pullSecret?: string;
}

/**
 * What resolution found out about one distinct image. `upstream`: the digest the source tag points
 * at now, when the source was asked for it; it differs from `digest` when the tag moved upstream
 * since the workload started (what runs is what is backed up).
 * present: the backup holds the digest under its anchor tag; tag: the backup holds the digest but
 * not under its anchor tag (a copy made before anchor tags, or left untagged): tagged, no bytes move;
 * copy: copied from the source.
 */
export type Resolution =
  | { state: 'present' | 'tag' | 'copy'; digest: string; reason: string; upstream?: string }
  | { state: 'lost'; reason: string }
  | { state: 'error'; reason: string };

/** A distinct image to resolve: a canonical reference and, when pods agree, the digest they run. */
export interface ImageRequest {
  key: string;
  source: ImageReference;
  /** The digest that matters when already known (from the reference, or from the pods). */
  digest?: string;
  /** The backup repository, with the human tag its copies get (none for a digest-only source). */
  backup: ImageReference;
}

export type ImageAction = 'copy' | 'tag' | 'present' | 'lost' | 'excluded' | 'error';
export type WorkloadAction = 'patch' | 'unchanged' | 'skip' | 'error';

export interface PlannedImage {
  /** The resolution key (canonical reference, and the running digest when pods report one). */
  key: string;
  source: string;
  digest: string | null;
  backup: string | null;
  /** The digest the source tag points at now, when the source was asked and it differs from `digest`. */
  upstreamDigest: string | null;
  action: ImageAction;
  reason: string;
  /** Workload containers that use it. */
  usedBy: number;
}

/**
 * Why a container gets its action, for machines and for the pipeline's own decisions (the reason
 * next to it is for people and may change wording).
 */
export type ContainerCode =
  | 'patch' | 'on-backup' | 'recopied' | 'excluded' | 'ephemeral' | 'self' | 'pod-pull-secret' | 'job-immutable'
  | 'managed' | 'not-patched' | 'pod-only' | 'workload-incomplete' | 'invalid-reference' | 'image-lost' | 'backup-lost' | 'unresolved' | 'image-error';

export interface PlannedContainer {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  container: string;
  image: string;
  newImage: string | null;
  action: WorkloadAction;
  code: ContainerCode;
  reason: string;
  /**
   * Set on an image the workload's pods run that its template does not name (pod-images.ts): a
   * pod that runs it. Such a row is backed up and never patched.
   */
  pod?: string;
}

export interface Plan {
  images: PlannedImage[];
  workloads: PlannedContainer[];
  summary: {
    images: Record<ImageAction, number>;
    workloads: Record<WorkloadAction, number>;
    /** Images whose tag moved upstream since their workloads started (they run an older digest). */
    drifted: number;
  };
}

/** The image key: canonical reference plus the digest pods report (two digests of one tag are two images). */
function imageKey(source: ImageReference, runningDigest: string | undefined): string {
  const canonical = formatReference(source);
  return runningDigest && !source.digest ? `${canonical}@${runningDigest}` : canonical;
}

type ContainerImage =
  | { kind: 'invalid'; reason: string }
  | { kind: 'backup' }
  | { kind: 'excluded'; reason: string }
  /** `ours`: the container already runs the backup copy image-clone set; the copy is still checked. */
  | { kind: 'image'; request: ImageRequest; ours?: boolean };

/** How each container's image reads: invalid, already a backup copy, excluded, or an image to resolve. */
function classify(container: WorkloadContainer, workload: Workload, config: PlanConfig): ContainerImage {
  const { image, runningDigest } = container;
  let source: ImageReference;
  try {
    source = parseReference(image);
  } catch (err) {
    return { kind: 'invalid', reason: (err as Error).message };
  }
  if (isUnderBackup(source, config.backup)) return ourBackup(source, container, workload);
  const canonical = formatReference(source);
  if (config.includeImages.length && !config.includeImages.some((g) => globMatch(g, canonical))) {
    return { kind: 'excluded', reason: `not matched by ${config.names.includeImages}` };
  }
  const excludedBy = config.excludeImages.find((g) => globMatch(g, canonical));
  if (excludedBy) return { kind: 'excluded', reason: `matched by ${config.names.excludeImages} ${excludedBy}` };
  let backup: ImageReference;
  try {
    backup = backupReference(source, config.backup, config.naming);
  } catch (err) {
    return { kind: 'invalid', reason: (err as Error).message };
  }
  const digest = source.digest ?? runningDigest;
  return { kind: 'image', request: { key: imageKey(source, runningDigest), source, backup, ...(digest ? { digest } : {}) } };
}

/** The digest a backup reference image-clone set names: pinned (…:tag@digest, …@digest), or an anchor tag (--no-pin). */
const copyDigest = (copy: ImageReference) => copy.digest ?? (copy.tag === undefined ? undefined : digestOfAnchorTag(copy.tag));

/**
 * A container running a backup copy that our annotation says we set: the copy is still checked
 * each run (one HEAD), and copied again from the recorded original if it has vanished.
 */
function ourBackup(current: ImageReference, container: WorkloadContainer, workload: Workload): ContainerImage {
  const field = container.type === 'initContainer' ? 'initContainers' : 'containers';
  const recorded = readRecorded(workload.annotations)?.[field]?.[container.name];
  const digest = copyDigest(current);
  if (!recorded || recorded.backup !== container.image || !digest) return { kind: 'backup' };
  let original: ImageReference;
  try {
    original = parseReference(recorded.original);
  } catch {
    return { kind: 'backup' };
  }
  const tag = humanTag(original);
  const backup = { registry: current.registry, repository: current.repository, ...(tag === undefined ? {} : { tag }) };
  return { kind: 'image', ours: true, request: { key: imageKey(original, digest), source: original, backup, digest } };
}

/** The distinct images the workloads need resolved (each once, whatever the number of users). */
export function imagesToResolve(workloads: Workload[], config: PlanConfig): ImageRequest[] {
  const requests = new Map<string, ImageRequest>();
  for (const workload of workloads) {
    for (const container of [...workload.containers, ...runningToPlan(workload)]) {
      const c = classify(container, workload, config);
      if (c.kind === 'image' && !requests.has(c.request.key)) requests.set(c.request.key, c.request);
    }
  }
  return [...requests.values()];
}

export function buildPlan(workloads: Workload[], resolutions: Map<string, Resolution>, config: PlanConfig): Plan {
  const images = new Map<string, PlannedImage>();
  const containers: PlannedContainer[] = [];
  for (const workload of workloads) {
    const running = new Set<WorkloadContainer>(runningToPlan(workload));
    for (const container of [...workload.containers, ...running]) {
      const pod = running.has(container) ? container as RunningContainer : undefined;
      const base = {
        kind: workload.kind, namespace: workload.namespace, name: workload.name, container: container.name, image: container.image, ...(pod ? { pod: pod.pod } : {}),
      };
      // A row for an image only pods run says which pods (the reason of the row of a template's image does not).
      const where = (reason: string) => (pod ? `${reason} (${runningOrigin(pod)})` : reason);
      const c = classify(container, workload, config);
      if (c.kind === 'invalid') {
        containers.push({ ...base, newImage: null, action: 'error', code: 'invalid-reference', reason: where(c.reason) });
        continue;
      }
      if (c.kind === 'backup') {
        containers.push({ ...base, newImage: null, action: 'unchanged', code: 'on-backup', reason: where('already runs from the backup registry') });
        continue;
      }
      if (c.kind === 'excluded') {
        const key = container.image;
        const planned = images.get(key) ?? { key, source: container.image, digest: null, backup: null, upstreamDigest: null, action: 'excluded' as const, reason: c.reason, usedBy: 0 };
        planned.usedBy++;
        images.set(key, planned);
        containers.push({ ...base, newImage: null, action: 'skip', code: 'excluded', reason: where(`image excluded (${c.reason})`) });
        continue;
      }
      const { request } = c;
      // Not resolved: an image another writer put there while the run went on (a re-plan after a conflict).
      const resolved = resolutions.get(request.key);
      const resolution: Resolution = resolved ?? { state: 'error', reason: 'not resolved' };
      const digest = 'digest' in resolution ? resolution.digest : request.digest ?? null;
      const newImage = 'digest' in resolution ? patchedReference(request.backup, resolution.digest, config.pin) : null;
      const upstreamDigest = 'digest' in resolution && resolution.upstream && resolution.upstream !== resolution.digest ? resolution.upstream : null;
      const planned = images.get(request.key) ?? {
        key: request.key, source: formatReference(request.source), digest, backup: formatReference(request.backup),
        upstreamDigest, action: resolution.state, reason: resolution.reason, usedBy: 0,
      };
      planned.usedBy++;
      images.set(request.key, planned);
      const decision = !resolved ? { action: 'error' as const, code: 'unresolved' as const, reason: where(resolution.reason) }
        : c.ours ? ownCopyAction(resolution) : pod ? runningAction(workload, pod, resolution, config) : containerAction(workload, container.type, resolution, config);
      if (pod && c.ours) decision.reason = where(decision.reason);
      containers.push({ ...base, newImage, ...decision });
    }
  }
  // A workload's containers are patched together or not at all: one rollout, never half a workload.
  // (What only its pods run is not part of that rollout, whatever becomes of it.)
  for (const workload of workloads) {
    const own = containers.filter((c) => c.kind === workload.kind && c.namespace === workload.namespace && c.name === workload.name && c.pod === undefined);
    if (own.some((c) => c.action === 'error') && own.some((c) => c.action === 'patch')) {
      for (const c of own.filter((c) => c.action === 'patch')) {
        c.action = 'skip';
        c.code = 'workload-incomplete';
        c.reason = 'another container of this workload cannot be backed up; the workload is left as it is';
      }
    }
  }
  const imageList = [...images.values()];
  return {
    images: imageList,
    workloads: containers,
    summary: {
      images: count(imageList.map((i) => i.action), ['copy', 'tag', 'present', 'lost', 'excluded', 'error']),
      workloads: count(containers.map((c) => c.action), ['patch', 'unchanged', 'skip', 'error']),
      drifted: imageList.filter((i) => i.upstreamDigest !== null).length,
    },
  };
}

type ContainerDecision = { action: WorkloadAction; code: ContainerCode; reason: string };

/**
 * The rows that decide what a workload adds up to (its action, its result): an image only its pods
 * run is no part of its patch, and counts only when it fails.
 */
export function decidingRows<T extends Pick<PlannedContainer, 'action' | 'pod'>>(rows: T[]): T[] {
  const deciding = rows.filter((r) => r.pod === undefined || r.action === 'error');
  return deciding.length ? deciding : rows;
}

function containerAction(workload: Workload, type: string, resolution: Resolution, config: PlanConfig): ContainerDecision {
  if (resolution.state === 'lost') return { action: 'skip', code: 'image-lost', reason: 'image lost: missing upstream and in the backup' };
  if (resolution.state === 'error') return { action: 'error', code: 'image-error', reason: resolution.reason };
  if (type === 'ephemeralContainer') return { action: 'skip', code: 'ephemeral', reason: 'ephemeral containers are reported, never patched' };
  if (workload.notPatched) return { action: 'skip', code: 'not-patched', reason: workload.notPatched };
  const self = selfReason(workload, config.self);
  if (self) return { action: 'skip', code: 'self', reason: `${self}: its images are backed up, it is never patched` };
  if (config.pullSecret && workload.kind === 'Pod' && !workload.pullSecrets.includes(config.pullSecret)) {
    return { action: 'skip', code: 'pod-pull-secret', reason: `a Pod's imagePullSecrets cannot change, and it lacks ${config.pullSecret}; recreate it with the secret, or let a controller own it` };
  }
  if (workload.kind === 'Job') return { action: 'skip', code: 'job-immutable', reason: "a Job's pod template is immutable; the image is backed up" };
  if (workload.managedBy && !config.patchManaged) {
    return { action: 'skip', code: 'managed', reason: `managed by ${workload.managedBy}, which would revert a patch; use ${config.names.kustomizeOutput}, or ${config.names.patchManaged}` };
  }
  const when = { copy: 'after the image is copied and verified', tag: 'after its anchor tag is added and verified', present: 'the backup already holds this digest' };
  return { action: 'patch', code: 'patch', reason: when[resolution.state] };
}

/** An image only the workload's pods run: backed up, never patched (the template is what is patched). */
function runningAction(workload: Workload, container: RunningContainer, resolution: Resolution, config: PlanConfig): ContainerDecision {
  if (resolution.state === 'lost') return { action: 'skip', code: 'image-lost', reason: `image lost: missing upstream and in the backup (${runningOrigin(container)})` };
  if (resolution.state === 'error') return { action: 'error', code: 'image-error', reason: `${resolution.reason} (${runningOrigin(container)})` };
  const why = runningReason(container);
  if (selfReason(workload, config.self)) return { action: 'skip', code: 'self', reason: why };
  return { action: 'skip', code: container.type === 'ephemeralContainer' ? 'ephemeral' : 'pod-only', reason: why };
}

/**
 * What the workload's pods run besides its template, less what the template's row covers: a pod
 * that still runs the original image image-clone replaced with the backup copy the template now
 * names, at that copy's digest (or at no digest yet), is the rollout image-clone started.
 */
function runningToPlan(workload: Workload): RunningContainer[] {
  const recorded = readRecorded(workload.annotations);
  return (workload.running ?? []).filter((c) => {
    if (c.type === 'ephemeralContainer') return true;
    const entry = recorded?.[c.type === 'initContainer' ? 'initContainers' : 'containers']?.[c.name];
    if (entry?.original !== c.image || !workload.containers.some((t) => t.type === c.type && t.name === c.name && t.image === entry.backup)) return true;
    if (!c.runningDigest) return false;
    try {
      return copyDigest(parseReference(entry.backup)) !== c.runningDigest;
    } catch {
      return true;
    }
  });
}

/** A container already on our backup copy: nothing to patch, but the copy must exist. */
function ownCopyAction(resolution: Resolution): ContainerDecision {
  if (resolution.state === 'present') return { action: 'unchanged', code: 'on-backup', reason: 'runs from the backup, which holds its digest' };
  if (resolution.state === 'copy') return { action: 'unchanged', code: 'recopied', reason: 'runs from the backup, whose copy had vanished: copied again from the original' };
  if (resolution.state === 'tag') return { action: 'unchanged', code: 'on-backup', reason: 'runs from the backup, which holds its digest; its anchor tag is added' };
  if (resolution.state === 'lost') return { action: 'error', code: 'backup-lost', reason: 'runs from a backup copy that has vanished, and the original is gone too' };
  return { action: 'error', code: 'image-error', reason: resolution.reason };
}

function count<T extends string>(values: T[], keys: T[]): Record<T, number> {
  const counts = Object.fromEntries(keys.map((k) => [k, 0])) as Record<T, number>;
  for (const v of values) counts[v]++;
  return counts;
}

/** Glob on canonical references: `*` matches any run of characters (slashes too), `?` one character. */
export function globMatch(glob: string, text: string): boolean {
  const pattern = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${pattern}$`).test(text);
}
