// What pods run that their workload's template does not name, on the harness's real API server and
// controllers: a Deployment mid-rollout (kube-controller-manager made both ReplicaSets and their
// pods; the old one's pods run app:1.0, whose tag has moved upstream since), and a pod whose image
// was set on the pod (as an admission webhook or `kubectl set image pod/…` does) with an ephemeral
// container added through the ephemeralcontainers subresource (as `kubectl debug` does). No kubelet
// runs here, so the pods' statuses are written as a kubelet would report them (test/node/ has the
// real kubelet); no new pod ever becomes available, so the rollout stays where it is.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PatchStrategy, setHeaderOptions, type AppsV1Api, type CoreV1Api, type KubernetesObjectApi, type V1Pod } from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { anchorTag } from '../../src/core/naming.ts';
import { createIn, deployment, harnessFixtures, reportRunning, type Namespaces } from './fixtures.ts';
import { manifestDigest, runCli, seedImage, uniqueRepo, verifyCopy, waitUntil, type CliRun, type KubeClients, type SeedResult } from './helpers.ts';

type Doc = Record<string, any>;

let env: HarnessEnv;
let core: CoreV1Api;
let apps: AppsV1Api;
let objects: KubernetesObjectApi;
let namespaces: Namespaces;
let ns: string;
let repo: string;
let args: string[];
const seeded = {} as Record<'app1' | 'app2' | 'moved' | 'api' | 'hotfix' | 'debug', SeedResult>;
const ref = {} as Record<'app1' | 'app2' | 'api' | 'hotfix' | 'debug', string>;
const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
/** Old pods stay until new ones are available, which none becomes without a kubelet. */
const rolling = { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } };
/** Ready, as a kubelet reports a started pod: the controller counts it available and keeps it. */
const ready = { conditions: [{ type: 'Ready', status: 'True' }] };

const json = (run: CliRun): Doc => {
  try {
    return JSON.parse(run.stdout);
  } catch {
    assert.fail(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
};
const podsOf = async (app: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
const imageOf = (pod: V1Pod) => pod.spec!.containers[0]!.image!;
const running = (name: string) => `${env.registries.source.host}/${repo}/${name}`;
/** The backup repository nested naming gives a source repository of the test's. */
const backupRepository = (name: string) => `rp/${env.registries.source.host.replace(':', '_')}/${repo}/${name}`;

before(async () => {
  let registryConfig: string;
  let insecure: string[];
  let kube: KubeClients;
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  ({ core, apps, objects } = kube);
  ns = await namespaces.create('running');
  repo = uniqueRepo('running');
  args = ['--backup', `${env.registries.backup.host}/rp`, '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig, ...insecure, '-n', ns, '--no-lock'];
  const src = env.registries.source;
  const seed = (path: string, n: number) => seedImage(src, `${repo}/${path}`, { layers: 1, layerSize: 4096, seed: n });
  for (const [key, path, n] of [['app1', 'app:1.0', 811], ['app2', 'app:2.0', 812], ['api', 'api:1.0', 813], ['hotfix', 'api:1.0-hotfix', 814], ['debug', 'debug:1', 815]] as const) {
    seeded[key] = await seed(path, n);
    ref[key] = `${src.host}/${repo}/${path}`;
  }

  // web runs app:1.0 on two pods, which report its digest; then the tag moves upstream, and the
  // Deployment is set to app:2.0 (kubectl set image): a new ReplicaSet, the old pods stay.
  await createIn(objects, ns, deployment('web', ref.app1, { replicas: 2, spec: rolling }));
  let pods: V1Pod[] = [];
  await waitUntil('the two web pods', async () => (pods = await podsOf('web')).length === 2);
  for (const p of pods) await reportRunning(core, ns, p.metadata!.name!, ref.app1, `${running('app')}@${seeded.app1.digest}`, ready);
  seeded.moved = await seed('app:1.0', 816);
  await apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image: ref.app2 }] } } } } }, smp);
  await waitUntil('the new revision\'s pod', async () => (pods = await podsOf('web')).length === 3 && pods.some((p) => imageOf(p) === ref.app2));

  // api's pod: its image set on the pod, and a debugging container added to it.
  await createIn(objects, ns, deployment('api', ref.api, { replicas: 1, spec: rolling }));
  await waitUntil('the api pod', async () => (pods = await podsOf('api')).length === 1);
  const apiPod = pods[0]!.metadata!.name!;
  await core.patchNamespacedPod({ name: apiPod, namespace: ns, body: { spec: { containers: [{ name: 'app', image: ref.hotfix }] } } }, smp);
  await core.patchNamespacedPodEphemeralcontainers({ name: apiPod, namespace: ns, body: { spec: { ephemeralContainers: [{ name: 'debugger', image: ref.debug, targetContainerName: 'app' }] } } }, smp);
  await reportRunning(core, ns, apiPod, ref.hotfix, `${running('api')}@${seeded.hotfix.digest}`, {
    ...ready,
    ephemeralContainerStatuses: [{ name: 'debugger', image: ref.debug, imageID: `${running('debug')}@${seeded.debug.digest}`, ready: false, restartCount: 0, state: { running: {} } }],
  });
});

after(async () => {
  await namespaces?.deleteAll();
});

describe('images only pods run', () => {
  test('dry run: the older revision\'s image (at the digest its pods run), the pod\'s own image and the debugger are planned and reported, not patched', async () => {
    const run = await runCli(['sync', '--dry-run', '-o', 'json', ...args]);
    assert.equal(run.code, 0, run.stderr);
    const plan = json(run);
    const rows = plan.containers.map((c: Doc) => [c.name, c.container, c.image, c.action, c.code, c.pod === undefined ? '-' : 'pod']);
    assert.deepEqual(rows.sort(), [
      ['api', 'app', ref.api, 'patch', 'patch', '-'],
      ['api', 'app', ref.hotfix, 'skip', 'pod-only', 'pod'],
      ['api', 'debugger', ref.debug, 'skip', 'ephemeral', 'pod'],
      ['web', 'app', ref.app1, 'skip', 'pod-only', 'pod'],
      ['web', 'app', ref.app2, 'patch', 'patch', '-'],
    ].sort());
    const old = plan.containers.find((c: Doc) => c.image === ref.app1);
    assert.match(old.pod, /^web-/);
    assert.match(old.reason, /^2 pods \(web-[^,]+, …\) of ReplicaSet web-[a-z0-9]+, an older revision, run it: backed up, not patched \(the rollout replaces them\)$/);
    assert.match(plan.containers.find((c: Doc) => c.image === ref.hotfix).reason, /^pod api-[-a-z0-9]+ runs it, though no pod template names it/);

    const image = (source: string) => plan.images.find((i: Doc) => i.source === source);
    assert.deepEqual([image(ref.app1).action, image(ref.app1).digest, image(ref.app1).upstreamDigest], ['copy', seeded.app1.digest, seeded.moved.digest],
      'what runs is backed up, not what the tag names now');
    assert.deepEqual([image(ref.hotfix).digest, image(ref.debug).digest, image(ref.app2).digest], [seeded.hotfix.digest, seeded.debug.digest, seeded.app2.digest]);
    assert.equal(plan.images.length, 5);
    assert.deepEqual(plan.workloads.map((w: Doc) => [w.name, w.action]).sort(), [['api', 'patch'], ['web', 'patch']]);
    assert.deepEqual(plan.summary.containers, { total: 5, patch: 2, unchanged: 0, skip: 3, error: 0 });
    assert.equal(plan.summary.drifted, 1);

    const table = await runCli(['sync', '--dry-run', ...args]);
    assert.match(table.stdout, /^Containers: 5: 2 to patch, 0 unchanged, 3 skipped, 0 errors\. 3 of them only pods run \(an older revision, a change made on a pod, kubectl debug\): backed up, not patched\.$/m);
  });

  test('sync: every image that runs is copied and reads back from the backup; only the templates are patched', async () => {
    const run = await runCli(['sync', '-o', 'json', ...args]);
    assert.equal(run.code, 0, run.stderr);
    const report = json(run);
    assert.deepEqual(report.workloads.map((w: Doc) => [w.name, w.result]).sort(), [['api', 'patched'], ['web', 'patched']]);
    assert.ok(report.images.every((i: Doc) => i.result === 'copied'), JSON.stringify(report.images.map((i: Doc) => [i.source, i.result])));
    assert.deepEqual(report.summary.containers, { total: 5, patched: 2, unchanged: 0, skipped: 3, failed: 0 });

    // Read back: the older revision's digest, the pod's own image and the debugger's, each held by its anchor tag and whole.
    for (const [name, seed] of [['app', seeded.app1], ['api', seeded.hotfix], ['debug', seeded.debug]] as const) {
      assert.equal(await manifestDigest(env.registries.backup, backupRepository(name), anchorTag(seed.digest)), seed.digest, `${name}@${seed.digest} is in the backup`);
      const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}/${name}@${seed.digest}` }, { registry: env.registries.backup, ref: `${backupRepository(name)}@${seed.digest}` });
      assert.ok(check.identical, check.differences?.join('; '));
    }

    const web = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    assert.equal(web.spec!.template.spec!.containers[0]!.image, `${env.registries.backup.host}/${backupRepository('app')}:2.0@${seeded.app2.digest}`, 'the template: its own image, pinned');
    assert.deepEqual(JSON.parse(web.metadata!.annotations!['image-clone.io/original-images']!).containers, { app: { original: ref.app2, backup: web.spec!.template.spec!.containers[0]!.image } });
    const replicaSets = (await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=web' })).items;
    assert.ok(replicaSets.some((rs) => rs.spec!.template!.spec!.containers[0]!.image === ref.app1), 'the old ReplicaSet is its Deployment\'s to change');
    assert.equal((await podsOf('web')).filter((p) => imageOf(p) === ref.app1).length, 2, 'the old pods are not touched');
    const api = await apps.readNamespacedDeployment({ name: 'api', namespace: ns });
    assert.equal(api.spec!.template.spec!.containers[0]!.image, `${env.registries.backup.host}/${backupRepository('api')}:1.0@${seeded.api.digest}`);
    assert.ok((await podsOf('api')).some((p) => imageOf(p) === ref.hotfix && p.spec!.ephemeralContainers?.[0]?.image === ref.debug), 'the pod keeps its own image and debugger');
  });

  test('the next dry run has nothing to do: what only pods run is present in the backup, and still reported', async () => {
    const run = await runCli(['sync', '--dry-run', '--exit-code', '-o', 'json', ...args]);
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    const plan = json(run);
    assert.deepEqual(plan.images.find((i: Doc) => i.source === ref.app1 && i.digest === seeded.app1.digest)?.action, 'present');
    assert.deepEqual(plan.containers.filter((c: Doc) => c.pod !== undefined).map((c: Doc) => c.image).sort(), [ref.app1, ref.debug, ref.hotfix].sort(),
      'the new revision\'s pending pod, on the image image-clone replaced, is covered by its template\'s row');
    assert.deepEqual(plan.workloads.map((w: Doc) => [w.name, w.action]).sort(), [['api', 'unchanged'], ['web', 'unchanged']]);
  });
});
