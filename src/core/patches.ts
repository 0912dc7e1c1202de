// Patch bodies (strategic merge): only image fields and our annotation, with the resourceVersion
// planned against as a precondition. Pure.
import { originalImagesAnnotation, type ContainerType, type Workload, type WorkloadKind } from './workloads.ts';

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

/** Wraps a pod spec fragment at the place each kind keeps its pod template. */
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
  return {
    metadata: { resourceVersion: workload.resourceVersion, annotations: { [originalImagesAnnotation]: null } },
    ...atPodSpec(workload.kind, podSpec),
  };
}
