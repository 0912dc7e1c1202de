// Patch bodies: only image fields and our annotation, with the resourceVersion planned against as a
// precondition. Built-in kinds get a strategic merge patch (lists merge by name); custom kinds a
// JSON merge patch (lists are replaced, so each is sent back whole, only images changed). Pure.
import { originalImagesAnnotation, unnamedContainer, type FullPodSpec, type Workload, type WorkloadKind } from './workloads.ts';
import type { ContainerType } from './kube-object.ts';

export interface ImageChange {
  container: string;
  type: ContainerType;
  image: string;
}

/**
 * What the annotation records per container: the image it ran before image-clone first changed it,
 * and the backup image image-clone set (so restore can tell our change from somebody else's).
 */
export interface RecordedImage {
  original: string;
  backup: string;
}

export interface RecordedImages {
  containers?: Record<string, RecordedImage>;
  initContainers?: Record<string, RecordedImage>;
  /** An imagePullSecrets entry image-clone added (--pull-secret), removed again by restore. */
  pullSecret?: string;
}

const listField = { container: 'containers', initContainer: 'initContainers' } as const;

/**
 * Wraps a pod spec fragment at the place each kind keeps its pod template (a custom kind's at
 * spec.template, where discovery reads it; kube/patch.ts moves it to the kind's own place).
 */
function atPodSpec(kind: WorkloadKind, podSpec: object): object {
  switch (kind) {
    case 'Pod':
      return { spec: podSpec };
    case 'CronJob':
      return { spec: { jobTemplate: { spec: { template: { spec: podSpec } } } } };
    default:
      return { spec: { template: { spec: podSpec } } };
  }
}

/** The recorded images, or undefined when there is no annotation or it is not ours to read. */
export function readRecorded(annotations: Record<string, string> | undefined): RecordedImages | undefined {
  const text = annotations?.[originalImagesAnnotation];
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const valid = (v: unknown) => v === undefined || (typeof v === 'object' && v !== null && Object.values(v).every(
      (r) => typeof r === 'object' && r !== null && typeof (r as RecordedImage).original === 'string' && typeof (r as RecordedImage).backup === 'string'));
    return parsed && typeof parsed === 'object' && valid(parsed.containers) && valid(parsed.initContainers) ? (parsed as RecordedImages) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Points containers at new images in one patch. The annotation keeps the first original of each
 * container: a later run (a re-patch) never records a backup copy as the "original".
 */
export function imagePatch(workload: Workload, changes: ImageChange[], pullSecret?: string): object {
  const recorded: RecordedImages = structuredClone(readRecorded(workload.annotations) ?? {});
  const podSpec: Record<string, Array<Record<string, string>>> = {};
  // imagePullSecrets merge by name: adding ours keeps the ones already there.
  if (pullSecret && !workload.pullSecrets.includes(pullSecret)) {
    podSpec.imagePullSecrets = [{ name: pullSecret }];
    recorded.pullSecret = pullSecret;
  }
  for (const change of changes) {
    if (change.type === 'ephemeralContainer') continue;
    const field = listField[change.type];
    const before = workload.containers.find((c) => c.name === change.container && c.type === change.type)?.image;
    if (before !== undefined) {
      const entries = (recorded[field] ??= {});
      entries[change.container] = { original: entries[change.container]?.original ?? before, backup: change.image };
    }
    (podSpec[field] ??= []).push({ name: change.container, image: change.image });
  }
  if (workload.template) Object.assign(podSpec, wholeLists(workload.template, podSpec));
  return {
    metadata: {
      // A precondition: the API server answers 409 if someone changed the object since we read it.
      resourceVersion: workload.resourceVersion,
      annotations: { [originalImagesAnnotation]: JSON.stringify(recorded) },
    },
    ...atPodSpec(workload.kind, podSpec),
  };
}

/** Puts the recorded original images back and removes the annotation. */
export function restorePatch(workload: Workload, changes: ImageChange[]): object {
  const podSpec: Record<string, Array<Record<string, string>>> = {};
  const added = readRecorded(workload.annotations)?.pullSecret;
  if (added && workload.pullSecrets.includes(added)) podSpec.imagePullSecrets = [{ name: added, $patch: 'delete' }];
  for (const change of changes) {
    if (change.type === 'ephemeralContainer') continue;
    (podSpec[listField[change.type]] ??= []).push({ name: change.container, image: change.image });
  }
  if (workload.template) Object.assign(podSpec, wholeLists(workload.template, podSpec));
  return {
    metadata: { resourceVersion: workload.resourceVersion, annotations: { [originalImagesAnnotation]: null } },
    ...atPodSpec(workload.kind, podSpec),
  };
}

type Fragment = Record<string, Array<Record<string, string>>>;

/**
 * For a JSON merge patch: each list the strategic fragment touches, whole, as the object holds it,
 * with the fragment's images set (a container is matched by name, or an unnamed one by its place),
 * and imagePullSecrets with the fragment's entry added or (`$patch: delete`) taken out.
 */
function wholeLists(template: FullPodSpec, fragment: Fragment): Record<string, unknown[] | null> {
  const lists: Record<string, unknown[] | null> = {};
  for (const field of ['containers', 'initContainers'] as const) {
    const changes = fragment[field];
    if (!changes) continue;
    lists[field] = (template[field] ?? []).map((container, index) => {
      const name = typeof container.name === 'string' && container.name ? container.name : unnamedContainer(field, index);
      const change = changes.find((c) => c.name === name);
      return change ? { ...container, image: change.image } : container;
    });
  }
  const secret = fragment.imagePullSecrets?.[0];
  if (secret) {
    const kept = (template.imagePullSecrets ?? []).filter((s) => s.name !== secret.name);
    // A merge patch removes a field set to null: no empty list is left behind where there was none.
    lists.imagePullSecrets = secret.$patch === 'delete' ? (kept.length ? kept : null) : [...kept, { name: secret.name }];
  }
  return lists;
}
