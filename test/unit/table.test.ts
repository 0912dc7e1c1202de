// Tables for people: not on a terminal (CI logs), one row per line at full length; on a terminal,
// fit its width. Digests and references are never cut, in either.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planDocument, runReport } from '../../src/cli/output/document.ts';
import { renderPlanTable } from '../../src/cli/output/plan-render.ts';
import { renderRunSummary } from '../../src/cli/output/report.ts';
import { buildPlan, imagesToResolve, type Resolution } from '../../src/core/plan.ts';
import type { Workload } from '../../src/core/workloads.ts';
import { planConfig } from './core/plan-config.ts';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const config = planConfig;
const workload = (name: string, images: string[], extra: Partial<Workload> = {}): Workload => ({
  kind: 'Deployment', namespace: 'demo-shop', name, uid: name, resourceVersion: '1', labels: {}, annotations: {}, pullSecrets: [],
  containers: images.map((image, i) => ({ name: `c${i}`, image, type: 'container' as const })), ...extra,
});
const workloads = [
  workload('web', ['127.0.0.1:40635/shop/web:1.0']),
  workload('legacy', ['127.0.0.1:40635/shop/web:1.0'], { managedBy: 'Helm' }),
  workload('migrate', [`127.0.0.1:40635/tools/migrate@${d(7)}`]),
  workload('orphan', ['127.0.0.1:40635/shop/deleted-long-ago:0.9']),
];
const resolutions = new Map<string, Resolution>(imagesToResolve(workloads, config).map((r) => [r.key,
  r.key.includes('deleted') ? { state: 'lost', reason: 'missing from the source and from the backup' } : { state: 'copy', digest: r.digest ?? d(1), reason: 'not in the backup yet' }]));
const doc = planDocument(buildPlan(workloads, resolutions, config), 'backup.example.com/mirror', true);

/** The text under one header of the table that starts at `headerLine`, its wrapped pieces joined. */
function column(lines: string[], headerLine: number, header: string, next: string): string[] {
  const start = lines[headerLine]!.indexOf(header);
  const end = lines[headerLine]!.indexOf(next);
  const action = lines[headerLine]!.indexOf('ACTION');
  const cells: string[] = [];
  for (let i = headerLine + 1; i < lines.length && lines[i]!.trim(); i++) {
    const piece = lines[i]!.slice(start, end).trim();
    // A row starts on the line that carries its action (one word, never wrapped).
    if (lines[i]!.slice(action, action + 8).trim()) cells.push(piece);
    else cells[cells.length - 1] += piece;
  }
  return cells;
}

describe('plan and report tables', () => {
  test('not on a terminal: one row per line, aligned, with every reference and digest whole', () => {
    const text = renderPlanTable(doc);
    const lines = text.split('\n');
    const [imageHeader, workloadHeader] = [lines.findIndex((l) => l.startsWith('IMAGE')), lines.findIndex((l) => l.startsWith('WORKLOAD'))];
    assert.equal(workloadHeader - imageHeader - 2, doc.images.length, 'one line per image');
    assert.equal(lines.slice(workloadHeader + 1).findIndex((l) => !l.trim()), doc.containers.length, 'one line per container');
    for (const image of doc.images) {
      const row = lines.find((l) => l.startsWith(`${image.source} `))!;
      assert.ok(row, `${image.source} starts a line`);
      if (image.digest) assert.ok(row.includes(` ${image.digest} `), 'the whole digest, on the image\'s line');
      assert.ok(row.includes(` ${image.backup} `));
    }
    for (const c of doc.containers) {
      const row = lines.find((l) => l.startsWith(`${c.kind}/${c.namespace}/${c.name} `))!;
      assert.ok(row.includes(c.newImage ? `${c.image} -> ${c.newImage}` : c.image), row);
    }
    // Aligned: every row's action starts under the ACTION header.
    const at = lines[imageHeader]!.indexOf('ACTION');
    for (const image of doc.images) assert.equal(lines.find((l) => l.startsWith(`${image.source} `))!.slice(at).split(' ')[0], image.action);
    assert.doesNotMatch(text, / +$/m, 'no trailing spaces');
  });

  for (const width of [80, 100, 160]) {
    test(`on a ${width}-column terminal: every line fits, and wrapped digests and references read whole down their column`, () => {
      const lines = renderPlanTable(doc, width).split('\n');
      assert.ok(lines.every((l) => l.length <= width), lines.find((l) => l.length > width));
      const header = lines.findIndex((l) => l.startsWith('IMAGE'));
      assert.deepEqual(column(lines, header, 'DIGEST', 'BACKUP'), doc.images.map((i) => i.digest ?? '-'));
      assert.deepEqual(column(lines, header, 'IMAGE', 'ACTION'), doc.images.map((i) => i.source));
    });
  }

  test('a table that fits the terminal is not wrapped at all', () => {
    const small = planDocument(buildPlan([workload('a', ['x.io/a:1'])], new Map([['x.io/a:1', { state: 'present', digest: d(2), reason: 'ok' }]]), config), 'b', true);
    assert.equal(renderPlanTable(small, 400), renderPlanTable(small));
  });

  test('the run report: one row per workload per line when not on a terminal', () => {
    const report = runReport({ plan: buildPlan(workloads, resolutions, config), images: new Map(), totals: { blobsCopied: 0, blobsMounted: 0, blobsPresent: 0, bytesCopied: 0 },
      workloads: workloads.map((w) => ({ kind: w.kind, namespace: w.namespace, name: w.name, result: 'skipped' as const, reason: `a reason long enough to be wrapped on a narrow terminal, for ${w.name}` })) }, 'b', 1);
    const lines = renderRunSummary(report).split('\n');
    for (const w of workloads) assert.ok(lines.some((l) => l.startsWith(`Deployment/demo-shop/${w.name} `) && l.endsWith(`for ${w.name}`)));
    assert.ok(renderRunSummary(report, 80).split('\n').every((l) => l.length <= 80));
  });
});
