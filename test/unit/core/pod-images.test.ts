// What pods run besides their workload's template, as pure logic: a Deployment mid-rollout (the old
// ReplicaSet's pods), an image set on the pod (an admission webhook's sidecar, kubectl set image),
// an init container, an ephemeral container (kubectl debug), another digest of the template's tag,
// a Job of an earlier CronJob template; then how the plan, the document and the run report them:
// backed up, never patched, counted, and never in the way of the template's own patch.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planDocument, runReport } from '../../../src/cli/output/document.ts';
import { renderKustomize, renderPlanTable } from '../../../src/cli/output/plan-render.ts';
import { executePlan } from '../../../src/core/execute.ts';
import { imagePatch } from '../../../src/core/patches.ts';
import { buildPlan, imagesToResolve, type Resolution } from '../../../src/core/plan.ts';
import type { ImageCopier, ManifestLookup, Patcher } from '../../../src/core/ports.ts';
import { discoverWorkloads, type Workload } from '../../../src/core/workloads.ts';
import type { KubeObject, OwnerReference } from '../../../src/core/kube-object.ts';
import { slimObject } from '../../../src/kube/list.ts';
import { validate } from '../../schema.ts';
import { planConfig } from './plan-config.ts';

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const config = planConfig;
const owner = (kind: string, name: string, uid: string): OwnerReference => ({ apiVersion: kind === 'Job' || kind === 'CronJob' ? 'batch/v1' : 'apps/v1', kind, name, uid, controller: true });
const obj = (name: string, uid: string, ref: OwnerReference | undefined, spec: unknown, annotations?: Record<string, string>): KubeObject => ({
  metadata: { name, namespace: 'shop', uid, resourceVersion: '3', ...(ref ? { ownerReferences: [ref] } : {}), ...(annotations ? { annotations } : {}) }, spec,
});
type Containers = Array<{ name: string; image: string }>;
const template = (containers: Containers, initContainers?: Containers) => ({ template: { spec: { containers, ...(initContainers ? { initContainers } : {}) } } });
const app = (image: string) => [{ name: 'app', image }];

/** A pod of `ref`, its containers' statuses reporting digest `n` for each (none for a pending pod). */
function pod(name: string, ref: OwnerReference | undefined, spec: Partial<Record<'containers' | 'initContainers' | 'ephemeralContainers', Containers>>, n?: number): KubeObject {
  const statuses = (list: Containers | undefined) => list?.map((c) => ({ name: c.name, image: c.image, imageID: `registry.example.com/x@${digest(n!)}` }));
  return {
    ...obj(name, `pod-${name}`, ref, spec),
    status: n === undefined ? {} : {
      containerStatuses: statuses(spec.containers), initContainerStatuses: statuses(spec.initContainers), ephemeralContainerStatuses: statuses(spec.ephemeralContainers),
    },
  };
}

const web = owner('Deployment', 'web', 'd1');
const oldRs = owner('ReplicaSet', 'web-old', 'rs-old');
const newRs = owner('ReplicaSet', 'web-new', 'rs-new');
/** A Deployment mid-rollout from app:1.0 to app:2.0: two pods of the old ReplicaSet run 1.0, the new one's pod is pending. */
const midRollout = {
  Deployment: [obj('web', 'd1', undefined, template(app('app:2.0')))],
  ReplicaSet: [obj('web-old', 'rs-old', web, template(app('app:1.0'))), obj('web-new', 'rs-new', web, template(app('app:2.0')))],
  Pod: [pod('web-old-a', oldRs, { containers: app('app:1.0') }, 1), pod('web-old-b', oldRs, { containers: app('app:1.0') }, 1), pod('web-new-a', newRs, { containers: app('app:2.0') })],
};

/** Every request resolved: `copy` at the digest it names (or digest 2 for a tag), unless `states` says otherwise. */
function resolveAll(workloads: Workload[], states: Record<string, Resolution> = {}): Map<string, Resolution> {
  return new Map(imagesToResolve(workloads, config).map((r) => [r.key, states[r.key] ?? { state: 'copy', digest: r.digest ?? digest(2), reason: 'not in the backup yet' }]));
}

describe('discovery: what pods run that the template does not', () => {
  test('mid-rollout, the old ReplicaSet\'s pods: one entry, at the digest they report, naming the older revision', () => {
    const [deployment, ...rest] = discoverWorkloads({ objects: midRollout });
    assert.equal(rest.length, 0, 'one workload: the Deployment');
    assert.deepEqual(deployment!.containers, [{ name: 'app', image: 'app:2.0', type: 'container' }], 'the template, no digest: its only pod is pending');
    assert.deepEqual(deployment!.running, [{
      name: 'app', image: 'app:1.0', type: 'container', runningDigest: digest(1), pod: 'web-old-a', pods: 2, origin: 'revision', revision: 'ReplicaSet web-old',
    }]);
  });

  test('an image set on the pod (a webhook\'s sidecar, kubectl set image on the pod) and an init container no template names', () => {
    const [deployment] = discoverWorkloads({ objects: {
      Deployment: [obj('web', 'd1', undefined, template(app('app:2.0'), app('setup:1')))],
      ReplicaSet: [obj('web-new', 'rs-new', web, template(app('app:2.0'), app('setup:1')))],
      Pod: [pod('web-new-a', newRs, { containers: [{ name: 'app', image: 'app:2.0-hotfix' }, { name: 'istio-proxy', image: 'proxyv2:1.24' }], initContainers: app('setup:2') }, 3)],
    } });
    assert.deepEqual(deployment!.running!.map((c) => [c.type, c.name, c.image, c.origin, c.runningDigest]), [
      ['container', 'app', 'app:2.0-hotfix', 'pod', digest(3)],
      ['container', 'istio-proxy', 'proxyv2:1.24', 'pod', digest(3)],
      ['initContainer', 'app', 'setup:2', 'pod', digest(3)],
    ]);
  });

  test('an ephemeral container on an owned pod, and on a bare pod (whose own row has it, with its digest)', () => {
    const debugged = { containers: app('app:2.0'), ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36' }] };
    const workloads = discoverWorkloads({ objects: {
      Deployment: [obj('web', 'd1', undefined, template(app('app:2.0')))],
      ReplicaSet: [obj('web-new', 'rs-new', web, template(app('app:2.0')))],
      Pod: [pod('web-new-a', newRs, debugged, 4), pod('lonely', undefined, debugged, 5)],
    } });
    const deployment = workloads.find((w) => w.kind === 'Deployment')!;
    assert.deepEqual(deployment.running!.map((c) => [c.type, c.name, c.image, c.runningDigest, c.pod]), [['ephemeralContainer', 'debugger', 'busybox:1.36', digest(4), 'web-new-a']]);
    const lonely = workloads.find((w) => w.kind === 'Pod')!;
    assert.equal(lonely.running, undefined, 'a bare pod is its own template');
    assert.deepEqual(lonely.containers.map((c) => [c.type, c.runningDigest]), [['container', digest(5)], ['ephemeralContainer', digest(5)]]);
  });

  test('pods that disagree on the digest of the template\'s tag: each digest that runs, the template resolved by its tag', () => {
    const [deployment] = discoverWorkloads({ objects: {
      Deployment: [obj('web', 'd1', undefined, template(app('app:2.0')))],
      ReplicaSet: [obj('web-new', 'rs-new', web, template(app('app:2.0')))],
      Pod: [pod('a', newRs, { containers: app('app:2.0') }, 6), pod('b', newRs, { containers: app('app:2.0') }, 7), pod('c', newRs, { containers: app('app:2.0') })],
    } });
    assert.equal(deployment!.containers[0]!.runningDigest, undefined);
    assert.deepEqual(deployment!.running!.map((c) => [c.image, c.runningDigest, c.origin, c.pod]), [['app:2.0', digest(6), 'digest', 'a'], ['app:2.0', digest(7), 'digest', 'b']]);
  });

  test('a Job a CronJob made from an earlier template is an older revision; what the template names is covered', () => {
    const [cron] = discoverWorkloads({ objects: {
      CronJob: [obj('nightly', 'cj1', undefined, { jobTemplate: { spec: template(app('job:2')) } })],
      Job: [obj('nightly-1', 'j1', owner('CronJob', 'nightly', 'cj1'), template(app('job:1'))), obj('nightly-2', 'j2', owner('CronJob', 'nightly', 'cj1'), template(app('job:2')))],
      Pod: [pod('nightly-1-x', owner('Job', 'nightly-1', 'j1'), { containers: app('job:1') }, 8), pod('nightly-2-x', owner('Job', 'nightly-2', 'j2'), { containers: app('job:2') }, 9)],
    } });
    assert.deepEqual(cron!.containers[0]!.runningDigest, digest(9));
    assert.deepEqual(cron!.running!.map((c) => [c.image, c.revision]), [['job:1', 'Job nightly-1']]);
  });

  test('nothing runs besides the template: no entries, as before', () => {
    const [deployment] = discoverWorkloads({ objects: { ...midRollout, Pod: [midRollout.Pod[2]!] } });
    assert.equal(deployment!.running, undefined);
  });

  test('slim pods keep what this needs (name, ephemeral containers and their statuses), and discovery finds the same in them', () => {
    const debugged = pod('web-old-a', oldRs, { containers: app('app:1.0'), ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36' }] }, 1);
    const full = { ...midRollout, Pod: [{ ...debugged, spec: { ...(debugged.spec as object), nodeName: 'n1' } }, ...midRollout.Pod.slice(1)] };
    const slim = Object.fromEntries(Object.entries(full).map(([kind, list]) => [kind, list.map((o) => slimObject(kind as 'Pod', o))]));
    assert.deepEqual(discoverWorkloads({ objects: slim }), discoverWorkloads({ objects: full }));
    assert.equal(discoverWorkloads({ objects: slim })[0]!.running!.length, 2, 'the old revision and the debugger');
    assert.ok(!JSON.stringify(slim).includes('nodeName'));
  });
});

describe('the plan: backed up, reported, never patched', () => {
  test('the older revision\'s image is copied at the digest its pods run and reported on the workload\'s row; only the template is patched', () => {
    const workloads = discoverWorkloads({ objects: midRollout });
    const requests = imagesToResolve(workloads, config);
    assert.deepEqual(requests.map((r) => [r.key, r.digest]), [['docker.io/library/app:2.0', undefined], [`docker.io/library/app:1.0@${digest(1)}`, digest(1)]]);
    const plan = buildPlan(workloads, resolveAll(workloads), config);
    assert.deepEqual(plan.workloads.map((c) => [c.kind, c.name, c.container, c.image, c.action, c.code, c.pod]), [
      ['Deployment', 'web', 'app', 'app:2.0', 'patch', 'patch', undefined],
      ['Deployment', 'web', 'app', 'app:1.0', 'skip', 'pod-only', 'web-old-a'],
    ]);
    assert.equal(plan.workloads[1]!.reason, '2 pods (web-old-a, …) of ReplicaSet web-old, an older revision, run it: backed up, not patched (the rollout replaces them)');
    assert.equal(plan.workloads[1]!.newImage, `backup.example.com/mirror/docker.io/library/app:1.0@${digest(1)}`, 'where its copy is');
    assert.deepEqual(plan.images.map((i) => [i.source, i.digest, i.action]), [['docker.io/library/app:2.0', digest(2), 'copy'], ['docker.io/library/app:1.0', digest(1), 'copy']]);

    const doc = planDocument(plan, 'backup.example.com/mirror', true);
    assert.deepEqual(validate(doc), []);
    assert.deepEqual(doc.workloads.map((w) => [w.name, w.action, w.containers]), [['web', 'patch', 2]]);
    assert.deepEqual(doc.summary.containers, { total: 2, patch: 1, unchanged: 0, skip: 1, error: 0 });
    assert.deepEqual(doc.summary.images, { total: 2, copy: 2, tag: 0, present: 0, lost: 0, excluded: 0, error: 0 });
    assert.match(renderPlanTable(doc, 200), /^Containers: 2: 1 to patch, 0 unchanged, 1 skipped, 0 errors\. 1 of them only pods run \(an older revision, a change made on a pod, kubectl debug\): backed up, not patched\.$/m);
    assert.doesNotMatch(renderKustomize(plan), /app:1\.0|newTag: "1\.0"/, 'an image in no manifest is no Kustomize mapping');
  });

  test('codes: an ephemeral container, an image set on a pod, a lost one; a failing one does not stop the template\'s patch', () => {
    const [deployment] = discoverWorkloads({ objects: {
      Deployment: [obj('web', 'd1', undefined, template(app('app:2.0')))],
      ReplicaSet: [obj('web-new', 'rs-new', web, template(app('app:2.0')))],
      Pod: [pod('p', newRs, { containers: [...app('app:2.0'), { name: 'sidecar', image: 'side:1' }, { name: 'gone', image: 'gone:1' }], ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36' }] }, 1)],
    } });
    const plan = buildPlan([deployment!], resolveAll([deployment!], {
      [`docker.io/library/side:1@${digest(1)}`]: { state: 'error', reason: 'source registry: HTTP 500' },
      [`docker.io/library/gone:1@${digest(1)}`]: { state: 'lost', reason: 'missing' },
    }), config);
    assert.deepEqual(plan.workloads.map((c) => [c.container, c.action, c.code]), [
      ['app', 'patch', 'patch'], ['sidecar', 'error', 'image-error'], ['gone', 'skip', 'image-lost'], ['debugger', 'skip', 'ephemeral'],
    ]);
    assert.match(plan.workloads[1]!.reason, /^source registry: HTTP 500 \(pod p runs it, though no pod template names it/);
    assert.equal(plan.workloads[3]!.reason, 'an ephemeral container of pod p (kubectl debug): backed up, never patched');
    const doc = planDocument(plan, 'backup.example.com/mirror', true);
    assert.deepEqual(validate(doc), []);
    assert.equal(doc.workloads[0]!.action, 'error', 'an image that runs and cannot be backed up is an error of its workload');
    assert.equal(plan.summary.images.lost, 1, 'counted: the run exits 1');
  });

  test('the rollout image-clone started is covered by the template\'s row: a pod on the original at the pinned digest is no row', () => {
    const original = 'app:1.0';
    const copy = `backup.example.com/mirror/docker.io/library/app:1.0@${digest(1)}`;
    const before: Workload = { kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'd1', resourceVersion: '1', labels: {}, annotations: {}, pullSecrets: [], containers: [{ name: 'app', image: original, type: 'container' }] };
    const { metadata } = imagePatch(before, [{ container: 'app', type: 'container', image: copy }]) as { metadata: { annotations: Record<string, string> } };
    const objects = (n?: number) => ({
      Deployment: [obj('web', 'd1', undefined, template(app(copy)), metadata.annotations)],
      ReplicaSet: [obj('web-old', 'rs-old', web, template(app(original))), obj('web-new', 'rs-new', web, template(app(copy)))],
      Pod: [pod('web-old-a', oldRs, { containers: app(original) }, n)],
    });
    for (const [n, rows] of [[1, 1], [undefined, 1], [7, 2]] as const) {
      const workloads = discoverWorkloads({ objects: objects(n) });
      assert.equal(workloads[0]!.running!.length, 1, 'discovery reports what runs');
      const plan = buildPlan(workloads, resolveAll(workloads, { [`docker.io/library/app:1.0@${digest(1)}`]: { state: 'present', digest: digest(1), reason: 'held' } }), config);
      assert.equal(plan.workloads.length, rows, `digest ${n}: ${rows === 1 ? 'covered by the template row' : 'another digest: a row of its own'}`);
      assert.deepEqual([plan.workloads[0]!.action, plan.workloads[0]!.code], ['unchanged', 'on-backup']);
    }
  });
});

describe('a run', () => {
  const patched: Array<{ kind: string; name: string; body: object }> = [];
  const patcher: Patcher = {
    async patch(kind, _namespace, name, body) {
      patched.push({ kind, name, body });
      return { status: 'patched', object: {} };
    },
    async read() {
      return undefined;
    },
  };
  const copied: string[] = [];
  const copier: ImageCopier = {
    async copyAll(jobs) {
      copied.push(...jobs.map((j) => `${j.source.repository}@${j.source.digest}`));
      return jobs.map((j) => ({ result: { status: 'copied' as const, digest: j.source.digest!, counts: { manifestsPushed: 1, blobsCopied: 1, blobsMounted: 0, blobsPresent: 0, bytesCopied: 10, signatures: 0 } } }));
    },
    async tag() {},
  };
  const manifests: ManifestLookup = { digestOf: async () => undefined };

  test('copies the older revision\'s digest, patches the Deployment once with the template\'s image only; the next run leaves it unchanged', async () => {
    const workloads = discoverWorkloads({ objects: midRollout });
    const requests = imagesToResolve(workloads, config);
    const result = await executePlan(workloads, requests, resolveAll(workloads), config, { copier, patcher, manifests }, { concurrency: 2 });
    assert.deepEqual(copied.sort(), [`library/app@${digest(1)}`, `library/app@${digest(2)}`]);
    assert.equal(patched.length, 1);
    assert.deepEqual((patched[0]!.body as { spec: unknown }).spec, { template: { spec: { containers: [{ name: 'app', image: `backup.example.com/mirror/docker.io/library/app:2.0@${digest(2)}` }] } } });
    const report = runReport(result, 'backup.example.com/mirror', 1);
    assert.deepEqual(validate(report), []);
    assert.deepEqual(report.containers.map((c) => [c.image, c.result]), [['app:2.0', 'patched'], ['app:1.0', 'skipped']]);
    assert.deepEqual(report.summary.containers, { total: 2, patched: 1, unchanged: 0, skipped: 1, failed: 0 });

    // The template now names the copy; the old revision's pods still run 1.0 at digest 1, held by the backup.
    const after = discoverWorkloads({ objects: { ...midRollout, Deployment: [obj('web', 'd1', undefined, template(app(`backup.example.com/mirror/docker.io/library/app:2.0@${digest(2)}`)))] } });
    const present = new Map(imagesToResolve(after, config).map((r) => [r.key, { state: 'present', digest: r.digest!, reason: 'held' } as Resolution]));
    const again = await executePlan(after, imagesToResolve(after, config), present, config, { copier, patcher, manifests }, { concurrency: 2 });
    assert.equal(patched.length, 1, 'no second patch');
    assert.deepEqual(again.workloads.map((w) => [w.name, w.result]), [['web', 'unchanged']], 'what only pods run does not make the workload "skipped"');
  });
});
