// The node-rotation drill, the problem image-clone exists for, on the harness's real node:
//  1. workloads of every kind run real pods from a source registry (a multi-platform image, one used
//     by digest, an init container, and a control workload excluded from the backup);
//  2. `image-clone sync` backs them up into the token-auth `backup` registry and patches them (with a
//     pull secret): every pod runs from the backup;
//  3. the disaster: the source registry is stopped and its storage deleted, the node's image store is
//     wiped, every pod is deleted;
//  4. every backed-up workload comes back Running from the backup; the control cannot pull.
// Pod statuses are the kubelet's: sync's running-digest logic reads the imageIDs containerd reported
// (the source tag of `web` is moved before the sync, and the backup must hold what ran).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { pushImage, testImage, type BuiltImage } from '../harness/images.ts';
import { podTemplate } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, runCli, writeRegistryConfig } from '../integration/helpers.ts';
import {
  digestOf, ensurePullSecret, jobFromCronJob, nodeEnv, nodeImages, startOwnRegistries, traceLines, waitForPodPhase, waitForRunningPods, wipeNodeImages,
  type OwnRegistries,
} from './helpers.ts';
import { waitUntil } from '../integration/helpers.ts';

const env = await nodeEnv();
const { core, batch, apps } = kubeClients(adminKubeConfig(env));
const namespace = 'drill';
const backup = env.registries.backup;

let lost: OwnRegistries; // the drill's source registry, destroyed in step 3
let lostHost: string;
const built: Record<string, BuiltImage> = {};
const ref = (name: string) => `${lostHost}/drill/${name}:1`;
const backupRepo = (name: string) => `mirror/${lostHost.replace(':', '_')}/drill/${name}`;
/** What each workload's containers must run: container name -> the source image's digest. */
const expected: Record<string, { selector: string; count: number; containers: Record<string, string> }> = {};

before(async () => {
  lost = await startOwnRegistries();
  lostHost = lost.registries.source!.host;
  built.web = testImage('drill/web', ['linux/amd64', 'linux/arm64']);
  for (const name of ['init', 'db', 'agent', 'report', 'legacy', 'debug', 'control']) built[name] = testImage(`drill/${name}`);
  for (const [name, image] of Object.entries(built)) await pushImage(lostHost, `drill/${name}`, '1', image);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  // The pull secret sync copies into the namespaces it patches: the backup's pull-only identity.
  await ensurePullSecret(env);
});

after(async () => {
  await lost?.destroy();
});

const template = (app: string, image: string, extra: Record<string, unknown> = {}) => podTemplate(app, [{ name: app, image }], { terminationGracePeriodSeconds: 5, ...extra });

describe('node-rotation drill', () => {
  test('1. workloads of every kind run real pods from the source registry', async () => {
    const web = { ...template('web', ref('web')) };
    web.spec = { ...web.spec, initContainers: [{ name: 'init', image: ref('init'), command: ['/bin/true'] }] } as typeof web.spec;
    await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: web } } });
    await apps.createNamespacedStatefulSet({ namespace, body: { metadata: { name: 'db' }, spec: { serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db', ref('db')) } } });
    await apps.createNamespacedDaemonSet({ namespace, body: { metadata: { name: 'agent' }, spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent', ref('agent')) } } });
    await core.createNamespacedReplicationController({ namespace, body: { metadata: { name: 'legacy' }, spec: { replicas: 1, selector: { app: 'legacy' }, template: template('legacy', ref('legacy')) } } });
    // A bare Pod can never gain imagePullSecrets, so it is created with the name sync's copy will have.
    await core.createNamespacedPod({ namespace, body: { metadata: { name: 'debug', labels: { app: 'debug' } }, spec: { ...template('debug', ref('debug')).spec, imagePullSecrets: [{ name: 'image-clone-pull' }] } } });
    // Used by digest, never fires on its own (the test makes its Jobs, as `kubectl create job --from` does).
    await batch.createNamespacedCronJob({
      namespace,
      body: {
        metadata: { name: 'report' },
        spec: { schedule: '0 0 1 1 *', jobTemplate: { spec: { backoffLimit: 0, template: { metadata: { labels: { app: 'report' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'report', image: `${lostHost}/drill/report@${built.report!.digest}`, command: ['/bin/sh', '-c', 'cat /etc/image'] }] } } } } },
      },
    });
    await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'control' }, spec: { replicas: 1, selector: { matchLabels: { app: 'control' } }, template: template('control', ref('control')) } } });

    expected.web = { selector: 'app=web', count: 2, containers: { web: built.web!.digest, init: built.init!.digest } };
    for (const name of ['db', 'agent', 'legacy', 'debug']) expected[name] = { selector: `app=${name}`, count: 1, containers: { [name]: built[name]!.digest } };
    for (const [name, want] of [...Object.entries(expected), ['control', { selector: 'app=control', count: 1, containers: { control: built.control!.digest } }] as const]) {
      const pods = await waitForRunningPods(core, namespace, want.selector, want.count, 90_000);
      for (const pod of pods) assertRunsDigests(pod, want.containers, `${name} (from source)`);
    }
    await jobFromCronJob(batch, namespace, 'report', 'report-fired');
    const job = await jobPod('report-fired');
    await waitForPodPhase(core, namespace, job, 'Succeeded');
    // The digest the node reports for the multi-platform image is the index's, the one the tag named.
    const webPod = (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items[0]!;
    assert.equal(digestOf(webPod.status!.containerStatuses![0]!.imageID), built.web!.digest);
  });

  test('2. image-clone sync backs up what the pods run, and every pod runs from the backup', async () => {
    // The source tag moves on after the pods started: the backup must hold what runs (the imageID
    // containerd reported), not what the tag names now.
    await pushImage(lostHost, 'drill/web', '1', testImage('drill/web-moved-on'));
    const traceStart = (await traceLines(env.registryTrace)).length;
    const registryConfig = await writeRegistryConfig(env, ['backup']);
    const run = await runCli(['sync', '--backup', `${backup.host}/mirror`, '-n', namespace, '--kubeconfig', env.kubeconfig,
      '--registry-config', registryConfig, '--insecure-registry', lostHost, '--insecure-registry', backup.host,
      '--exclude-image', '*/drill/control:*', '--pull-secret', 'image-clone-pull', '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);

    const backupRef = (name: string) => `${backup.host}/${backupRepo(name)}:1@${built[name]!.digest}`;
    const deployment = await apps.readNamespacedDeployment({ name: 'web', namespace });
    assert.equal(deployment.spec!.template.spec!.containers[0]!.image, backupRef('web'));
    assert.equal(deployment.spec!.template.spec!.initContainers![0]!.image, backupRef('init'));
    assert.deepEqual(deployment.spec!.template.spec!.imagePullSecrets?.map((s) => s.name), ['image-clone-pull']);
    const control = await apps.readNamespacedDeployment({ name: 'control', namespace });
    assert.equal(control.spec!.template.spec!.containers[0]!.image, ref('control'), 'the excluded control is left alone');
    const cronJob = await batch.readNamespacedCronJob({ name: 'report', namespace });
    assert.equal(cronJob.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, `${backup.host}/${backupRepo('report')}@${built.report!.digest}`);

    // A ReplicationController has no rollout: its pod is replaced as an operator would.
    await core.deleteCollectionNamespacedPod({ namespace, labelSelector: 'app=legacy' });
    for (const [name, want] of Object.entries(expected)) {
      const pods = await waitForRunningPods(core, namespace, want.selector, want.count, 90_000, (pod) => pod.spec!.containers[0]!.image!.startsWith(`${backup.host}/`));
      for (const pod of pods) assertRunsDigests(pod, want.containers, `${name} (after sync)`);
    }
    // The node resolved them at the backup (with the copied pull secret: anonymous gets nothing there);
    // it already held the content under the source's name, so it needed no blob.
    const pulls = (await traceLines(env.registryTrace, traceStart)).filter((l) => l.registry === 'backup' && l.status === 200);
    for (const name of ['web', 'init', 'db', 'agent', 'legacy', 'debug']) {
      assert.ok(pulls.some((l) => l.path === `/v2/${backupRepo(name)}/manifests/${built[name]!.digest}`), `the node pulled ${name} from the backup`);
    }
    const secret = await core.readNamespacedSecret({ name: 'image-clone-pull', namespace });
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
  });

  test('3 and 4. source gone, node rotated, pods deleted: every backed-up workload comes back from the backup; the control cannot pull', async () => {
    const debug = await core.readNamespacedPod({ name: 'debug', namespace });
    // The disaster.
    await lost.destroy();
    await assert.rejects(fetch(`http://${lostHost}/v2/`), 'the source registry is gone');
    const wiped = wipeNodeImages(env);
    assert.ok(wiped.some((r) => r.startsWith(`${backup.host}/`)) && wiped.some((r) => r.startsWith(`${lostHost}/`)), JSON.stringify(wiped));
    const traceStart = (await traceLines(env.registryTrace)).length;
    await core.deleteCollectionNamespacedPod({ namespace });
    await waitUntil('every pod of the drill deleted', async () => (await core.listNamespacedPod({ namespace, labelSelector: 'app=debug' })).items.length === 0);

    // A bare Pod has no controller to bring it back: recreated from its (patched) spec, as a runbook would.
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'debug', labels: debug.metadata!.labels! }, spec: { ...debug.spec!, nodeName: undefined } },
    });
    for (const [name, want] of Object.entries(expected)) {
      const pods = await waitForRunningPods(core, namespace, want.selector, want.count, 120_000);
      for (const pod of pods) {
        assertRunsDigests(pod, want.containers, `${name} (after the rotation)`);
        // With the node's store wiped, the only name the node knows for the digest is the backup's.
        for (const status of [...(pod.status!.containerStatuses ?? []), ...(pod.status!.initContainerStatuses ?? [])]) {
          assert.ok(status.imageID!.startsWith(`${backup.host}/mirror/`), `${name}: ${status.imageID}`);
        }
      }
    }
    // The CronJob's next Job runs from the backup too.
    await jobFromCronJob(batch, namespace, 'report', 'report-after-rotation');
    const job = await waitForPodPhase(core, namespace, await jobPod('report-after-rotation'), 'Succeeded');
    assert.equal(digestOf(job.status!.containerStatuses![0]!.imageID), built.report!.digest);
    const log = await core.readNamespacedPodLog({ name: job.metadata!.name!, namespace });
    assert.equal(log, 'drill/report linux/amd64\n');

    // The control proves the drill: its image existed only in the lost registry.
    let reason: string | undefined;
    await waitUntil('the control to fail pulling', async () => {
      const [pod] = (await core.listNamespacedPod({ namespace, labelSelector: 'app=control' })).items;
      reason = pod?.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      return reason === 'ErrImagePull' || reason === 'ImagePullBackOff';
    }, 60_000);
    const events = await core.listNamespacedEvent({ namespace, fieldSelector: 'reason=Failed' });
    assert.ok(events.items.some((e) => e.message?.includes(ref('control')) && /ErrImagePull|failed to (pull|resolve)/i.test(e.message ?? '')), JSON.stringify(events.items.map((e) => e.message)));

    // Everything came from the backup, and the node knows no image of the lost registry.
    const pulls = (await traceLines(env.registryTrace, traceStart)).filter((l) => l.registry === 'backup' && l.status === 200);
    for (const name of ['web', 'init', 'db', 'agent', 'legacy', 'debug', 'report']) {
      assert.ok(pulls.some((l) => l.path === `/v2/${backupRepo(name)}/manifests/${built[name]!.digest}`), `the node pulled ${name} from the backup again`);
      assert.ok(pulls.some((l) => l.method === 'GET' && l.path.startsWith(`/v2/${backupRepo(name)}/blobs/`)), `the node downloaded ${name}'s blobs from the backup again`);
    }
    assert.deepEqual([...nodeImages(env).keys()].filter((r) => r.startsWith(`${lostHost}/`)), []);
  });
});

async function jobPod(job: string): Promise<string> {
  let name: string | undefined;
  await waitUntil(`a pod of Job ${job}`, async () => {
    name = (await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` })).items[0]?.metadata?.name;
    return !!name;
  });
  return name!;
}

/** Every container (and init container) reports, through the kubelet, the digest expected for it. */
function assertRunsDigests(pod: V1Pod, containers: Record<string, string>, what: string): void {
  const statuses = [...(pod.status!.containerStatuses ?? []), ...(pod.status!.initContainerStatuses ?? [])];
  for (const [container, digest] of Object.entries(containers)) {
    const status = statuses.find((s) => s.name === container);
    assert.ok(status, `${what}: no status for ${container}`);
    assert.equal(digestOf(status.imageID), digest, `${what}: ${container} runs ${status.imageID}`);
  }
}
