// What `restore` prints: one row per container (restored or kept, and why), in sync's vocabulary of
// workloads and containers, as a table or as the JSON document of schema/report.schema.json.
import type { RestoreOutcome } from '../../core/restore-plan.ts';
import { outcome as colourOutcome } from './colour.ts';
import { schemaVersion } from './document.ts';
import { renderTable } from './table.ts';

export interface RestoreRow {
  kind: string;
  namespace: string;
  name: string;
  container: string;
  image: string | null;
  action: 'restore' | 'keep';
  result: RestoreOutcome['result'];
  reason: string;
}

type Counts = { total: number; restored: number; kept: number; gone: number; failed: number };
type Counted = Exclude<RestoreRow['result'], 'would restore'>;

export interface RestoreDocument {
  schemaVersion: typeof schemaVersion;
  kind: 'restore';
  dryRun: boolean;
  workloads: Array<{ kind: string; namespace: string; name: string; containers: number; result: RestoreRow['result'] }>;
  containers: RestoreRow[];
  summary: { workloads: Counts; containers: Counts };
}

export function restoreDocument(outcomes: RestoreOutcome[], dryRun: boolean): RestoreDocument {
  const rows: RestoreRow[] = [];
  for (const { step: s, result, reason } of outcomes) {
    const base = { kind: s.workload.kind, namespace: s.workload.namespace, name: s.workload.name };
    for (const change of s.changes) rows.push({ ...base, container: change.container, image: change.image, action: 'restore', result, reason });
    for (const kept of s.kept) rows.push({ ...base, container: kept.container, image: null, action: 'keep', result: result === 'gone' ? 'gone' : 'kept', reason: result === 'gone' ? reason : kept.reason });
  }
  // One vocabulary with sync's documents: workloads and containers, each counted as what it is.
  const outcome = (r: Pick<RestoreRow, 'result'>): Counted => (r.result === 'would restore' ? 'restored' : r.result);
  const byWorkload = new Map<string, RestoreRow[]>();
  for (const r of rows) byWorkload.set(`${r.kind}/${r.namespace}/${r.name}`, [...(byWorkload.get(`${r.kind}/${r.namespace}/${r.name}`) ?? []), r]);
  const workloads = [...byWorkload.values()].map((own) => ({
    kind: own[0]!.kind, namespace: own[0]!.namespace, name: own[0]!.name, containers: own.length,
    result: own.find((r) => r.result === 'failed' || r.result === 'gone')?.result ?? own.find((r) => outcome(r) === 'restored')?.result ?? 'kept' as const,
  }));
  const counts = (results: Counted[]): Counts => {
    const of = (what: Counted) => results.filter((r) => r === what).length;
    return { total: results.length, restored: of('restored'), kept: of('kept'), gone: of('gone'), failed: of('failed') };
  };
  return {
    schemaVersion, kind: 'restore', dryRun, workloads, containers: rows,
    summary: { workloads: counts(workloads.map(outcome)), containers: counts(rows.map(outcome)) },
  };
}

/** `width`: the terminal's; undefined when stdout is not a terminal (one row per line). */
export function renderRestoreTable(document: RestoreDocument, width?: number): string {
  const rows = document.containers;
  const table = renderTable(['WORKLOAD', 'CONTAINER', 'RESULT', 'REASON', 'IMAGE'],
    rows.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r.container, r.result, r.reason, r.image ?? '-']),
    [{ weight: 3, wrap: 'hard' }, { weight: 1, wrap: 'hard' }, { weight: 0, fixed: 13, wrap: 'hard', colour: colourOutcome }, { weight: 3, wrap: 'words' }, { weight: 4, wrap: 'hard' }], width);
  const line = (what: string, c: Counts) => `${what}: ${c.total}: ${c.restored} ${document.dryRun ? 'would be ' : ''}restored, ${c.kept} kept, ${c.gone ? `${c.gone} gone, ` : ''}${c.failed} failed.`;
  return `${rows.length ? table : 'No workloads carry image-clone\'s annotation.'}\n\n${line('Workloads', document.summary.workloads)}\n${line('Containers', document.summary.containers)}\n`;
}
