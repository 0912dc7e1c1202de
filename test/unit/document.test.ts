// One set of counts: the plan and the report count images, workloads and containers each as what
// they are, one row per distinct image, and both match schema/report.schema.json.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planDocument, runReport } from '../../src/cli/output/document.ts';
import { renderPlanTable } from '../../src/cli/output/plan-render.ts';
import { renderRunSummary } from '../../src/cli/output/report.ts';
import { executePlan } from '../../src/core/execute.ts';
import type { ImageCopier, ManifestLookup, Patcher } from '../../src/core/ports.ts';
import { imagePatch } from '../../src/core/patches.ts';
import { buildPlan, imagesToResolve, type Resolution } from '../../src/core/plan.ts';
import type { Workload } from '../../src/core/workloads.ts';
import { reportSchema, validate } from '../schema.ts';
import { planConfig } from './core/plan-config.ts';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const config = planConfig;
const backupName = 'backup.example.com/mirror/docker.io/library/web';

function workload(name: string, images: string[], extra: Partial<Workload> = {}): Workload {
  return {
    kind: 'Deployment', namespace: 'shop', name, uid: name, resourceVersion: '1', labels: {}, annotations: {}, pullSecrets: [],
    containers: images.map((image, i) => ({ name: `c${i}`, image, type: 'container' as const })), ...extra,
  };
}

/** Resolves every request to `state` at digest 1. */
function resolveAll(workloads: Workload[], state: 'copy' | 'present'): Map<string, Resolution> {
  return new Map(imagesToResolve(workloads, config).map((r) => [r.key, { state, digest: d(1), reason: state }]));
}

const patcher: Patcher = {
  async patch() {
    return { status: 'patched', object: {} };
  },
  async read() {
    return undefined;
  },
};

function copier(status: 'copied' | 'present'): ImageCopier {
  return {
    async copyAll(jobs) {
      return jobs.map(() => ({ result: { status, digest: d(1), counts: { manifestsPushed: 0, blobsCopied: 0, blobsMounted: 0, blobsPresent: 0, bytesCopied: 0, signatures: 0 } } }));
    },
    async tag() {},
  };
}

// The backup as the human-tag step sees it: it already names d(1), so no tag moves.
const manifests: ManifestLookup = { digestOf: async () => d(1) };

describe('one set of counts', () => {
  // web runs two containers of one image; the Helm-managed legacy runs it by tag; after a first run,
  // web runs our pinned copy (keyed by its digest) while legacy still names the tag: one image.
  const patchedWeb = (() => {
    const before = workload('web', ['web:1', 'web:1']);
    const body = imagePatch(before, before.containers.map((c) => ({ container: c.name, type: c.type, image: `${backupName}:1@${d(1)}` }))) as { metadata: { annotations: Record<string, string> } };
    return workload('web', [`${backupName}:1@${d(1)}`, `${backupName}:1@${d(1)}`], { annotations: body.metadata.annotations });
  })();
  const legacy = workload('legacy', ['web:1'], { managedBy: 'Helm' });

  test('the plan: one image row per distinct image; workloads and containers counted apart', () => {
    const workloads = [workload('web', ['web:1', 'web:1']), legacy];
    const doc = planDocument(buildPlan(workloads, resolveAll(workloads, 'copy'), config), 'backup.example.com/mirror', true);
    assert.deepEqual(validate(doc), []);
    assert.equal(doc.images.length, 1);
    assert.equal(doc.images[0]!.containers, 3);
    assert.deepEqual(doc.summary.images, { total: 1, copy: 1, tag: 0, present: 0, lost: 0, excluded: 0, error: 0 });
    assert.deepEqual(doc.summary.workloads, { total: 2, patch: 1, unchanged: 0, skip: 1, error: 0 });
    assert.deepEqual(doc.summary.containers, { total: 3, patch: 2, unchanged: 0, skip: 1, error: 0 });
    assert.deepEqual(doc.workloads.map((w) => [w.name, w.action, w.containers]), [['web', 'patch', 2], ['legacy', 'skip', 1]]);
    const text = renderPlanTable(doc, 120);
    assert.match(text, /^Images: 1: 1 to copy, 0 already backed up, 0 lost, 0 excluded, 0 errors\.$/m);
    assert.match(text, /^Workloads: 2: 1 to patch, 0 unchanged, 1 skipped, 0 errors\.$/m);
    assert.match(text, /^Containers: 3: 2 to patch, 0 unchanged, 1 skipped, 0 errors\.$/m);
  });

  test('the second run: an image run by its pinned copy and by its tag is one image, present', async () => {
    const workloads = [patchedWeb, legacy];
    const requests = imagesToResolve(workloads, config);
    assert.equal(requests.length, 2, 'the plan resolves two keys (by digest and by tag)');
    const resolutions = resolveAll(workloads, 'present');
    const plan = planDocument(buildPlan(workloads, resolutions, config), 'b', true);
    assert.deepEqual(plan.summary.images, { total: 1, copy: 0, tag: 0, present: 1, lost: 0, excluded: 0, error: 0 });
    const result = await executePlan(workloads, requests, resolutions, config, { copier: copier('copied'), patcher, manifests }, { concurrency: 2 });
    const report = runReport(result, 'b', 5);
    assert.deepEqual(validate(report), []);
    assert.deepEqual(report.summary.images, { total: 1, copied: 0, tagged: 0, present: 1, lost: 0, excluded: 0, failed: 0, error: 0 });
    assert.deepEqual(report.summary.workloads, { total: 2, patched: 0, unchanged: 1, skipped: 1, failed: 0 });
    assert.deepEqual(report.summary.containers, { total: 3, patched: 0, unchanged: 2, skipped: 1, failed: 0 });
    assert.match(renderRunSummary(report, 120), /Images {7}1: 0 copied, 1 already present/);
  });

  test('an image the engine found already in the backup is reported present, not copied', async () => {
    const workloads = [workload('web', ['web:1'])];
    const requests = imagesToResolve(workloads, config);
    const resolutions = resolveAll(workloads, 'copy');
    const found = runReport(await executePlan(workloads, requests, resolutions, config, { copier: copier('present'), patcher, manifests }, { concurrency: 2 }), 'b', 1);
    assert.deepEqual([found.images[0]!.result, found.images[0]!.resultReason], ['present', 'already in the backup (copied by another run meanwhile)']);
    assert.equal(found.summary.images.present, 1);
    assert.equal(found.summary.images.copied, 0);
    const copied = runReport(await executePlan(workloads, requests, resolutions, config, { copier: copier('copied'), patcher, manifests }, { concurrency: 2 }), 'b', 1);
    assert.deepEqual([copied.images[0]!.result, copied.summary.workloads.patched, copied.summary.containers.patched], ['copied', 1, 1]);
    assert.deepEqual(validate(copied), []);
  });
});

describe('schema/report.schema.json', () => {
  test('is the versioned contract: schemaVersion 2 and one kind per document', () => {
    assert.deepEqual(reportSchema.oneOf.map((s: { $ref: string }) => s.$ref), ['#/$defs/plan', '#/$defs/report', '#/$defs/restore', '#/$defs/copy']);
    for (const kind of ['plan', 'report', 'restore', 'copy']) assert.equal(reportSchema.$defs[kind].properties.schemaVersion.const, 2);
  });

  test('rejects what it must: the old shape, a count under the wrong name, a missing total, an unknown field', () => {
    const workloads = [workload('web', ['web:1'])];
    const doc = planDocument(buildPlan(workloads, resolveAll(workloads, 'copy'), config), 'b', true);
    assert.deepEqual(validate(doc), []);
    const old = { schemaVersion: 1, dryRun: true, backup: 'b', images: [], workloads: doc.containers, summary: { images: {}, workloads: {} } };
    assert.notDeepEqual(validate(old), []);
    const noTotal = structuredClone(doc) as any;
    delete noTotal.summary.workloads.total;
    assert.match(validate(noTotal).join('\n'), /total is missing/);
    const extra = structuredClone(doc) as any;
    extra.images[0].usedBy = 1;
    assert.match(validate(extra).join('\n'), /usedBy is not allowed/);
    const resultInPlan = structuredClone(doc) as any;
    resultInPlan.workloads[0].result = 'patched';
    assert.notDeepEqual(validate(resultInPlan), [], 'a plan carries no results');
    const badDigest = structuredClone(doc) as any;
    badDigest.images[0].digest = 'sha256';
    assert.notDeepEqual(validate(badDigest), []);
  });
});
