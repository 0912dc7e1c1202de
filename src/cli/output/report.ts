// The report of a real sync run: what each image and workload became, and the totals.
import type { ExecutionResult, ImageResult, WorkloadResult } from '../../core/execute.ts';
import type { PlannedContainer, PlannedImage } from '../../core/plan.ts';
import { outcome } from './colour.ts';
import { formatBytes, formatDuration } from './format.ts';
import { renderTable } from './plan.ts';

/** The document `sync -o json|yaml` prints after a run; schemaVersion changes only when a field changes meaning. */
export interface RunReport {
  schemaVersion: 1;
  dryRun: false;
  backup: string;
  images: Array<Omit<PlannedImage, 'usedBy' | 'key'> & { result: ImageResult; resultReason: string }>;
  workloads: Array<PlannedContainer & { result: WorkloadResult; resultReason: string }>;
  summary: {
    images: Record<ImageResult, number>;
    blobs: { copied: number; mounted: number; present: number };
    workloads: Record<WorkloadResult, number>;
    /** Images whose tag moved upstream since their workloads started. */
    drifted: number;
    bytesTransferred: number;
    durationMs: number;
  };
}

export function runReport(result: ExecutionResult, backup: string, durationMs: number): RunReport {
  const images = result.plan.images.map(({ usedBy: _, key, ...image }) => {
    const outcome = result.images.get(key) ?? { result: image.action === 'excluded' ? 'excluded' as const : 'error' as const, reason: image.reason };
    return { ...image, result: outcome.result, resultReason: outcome.reason };
  });
  const byWorkload = new Map(result.workloads.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, w]));
  const workloads = result.plan.workloads.map((c) => {
    const w = byWorkload.get(`${c.kind}/${c.namespace}/${c.name}`);
    return { ...c, result: w?.result ?? 'skipped', resultReason: w?.reason ?? c.reason };
  });
  const countOf = <T extends string>(values: T[], keys: T[]) => Object.fromEntries(keys.map((k) => [k, values.filter((v) => v === k).length])) as Record<T, number>;
  return {
    schemaVersion: 1,
    dryRun: false,
    backup,
    images,
    workloads,
    summary: {
      images: countOf(images.map((i) => i.result), ['copied', 'tagged', 'present', 'lost', 'excluded', 'failed', 'error']),
      blobs: { copied: result.totals.blobsCopied, mounted: result.totals.blobsMounted, present: result.totals.blobsPresent },
      workloads: countOf(result.workloads.map((w) => w.result), ['patched', 'unchanged', 'skipped', 'failed']),
      drifted: result.plan.summary.drifted,
      bytesTransferred: result.totals.bytesCopied,
      durationMs: Math.round(durationMs),
    },
  };
}

export function renderRunSummary(report: RunReport, width = 80): string {
  const workloads = new Map<string, { workload: string; result: string; reason: string }>();
  for (const c of report.workloads) {
    const key = `${c.kind}/${c.namespace}/${c.name}`;
    if (!workloads.has(key)) workloads.set(key, { workload: key, result: c.result, reason: c.resultReason });
  }
  const s = report.summary;
  const seconds = Math.max(s.durationMs / 1000, 0.001);
  const details = renderTable(['WORKLOAD', 'RESULT', 'REASON'], [...workloads.values()].map((w) => [w.workload, w.result, w.reason]),
    [{ weight: 4, wrap: 'hard' }, { weight: 0, fixed: 9, wrap: 'hard', colour: outcome }, { weight: 5, wrap: 'words' }], width);
  const summary = renderTable(['', 'SUMMARY'], [
    ['Images', `${s.images.copied} copied, ${s.images.tagged ? `${s.images.tagged} tagged, ` : ''}${s.images.present} already present, ${s.images.lost} lost, ${s.images.failed + s.images.error} failed, ${s.images.excluded} excluded${s.drifted ? `; ${s.drifted} run an older digest than their tag names upstream` : ''}`],
    ['Blobs', `${s.blobs.copied} copied, ${s.blobs.mounted} mounted, ${s.blobs.present} already present`],
    ['Workloads', `${s.workloads.patched} patched, ${s.workloads.unchanged} unchanged, ${s.workloads.skipped} skipped, ${s.workloads.failed} failed`],
    ['Transferred', `${formatBytes(s.bytesTransferred)} in ${formatDuration(s.durationMs)} (${formatBytes(s.bytesTransferred / seconds)}/s)`],
  ], [{ weight: 0, fixed: 11, wrap: 'hard' }, { weight: 1, wrap: 'words' }], width);
  return `${workloads.size ? details : 'No workloads found.'}\n\n${summary}\n`;
}
