// The documents `sync -o json|yaml` prints, before (the plan) and after (the report) a run, in one
// vocabulary: images, workloads and containers, each counted as what it is. schema/report.schema.json
// describes them (and restore's and copy's); schemaVersion changes whenever a field changes meaning.
import type { ExecutionResult, ImageResult, WorkloadResult } from '../../core/execute.ts';
import { decidingRows, type ImageAction, type Plan, type PlannedContainer, type PlannedImage, type WorkloadAction } from '../../core/plan.ts';

export const schemaVersion = 2;

/** One distinct image: a source at one digest, copied to one backup name (the plan's image, without its internal key). */
export type ImageRow = Omit<PlannedImage, 'key' | 'usedBy'> & {
  /** How many containers run it. */
  containers: number;
};

/** One workload: the action is the one its containers add up to (they are patched together or not at all). */
export interface WorkloadRow {
  kind: PlannedContainer['kind'];
  namespace: string;
  name: string;
  action: WorkloadAction;
  reason: string;
  containers: number;
}

export type ContainerRow = PlannedContainer;

type Counts<K extends string> = { total: number } & Record<K, number>;

export interface PlanDocument {
  schemaVersion: typeof schemaVersion;
  kind: 'plan';
  dryRun: boolean;
  backup: string;
  images: ImageRow[];
  workloads: WorkloadRow[];
  containers: ContainerRow[];
  summary: { images: Counts<ImageAction>; workloads: Counts<WorkloadAction>; containers: Counts<WorkloadAction>; drifted: number };
}

export interface RegistryUse {
  registry: string;
  requests: number;
  manifestGets: number;
  gaveUp: string | null;
}

export type ContainerResult = WorkloadResult;
type Outcome<R> = { result: R; resultReason: string };

export interface RunReport {
  schemaVersion: typeof schemaVersion;
  kind: 'report';
  dryRun: false;
  backup: string;
  images: Array<ImageRow & Outcome<ImageResult>>;
  workloads: Array<WorkloadRow & Outcome<WorkloadResult>>;
  containers: Array<ContainerRow & Outcome<ContainerResult>>;
  summary: {
    images: Counts<ImageResult>;
    workloads: Counts<WorkloadResult>;
    containers: Counts<ContainerResult>;
    blobs: { copied: number; mounted: number; present: number };
    /** Images whose tag moved upstream since their workloads started (they run an older digest). */
    drifted: number;
    bytesTransferred: number;
    /** Per registry: requests, manifest GETs (what Docker Hub counts as pulls), and why the run gave it up, if it did. */
    registries: RegistryUse[];
    durationMs: number;
  };
}

const imageActions: ImageAction[] = ['copy', 'tag', 'present', 'lost', 'excluded', 'error'];
const workloadActions: WorkloadAction[] = ['patch', 'unchanged', 'skip', 'error'];
const imageResults: ImageResult[] = ['copied', 'tagged', 'present', 'lost', 'excluded', 'failed', 'error'];
const workloadResults: WorkloadResult[] = ['patched', 'unchanged', 'skipped', 'failed'];

function countBy<K extends string>(values: K[], keys: K[]): Counts<K> {
  const counts = { total: values.length, ...Object.fromEntries(keys.map((k) => [k, 0])) } as Counts<K>;
  for (const v of values) (counts as Record<K, number>)[v]++;
  return counts;
}

const workloadKey = (w: { kind: string; namespace: string; name: string }) => `${w.kind}/${w.namespace}/${w.name}`;

/**
 * The plan's image rows, one per distinct image. The plan resolves by reference as written (a
 * container on our backup copy is keyed by its pinned digest, one on the original by its tag), so
 * one image can appear under two keys: rows with the same source, digest and backup are one image.
 */
function distinctImages(images: PlannedImage[]): Array<{ row: ImageRow; keys: string[] }> {
  const rank: ImageAction[] = ['error', 'lost', 'copy', 'tag', 'present', 'excluded'];
  const rows = new Map<string, { row: ImageRow; keys: string[] }>();
  for (const { key, usedBy, ...image } of images) {
    const id = image.digest ? `${image.source}|${image.digest}|${image.backup}` : `key:${key}`;
    const existing = rows.get(id);
    if (!existing) {
      rows.set(id, { row: { ...image, containers: usedBy }, keys: [key] });
      continue;
    }
    existing.keys.push(key);
    existing.row.containers += usedBy;
    // The row says what the image as a whole needs: the most pressing of its keys' actions.
    if (rank.indexOf(image.action) < rank.indexOf(existing.row.action)) Object.assign(existing.row, { action: image.action, reason: image.reason });
  }
  return [...rows.values()];
}

/** A workload's rows from its containers' rows, in the order they first appear. */
function workloadRows(containers: ContainerRow[]): WorkloadRow[] {
  const groups = new Map<string, ContainerRow[]>();
  for (const c of containers) groups.set(workloadKey(c), [...(groups.get(workloadKey(c)) ?? []), c]);
  return [...groups.values()].map((own) => {
    const rows = decidingRows(own);
    const action: WorkloadAction = rows.some((c) => c.action === 'error') ? 'error'
      : rows.some((c) => c.action === 'patch') ? 'patch'
        : rows.every((c) => c.action === 'unchanged') ? 'unchanged' : 'skip';
    const deciding = rows.find((c) => c.action === action) ?? rows[0]!;
    return { kind: deciding.kind, namespace: deciding.namespace, name: deciding.name, action, reason: deciding.reason, containers: own.length };
  });
}

export function planDocument(plan: Plan, backup: string, dryRun: boolean): PlanDocument {
  const images = distinctImages(plan.images).map((i) => i.row);
  const workloads = workloadRows(plan.workloads);
  return {
    schemaVersion, kind: 'plan', dryRun, backup, images, workloads, containers: plan.workloads,
    summary: {
      images: countBy(images.map((i) => i.action), imageActions),
      workloads: countBy(workloads.map((w) => w.action), workloadActions),
      containers: countBy(plan.workloads.map((c) => c.action), workloadActions),
      drifted: images.filter((i) => i.upstreamDigest !== null).length,
    },
  };
}

/** What a container became: its workload's result where the workload was to change it, else its own action's. */
function containerResult(c: ContainerRow, workload: { result: WorkloadResult; reason: string } | undefined): Outcome<ContainerResult> {
  if (c.action === 'unchanged') return { result: 'unchanged', resultReason: c.reason };
  if (c.action === 'skip') return { result: 'skipped', resultReason: c.reason };
  if (c.action === 'error') return { result: 'failed', resultReason: c.reason };
  return { result: workload?.result === 'unchanged' ? 'skipped' : workload?.result ?? 'skipped', resultReason: workload?.reason ?? c.reason };
}

export function runReport(result: ExecutionResult, backup: string, durationMs: number, registries: RegistryUse[] = []): RunReport {
  const rank: ImageResult[] = ['failed', 'error', 'lost', 'copied', 'tagged', 'present', 'excluded'];
  const images = distinctImages(result.plan.images).map(({ row, keys }) => {
    const outcomes = keys.map((key) => result.images.get(key) ?? { result: row.action === 'excluded' ? 'excluded' as const : 'error' as const, reason: row.reason });
    const worst = outcomes.reduce((a, b) => (rank.indexOf(b.result) < rank.indexOf(a.result) ? b : a));
    return { ...row, result: worst.result, resultReason: worst.reason };
  });
  const byWorkload = new Map(result.workloads.map((w) => [workloadKey(w), w]));
  const workloads = workloadRows(result.plan.workloads).map((w) => {
    const done = byWorkload.get(workloadKey(w));
    return { ...w, result: done?.result ?? 'skipped', resultReason: done?.reason ?? w.reason };
  });
  const containers = result.plan.workloads.map((c) => ({ ...c, ...containerResult(c, byWorkload.get(workloadKey(c))) }));
  return {
    schemaVersion, kind: 'report', dryRun: false, backup, images, workloads, containers,
    summary: {
      images: countBy(images.map((i) => i.result), imageResults),
      workloads: countBy(workloads.map((w) => w.result), workloadResults),
      containers: countBy(containers.map((c) => c.result), workloadResults),
      blobs: { copied: result.totals.blobsCopied, mounted: result.totals.blobsMounted, present: result.totals.blobsPresent },
      drifted: images.filter((i) => i.upstreamDigest !== null).length,
      bytesTransferred: result.totals.bytesCopied,
      durationMs: Math.round(durationMs),
      registries,
    },
  };
}
