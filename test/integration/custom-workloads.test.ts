// Custom workloads on the harness's real API server, with the projects' real CRDs (read from their Go
// modules): an Argo Rollout with the ReplicaSet and pods its controller would have made, a Knative
// Service, a KEDA ScaledJob; an operator's resource image-clone does not know (backed up and
// reported, never patched); and a kind named with --workload-kind. No Argo Rollouts, Knative or KEDA
// controller runs in the harness: the test creates the ReplicaSet (owned by the Rollout) that the
// Rollouts controller would create, and the kube-controller-manager makes its pods; no kubelet runs
// either, so the pods' statuses are written as a kubelet would report them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CoreV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { deleteCrds, installCrd, minimalCrd, moduleCrd, realCrds } from './crds.ts';
import { createIn, harnessFixtures, podTemplate, replicaSet, reportRunning, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, waitUntil, type CliRun, type KubeClients, type SeedResult } from './helpers.ts';

type Doc = Record<string, any>;

let env: HarnessEnv;
let kube: KubeClients;
let core: CoreV1Api;
let objects: KubernetesObjectApi;
let namespaces: Namespaces;
let ns: string;
let args: string[];
let repo: string;
const images = {} as Record<'app' | 'kn' | 'job' | 'db' | 'webapp', { ref: string; seed: SeedResult }>;
const madeUp = [minimalCrd('example.com', 'Database', 'databases'), minimalCrd('example.com', 'WebApp', 'webapps')];
const crdNames = ['rollouts.argoproj.io', 'services.serving.knative.dev', 'scaledjobs.keda.sh', ...madeUp.map((c) => c.metadata!.name!)];
const webAppKind = ['--workload-kind', 'example.com/WebApp=spec.podTemplate'];

const json = (run: CliRun): Doc => {
  try {
    return JSON.parse(run.stdout);
  } catch {
    assert.fail(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
};
const rows = (doc: Doc) => Object.fromEntries(doc.workloads.map((w: Doc) => [`${w.kind}/${w.name}`, w]));
const read = (apiVersion: string, kind: string, name: string) => objects.read({ apiVersion, kind, metadata: { name, namespace: ns } }) as Promise<Doc>;
const backupPattern = () => new RegExp(`^${env.registries.backup.host}/cw/.*@sha256:[a-f0-9]{64}$`);

/** Makes the objects `owner` would own: a ReplicaSet it controls, whose pods report running `image`. */
async function ownedReplicaSet(owner: Doc, name: string, image: { ref: string; seed: SeedResult }): Promise<void> {
  const rs = replicaSet(name, image.ref, { replicas: 1, app: name, metadata: {
    ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true }],
  } });
  await createIn(objects, ns, rs);
  let pods: Array<{ metadata?: { name?: string } }> = [];
  await waitUntil(`the pods of ${name}`, async () => (pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${name}` })).items).length === 1);
  for (const p of pods) await reportRunning(core, ns, p.metadata!.name!, image.ref, `${image.ref.split(':').slice(0, -1).join(':')}@${image.seed.digest}`);
}

before(async () => {
  let registryConfig: string;
  let insecure: string[];
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  ({ core, objects } = kube);
  for (const crd of [await moduleCrd(realCrds.rollout), await moduleCrd(realCrds.knativeService), await moduleCrd(realCrds.scaledJob), ...madeUp]) await installCrd(kube.kc, crd);
  ns = await namespaces.create('custom');
  args = ['--backup', `${env.registries.backup.host}/cw`, '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig, ...insecure, '-n', ns, '--no-lock'];
  repo = uniqueRepo('custom');
  const src = env.registries.source;
  for (const [i, name] of (['app', 'kn', 'job', 'db', 'webapp'] as const).entries()) {
    images[name] = { ref: `${src.host}/${repo}/${name}:1.0`, seed: await seedImage(src, `${repo}/${name}:1.0`, { layers: 1, layerSize: 4096, seed: 700 + i }) };
  }

  // The Rollout, as its users write it, and what its controller makes: a ReplicaSet it owns, and pods.
  await createIn(objects, ns, {
    apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, strategy: { canary: { steps: [{ setWeight: 50 }] } },
      template: podTemplate('web', [{ name: 'app', image: images.app.ref, ports: [{ containerPort: 8080 }], env: [{ name: 'MODE', value: 'prod' }] } as any]) },
  });
  await ownedReplicaSet(await read('argoproj.io/v1alpha1', 'Rollout', 'web'), 'web-5d8f7', images.app);
  // A Knative Service with one unnamed container, as Knative allows.
  await createIn(objects, ns, {
    apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'hello' },
    spec: { template: { spec: { containers: [{ image: images.kn.ref, ports: [{ containerPort: 8080 }] }] } } },
  });
  // A KEDA ScaledJob: its pod template is at spec.jobTargetRef.template.
  await createIn(objects, ns, {
    apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledJob', metadata: { name: 'worker' },
    spec: { jobTargetRef: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'worker', image: images.job.ref }] } } },
      triggers: [{ type: 'cron', metadata: { timezone: 'Etc/UTC', start: '0 3 * * *', end: '0 4 * * *', desiredReplicas: '1' } }] },
  });
  // An operator's resource image-clone knows nothing of, owning a ReplicaSet that runs pods.
  await createIn(objects, ns, { apiVersion: 'example.com/v1alpha1', kind: 'Database', metadata: { name: 'orders' }, spec: { engine: 'x' } });
  await ownedReplicaSet(await read('example.com/v1alpha1', 'Database', 'orders'), 'orders-db', images.db);
  // A kind with its pod template at spec.podTemplate: patched only when --workload-kind names it.
  await createIn(objects, ns, { apiVersion: 'example.com/v1alpha1', kind: 'WebApp', metadata: { name: 'shop' }, spec: { podTemplate: podTemplate('shop', images.webapp.ref) } });
  await ownedReplicaSet(await read('example.com/v1alpha1', 'WebApp', 'shop'), 'shop-rs', images.webapp);
});

after(async () => {
  await namespaces?.deleteAll();
  if (kube) await deleteCrds(kube.kc, crdNames);
});

describe('custom workloads', () => {
  test('dry run: every image the pods run is planned; known kinds are patched through themselves, the rest reported', async () => {
    const run = await runCli(['sync', '--dry-run', '-o', 'json', ...args]);
    assert.equal(run.code, 0, run.stderr);
    const plan = json(run);
    const byName = rows(plan);
    assert.deepEqual(Object.keys(byName).sort(), ['Database.example.com/orders', 'Rollout.argoproj.io/web', 'ScaledJob.keda.sh/worker', 'Service.serving.knative.dev/hello', 'WebApp.example.com/shop'],
      'no ReplicaSet and no Pod: they are owned');
    for (const key of ['Rollout.argoproj.io/web', 'Service.serving.knative.dev/hello', 'ScaledJob.keda.sh/worker']) assert.equal(byName[key].action, 'patch', key);
    assert.equal(byName['Database.example.com/orders'].action, 'skip');
    assert.match(byName['Database.example.com/orders'].reason, /^owned by example\.com Database, which image-clone does not patch: its image is backed up/);
    assert.match(byName['WebApp.example.com/shop'].reason, /--workload-kind example\.com\/WebApp=PATH/);
    // Every image any of these pods or templates runs is in the plan, to be copied; the Rollout's at the digest its pods report.
    assert.deepEqual(plan.images.map((i: Doc) => i.source).sort(), Object.values(images).map((i) => i.ref).sort());
    assert.ok(plan.images.every((i: Doc) => i.action === 'copy'));
    assert.equal(plan.images.find((i: Doc) => i.source === images.app.ref).digest, images.app.seed.digest);
    assert.equal(plan.summary.workloads.skip, 2, 'the two owners it does not patch are counted');
    assert.equal(plan.containers.find((c: Doc) => c.kind === 'Service.serving.knative.dev').container, 'containers[0]', 'an unnamed container is named by its place');
  });

  test('sync: the custom kinds are patched with a merge patch that keeps the rest of their template; what they own is not touched', async () => {
    const run = await runCli(['sync', '-o', 'json', ...args, ...webAppKind]);
    assert.equal(run.code, 0, run.stderr);
    const report = json(run);
    const byName = rows(report);
    for (const key of ['Rollout.argoproj.io/web', 'Service.serving.knative.dev/hello', 'ScaledJob.keda.sh/worker', 'WebApp.example.com/shop']) {
      assert.equal(byName[key]?.result, 'patched', `${key}: ${byName[key]?.resultReason}`);
    }
    assert.equal(byName['Database.example.com/orders'].result, 'skipped');
    assert.ok(report.images.every((i: Doc) => i.result === 'copied'), JSON.stringify(report.images.map((i: Doc) => [i.source, i.result])));

    const rollout = await read('argoproj.io/v1alpha1', 'Rollout', 'web');
    const [app] = rollout.spec.template.spec.containers;
    assert.match(app.image, backupPattern());
    assert.ok(app.image.endsWith(`@${images.app.seed.digest}`), 'pinned to the digest the pods ran');
    assert.deepEqual([app.ports, app.env], [[{ containerPort: 8080, protocol: 'TCP' }], [{ name: 'MODE', value: 'prod' }]], 'the rest of the container as it was');
    assert.deepEqual(rollout.spec.strategy, { canary: { steps: [{ setWeight: 50 }] } });
    assert.deepEqual(JSON.parse(rollout.metadata.annotations['image-clone.io/original-images']).containers.app.original, images.app.ref);
    const ownedRs = await read('apps/v1', 'ReplicaSet', 'web-5d8f7');
    assert.equal(ownedRs.spec.template.spec.containers[0].image, images.app.ref, "the Rollout's ReplicaSet is its controller's to change");
    assert.equal((await read('apps/v1', 'ReplicaSet', 'orders-db')).spec.template.spec.containers[0].image, images.db.ref, 'what the unknown owner owns is not patched');

    assert.match((await read('serving.knative.dev/v1', 'Service', 'hello')).spec.template.spec.containers[0].image, backupPattern());
    assert.match((await read('keda.sh/v1alpha1', 'ScaledJob', 'worker')).spec.jobTargetRef.template.spec.containers[0].image, backupPattern());
    assert.match((await read('example.com/v1alpha1', 'WebApp', 'shop')).spec.podTemplate.spec.containers[0].image, backupPattern());
  });

  test('the next dry run has nothing to do', async () => {
    const run = await runCli(['sync', '--dry-run', '--exit-code', '-o', 'json', ...args, ...webAppKind]);
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
  });

  test('restore puts every custom workload back and removes the annotation', async () => {
    const run = await runCli(['restore', '-o', 'json', '--kubeconfig', env.kubeconfig, '-n', ns, '--no-lock', ...webAppKind]);
    assert.equal(run.code, 0, run.stderr);
    const rollout = await read('argoproj.io/v1alpha1', 'Rollout', 'web');
    assert.equal(rollout.spec.template.spec.containers[0].image, images.app.ref);
    assert.equal(rollout.spec.template.spec.containers[0].env[0].value, 'prod');
    assert.equal(rollout.metadata.annotations?.['image-clone.io/original-images'], undefined);
    assert.equal((await read('serving.knative.dev/v1', 'Service', 'hello')).spec.template.spec.containers[0].image, images.kn.ref);
    assert.equal((await read('keda.sh/v1alpha1', 'ScaledJob', 'worker')).spec.jobTargetRef.template.spec.containers[0].image, images.job.ref);
    assert.equal((await read('example.com/v1alpha1', 'WebApp', 'shop')).spec.podTemplate.spec.containers[0].image, images.webapp.ref);
  });

  test('a bad --workload-kind is one error line, exit 2, no stack trace', async () => {
    const run = await runCli(['sync', '--dry-run', ...args, '--workload-kind', 'example.com/WebApp']);
    assert.equal(run.code, 2);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.match(run.stderr.split('\n')[0]!, /^image-clone: --workload-kind example\.com\/WebApp: expected GROUP\/KIND=PATH, e\.g\. example\.com\/WebApp=spec\.template$/);
  });
});
