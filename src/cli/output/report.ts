// The report of a real sync run: what each image and workload became, and the totals.
import type { RunReport } from './document.ts';
import { outcome } from './colour.ts';
import { podOnly } from './plan-render.ts';
import { formatBytes, formatDuration } from './format.ts';
import { renderTable } from './table.ts';

/** `width`: the terminal's; undefined when stdout is not a terminal (one row per line). */
export function renderRunSummary(report: RunReport, width?: number): string {
  const workloads = new Map(report.workloads.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, { workload: `${w.kind}/${w.namespace}/${w.name}`, result: w.result, reason: w.resultReason }]));
  const s = report.summary;
  const seconds = Math.max(s.durationMs / 1000, 0.001);
  const details = renderTable(['WORKLOAD', 'RESULT', 'REASON'], [...workloads.values()].map((w) => [w.workload, w.result, w.reason]),
    [{ weight: 4, wrap: 'hard' }, { weight: 0, fixed: 9, wrap: 'hard', colour: outcome }, { weight: 5, wrap: 'words' }], width);
  const summary = renderTable(['', 'SUMMARY'], [
    ['Images', `${s.images.total}: ${s.images.copied} copied, ${s.images.tagged ? `${s.images.tagged} tagged, ` : ''}${s.images.present} already present, ${s.images.lost} lost, ${s.images.failed + s.images.error} failed, ${s.images.excluded} excluded${s.drifted ? `; ${s.drifted} run an older digest than their tag names upstream` : ''}`],
    ['Blobs', `${s.blobs.copied} copied, ${s.blobs.mounted} mounted, ${s.blobs.present} already present`],
    ['Workloads', `${s.workloads.total}: ${s.workloads.patched} patched, ${s.workloads.unchanged} unchanged, ${s.workloads.skipped} skipped, ${s.workloads.failed} failed`],
    ['Containers', `${s.containers.total}: ${s.containers.patched} patched, ${s.containers.unchanged} unchanged, ${s.containers.skipped} skipped, ${s.containers.failed} failed${podOnly(report.containers) && `; ${podOnly(report.containers)}`}`],
    ['Transferred', `${formatBytes(s.bytesTransferred)} in ${formatDuration(s.durationMs)} (${formatBytes(s.bytesTransferred / seconds)}/s)`],
    ...s.registries.map((r) => [r.registry, `${r.requests} requests, ${r.manifestGets} manifest GET${r.manifestGets === 1 ? '' : 's'}${r.gaveUp ? `; given up: ${r.gaveUp}` : ''}`]),
  ], [{ weight: 0, fixed: 11, wrap: 'hard' }, { weight: 1, wrap: 'words' }], width);
  return `${workloads.size ? details : 'No workloads found.'}\n\n${summary}\n`;
}
