// Custom workloads: kinds of custom resources that hold a pod template at a known place, which
// image-clone lists and patches like a Deployment when the cluster serves them (API discovery), with
// a JSON merge patch (custom resources take no strategic merge patch). The ones known out of the
// box, and --workload-kind GROUP/KIND=PATH for any other. Pure: no I/O.
import { InvalidSettingError } from './errors.ts';
import { qualifiedKind } from './workloads.ts';

/** A custom kind to look for: its API group, its kind, and the dot path of its pod template. */
export interface CustomKindSpec {
  group: string;
  kind: string;
  /** Path to the pod template (the object holding `metadata` and `spec`), e.g. ['spec', 'template']. */
  path: string[];
  /** The plural resource name, where known before discovery (the shipped RBAC names it). */
  resource?: string;
}

/** A custom kind the cluster serves: its spec, the version image-clone reads it at, and its resource. */
export interface CustomKind extends CustomKindSpec {
  version: string;
  resource: string;
  /** `Kind.group`: how plans, reports and --kinds name it. */
  name: string;
}

/** Supported out of the box (docs/custom-workloads.md lists them, manifests/ grants them). */
export const knownCustomKinds: readonly CustomKindSpec[] = [
  { group: 'argoproj.io', kind: 'Rollout', resource: 'rollouts', path: ['spec', 'template'] },
  { group: 'apps.kruise.io', kind: 'CloneSet', resource: 'clonesets', path: ['spec', 'template'] },
  { group: 'apps.kruise.io', kind: 'StatefulSet', resource: 'statefulsets', path: ['spec', 'template'] },
  { group: 'apps.kruise.io', kind: 'DaemonSet', resource: 'daemonsets', path: ['spec', 'template'] },
  { group: 'serving.knative.dev', kind: 'Service', resource: 'services', path: ['spec', 'template'] },
  { group: 'keda.sh', kind: 'ScaledJob', resource: 'scaledjobs', path: ['spec', 'jobTargetRef', 'template'] },
];

const segment = /^[A-Za-z0-9_-]+$/;
const groupPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;
const kindPattern = /^[A-Z][A-Za-z0-9]*$/;

/** A dot path, checked: spec.template -> ['spec', 'template']. */
export function parsePath(text: string, where: string): string[] {
  const parts = text.split('.');
  if (!text || parts.some((p) => !segment.test(p))) {
    throw new InvalidSettingError(where, `the path ${JSON.stringify(text)} must be field names joined by dots, e.g. spec.template`);
  }
  return parts;
}

/** A custom kind as GROUP/KIND=PATH, e.g. example.com/WebApp=spec.podTemplate (the CLI's --workload-kind). */
export function parseWorkloadKind(text: string): CustomKindSpec {
  const where = `custom kind ${text}`;
  const match = /^([^/=]+)\/([^/=]+)=(.+)$/.exec(text.trim());
  if (!match) throw new InvalidSettingError(where, `expected GROUP/KIND=PATH, e.g. example.com/WebApp=spec.template`);
  const [, group, kind, path] = match as unknown as [string, string, string, string];
  if (!groupPattern.test(group)) throw new InvalidSettingError(where, `${JSON.stringify(group)} is not the API group of a custom resource (a DNS name such as example.com)`);
  if (!kindPattern.test(kind)) throw new InvalidSettingError(where, `${JSON.stringify(kind)} is not a kind (as in the resource's "kind:", e.g. WebApp)`);
  return { group, kind, path: parsePath(path, where) };
}

/** The kinds to look for: the known ones, and the user's (which win for the same group and kind). */
export function customKindSpecs(userKinds: CustomKindSpec[]): CustomKindSpec[] {
  const byName = new Map<string, CustomKindSpec>();
  for (const spec of [...knownCustomKinds, ...userKinds]) byName.set(qualifiedKind(spec.group, spec.kind), spec);
  return [...byName.values()];
}

/** The value at `path` in an object, if every step is an object. */
export function valueAt(object: unknown, path: string[]): unknown {
  let current = object;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** `value` wrapped in objects along `path`: ['spec', 'template'] and v -> { spec: { template: v } }. */
export function nestAt(path: string[], value: unknown): Record<string, unknown> {
  return path.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), value as Record<string, unknown>);
}
