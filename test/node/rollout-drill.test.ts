// The node-rotation drill for an Argo Rollout (the real CRD, from the project's Go module), on the
// harness's real node. No Argo Rollouts controller runs in the harness, so the test does what it
// would: it creates the ReplicaSet (owned by the Rollout) for the Rollout's template, and after the
// sync a new ReplicaSet for the new template while the old one is scaled to zero. Pods, their pulls
// and their statuses are the real kubelet's and containerd's.
//  1. a Rollout's ReplicaSet runs a real pod from a source registry;
//  2. sync patches the Rollout (a JSON merge patch, with a pull secret), not the ReplicaSet; the new
//     revision's pod runs from the backup;
//  3. the source registry is destroyed, the node's image store wiped, the pod deleted: it comes back
//     from the backup;
//  4. restore puts the Rollout's original image back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { pushImage, testImage, type BuiltImage } from '../harness/images.ts';
import { deleteCrds, installCrd, moduleCrd, realCrds } from '../integration/crds.ts';
import { podTemplate, replicaSet } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, runCli, writeRegistryConfig } from '../integration/helpers.ts';
import { digestOf, ensurePullSecret, nodeEnv, startOwnRegistries, waitForRunningPods, wipeNodeImages, type OwnRegistries } from './helpers.ts';

const env = await nodeEnv();
const kc = adminKubeConfig(env);
const { core, apps } = kubeClients(kc);
const custom = kc.makeApiClient(CustomObjectsApi);
const namespace = 'rollout-drill';
const backup = env.registries.backup;
const rolloutApi = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts', namespace };

let lost: OwnRegistries;
let source: string;
let built: BuiltImage;

type Doc = Record<string, any>;
const readRollout = async () => (await custom.getNamespacedCustomObject({ ...rolloutApi, name: 'web' })) as Doc;

/** What the Rollouts controller does for a template: a ReplicaSet the Rollout controls, pods labelled with the revision. */
async function controllerReplicaSet(revision: string, replicas: number): Promise<void> {
  const rollout = await readRollout();
  const template = structuredClone(rollout.spec.template);
  template.metadata.labels = { ...template.metadata.labels, 'rollouts-pod-template-hash': revision };
  const rs = replicaSet(`web-${revision}`, [], { replicas, metadata: {
    labels: { app: 'web', 'rollouts-pod-template-hash': revision },
    ownerReferences: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'web', uid: rollout.metadata.uid, controller: true }],
  } }) as Doc;
  rs.spec.selector = { matchLabels: { app: 'web', 'rollouts-pod-template-hash': revision } };
  rs.spec.template = template;
  await apps.createNamespacedReplicaSet({ namespace, body: rs });
}

before(async () => {
  lost = await startOwnRegistries();
  source = lost.registries.source!.host;
  built = testImage('rodrill/web');
  await pushImage(source, 'rodrill/web', '1', built);
  await installCrd(kc, await moduleCrd(realCrds.rollout));
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await ensurePullSecret(env);
});

after(async () => {
  await lost?.destroy();
  await core.deleteNamespace({ name: namespace }).catch(() => {});
  await deleteCrds(kc, ['rollouts.argoproj.io']);
});

describe('node-rotation drill for an Argo Rollout', () => {
  test('1. the Rollout\'s ReplicaSet runs a real pod from the source registry', async () => {
    await custom.createNamespacedCustomObject({ ...rolloutApi, body: {
      apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web', namespace },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, strategy: { canary: {} },
        template: podTemplate('web', [{ name: 'web', image: `${source}/rodrill/web:1` }], { terminationGracePeriodSeconds: 5 }) },
    } });
    await controllerReplicaSet('one', 1);
    const [pod] = await waitForRunningPods(core, namespace, 'rollouts-pod-template-hash=one', 1, 90_000);
    assert.equal(digestOf(pod!.status!.containerStatuses![0]!.imageID), built.digest);
  });

  test('2. sync patches the Rollout, not its ReplicaSet, and the new revision runs from the backup', async () => {
    const registryConfig = await writeRegistryConfig(env, ['backup']);
    const run = await runCli(['sync', '--backup', `${backup.host}/mirror`, '-n', namespace, '--kubeconfig', env.kubeconfig,
      '--registry-config', registryConfig, '--insecure-registry', source, '--insecure-registry', backup.host, '--pull-secret', 'image-clone-pull', '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as Doc;
    assert.deepEqual(report.workloads.map((w: Doc) => [w.kind, w.name, w.result]), [['Rollout.argoproj.io', 'web', 'patched']]);
    const rollout = await readRollout();
    const expected = `${backup.host}/mirror/${source.replace(':', '_')}/rodrill/web:1@${built.digest}`;
    assert.equal(rollout.spec.template.spec.containers[0].image, expected);
    assert.deepEqual(rollout.spec.template.spec.imagePullSecrets, [{ name: 'image-clone-pull' }]);
    assert.equal(rollout.spec.template.spec.terminationGracePeriodSeconds, 5, 'the rest of the template as it was');
    const old = await apps.readNamespacedReplicaSet({ name: 'web-one', namespace });
    assert.equal(old.spec!.template!.spec!.containers[0]!.image, `${source}/rodrill/web:1`, 'the ReplicaSet is the controller\'s');

    // The controller's part: a ReplicaSet for the new template, the old one scaled to zero.
    await controllerReplicaSet('two', 1);
    await apps.patchNamespacedReplicaSetScale({ name: 'web-one', namespace, body: { spec: { replicas: 0 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const [pod] = await waitForRunningPods(core, namespace, 'rollouts-pod-template-hash=two', 1, 90_000);
    assert.equal(pod!.spec!.containers[0]!.image, expected);
    // containerd may name the image by the source reference it already held the digest under; the digest is what counts.
    assert.equal(digestOf(pod!.status!.containerStatuses![0]!.imageID), built.digest, 'the same digest as before');
  });

  test('3. source gone, node rotated, pod deleted: the Rollout\'s pod comes back from the backup', async () => {
    await lost.destroy();
    await assert.rejects(fetch(`http://${source}/v2/`), 'the source registry is gone');
    wipeNodeImages(env);
    await core.deleteCollectionNamespacedPod({ namespace, labelSelector: 'app=web' });
    const [pod] = await waitForRunningPods(core, namespace, 'rollouts-pod-template-hash=two', 1, 120_000);
    const status = pod!.status!.containerStatuses![0]!;
    assert.equal(digestOf(status.imageID), built.digest);
    assert.ok(status.imageID.startsWith(`${backup.host}/mirror/`), status.imageID);
  });

  test('4. restore puts the Rollout\'s original image back and removes the annotation', async () => {
    const run = await runCli(['restore', '-n', namespace, '--kubeconfig', env.kubeconfig, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const rollout = await readRollout();
    assert.equal(rollout.spec.template.spec.containers[0].image, `${source}/rodrill/web:1`);
    assert.equal(rollout.metadata.annotations?.['image-clone.io/original-images'], undefined);
    assert.equal(rollout.spec.template.spec.imagePullSecrets, undefined, 'the pull secret sync added is taken out again');
  });
});
