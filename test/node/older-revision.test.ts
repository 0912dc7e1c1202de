// A Deployment mid-rollout on the harness's real node: the digest its older revision runs is the
// one the kubelet reports (containerd's imageID), and that is what sync backs up.
//  1. web runs app:1 from a source registry; the tag then moves upstream, and web is set to app:2
//     with a readiness probe that never passes, so the rollout stays where it is: the old pod runs;
//  2. sync backs up both revisions, app:1 at the digest the old pod runs, reports the old one as
//     `pod-only`, and patches the Deployment for its template's image only;
//  3. the source is destroyed, web deleted and the node's images wiped: a pod pulls the older
//     revision's copy from the backup, and runs that same digest.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { pushImage, testImage, type BuiltImage } from '../harness/images.ts';
import { anchorTag } from '../../src/core/naming.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, manifestDigest, runCli, waitUntil, writeRegistryConfig } from '../integration/helpers.ts';
import { digestOf, ensurePullSecret, nodeEnv, startOwnRegistries, waitForRunningPods, wipeNodeImages, type OwnRegistries } from './helpers.ts';

const env = await nodeEnv();
const { core, apps } = kubeClients(adminKubeConfig(env));
const namespace = 'older-revision';
const backup = env.registries.backup;

let lost: OwnRegistries;
let source: string;
const built = {} as Record<'one' | 'moved' | 'two', BuiltImage>;
const backupRepository = () => `mirror/${source.replace(':', '_')}/rpnode/web`;
const podsOf = async (): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items.filter((p) => !p.metadata?.deletionTimestamp);

before(async () => {
  lost = await startOwnRegistries();
  source = lost.registries.source!.host;
  built.one = testImage('rpnode/web 1');
  built.moved = testImage('rpnode/web 1, rebuilt');
  built.two = testImage('rpnode/web 2');
  await pushImage(source, 'rpnode/web', '1', built.one);
  await pushImage(source, 'rpnode/web', '2', built.two);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await ensurePullSecret(env);
});

after(async () => {
  await lost?.destroy();
  await core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('an older revision on a real node', () => {
  test('1. mid-rollout: the old pod runs app:1 (the digest the kubelet reports), the new revision is never ready', async () => {
    await apps.createNamespacedDeployment({ namespace, body: deployment('web', `${source}/rpnode/web:1`, {
      replicas: 1, spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }, pod: { terminationGracePeriodSeconds: 5 },
    }) });
    const [old] = await waitForRunningPods(core, namespace, 'app=web', 1, 90_000);
    assert.equal(digestOf(old!.status!.containerStatuses![0]!.imageID), built.one.digest);
    await pushImage(source, 'rpnode/web', '1', built.moved); // the tag moves upstream
    await apps.patchNamespacedDeployment({ name: 'web', namespace, body: { spec: { template: { spec: { containers: [{
      name: 'app', image: `${source}/rpnode/web:2`, readinessProbe: { exec: { command: ['/bin/false'] }, periodSeconds: 1 },
    }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    await waitUntil('the new revision\'s pod started, the old one still running', async () => {
      const pods = await podsOf();
      return pods.length === 2 && pods.some((p) => p.status?.containerStatuses?.[0]?.state?.running && p.spec!.containers[0]!.image!.endsWith(':2'))
        && pods.some((p) => p.metadata!.name === old!.metadata!.name && p.status?.phase === 'Running');
    }, 90_000);
  });

  test('2. sync backs up the digest the old pod runs, reports it, and patches only the template\'s image', async () => {
    const registryConfig = await writeRegistryConfig(env, ['backup']);
    const run = await runCli(['sync', '--backup', `${backup.host}/mirror`, '-n', namespace, '--kubeconfig', env.kubeconfig,
      '--registry-config', registryConfig, '--insecure-registry', source, '--insecure-registry', backup.host, '--pull-secret', 'image-clone-pull', '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.deepEqual(report.workloads.map((w: any) => [w.name, w.result]), [['web', 'patched']]);
    const old = report.containers.find((c: any) => c.pod !== undefined);
    assert.deepEqual([old?.image, old?.code, old?.result], [`${source}/rpnode/web:1`, 'pod-only', 'skipped']);
    assert.match(old.reason, /of ReplicaSet web-[a-z0-9]+, an older revision, runs it/);
    const image = report.images.find((i: any) => i.source === `${source}/rpnode/web:1`);
    assert.deepEqual([image.digest, image.upstreamDigest, image.result], [built.one.digest, built.moved.digest, 'copied'], 'what runs, not what the tag names now');
    assert.equal(await manifestDigest(backup, backupRepository(), anchorTag(built.one.digest)), built.one.digest);

    const web = await apps.readNamespacedDeployment({ name: 'web', namespace });
    assert.equal(web.spec!.template.spec!.containers[0]!.image, `${backup.host}/${backupRepository()}:2@${built.two.digest}`);
    const replicaSets = (await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=web' })).items;
    assert.ok(replicaSets.some((rs) => rs.spec!.template!.spec!.containers[0]!.image === `${source}/rpnode/web:1`), 'the old ReplicaSet is the Deployment\'s to change');
    assert.ok((await podsOf()).some((p) => digestOf(p.status?.containerStatuses?.[0]?.imageID) === built.one.digest), 'the old pod runs on');
  });

  test('3. source gone, node wiped: the older revision\'s copy pulls from the backup, the same digest', async () => {
    await lost.destroy();
    // Nothing of web runs on: no container holds an image the wipe must leave.
    await apps.deleteNamespacedDeployment({ name: 'web', namespace, propagationPolicy: 'Foreground' });
    await waitUntil('web\'s pods gone', async () => (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items.length === 0, 90_000);
    wipeNodeImages(env);
    const copy = `${backup.host}/${backupRepository()}:1@${built.one.digest}`;
    await core.createNamespacedPod({ namespace, body: { metadata: { name: 'from-backup', labels: { app: 'from-backup' } }, spec: {
      containers: [{ name: 'app', image: copy }], imagePullSecrets: [{ name: 'image-clone-pull' }], terminationGracePeriodSeconds: 5,
    } } });
    const [pod] = await waitForRunningPods(core, namespace, 'app=from-backup', 1, 120_000);
    const status = pod!.status!.containerStatuses![0]!;
    assert.equal(digestOf(status.imageID), built.one.digest);
    assert.ok(status.imageID.startsWith(`${backup.host}/mirror/`), status.imageID);
  });
});
