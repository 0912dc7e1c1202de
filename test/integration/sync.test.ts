// `image-clone sync` for real: copy, verify, patch, converge; then restore. Against the harness's
// API server (with its real controller-manager) and registries. Each test sets up what it needs
// (its own images, under a repository of its own, and its own namespaces), so any one runs alone.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { createIn, cronJob, daemonSet, deployment, gate, harnessFixtures, pod, replicaSet, replicationController, statefulSet, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, verifyCopy, waitUntil, type CliRun, type KubeClients, type SeedResult } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];

const backupPrefix = () => `${env.registries.backup.host}/sync`;
const backupName = (image: string) => `${backupPrefix()}/${env.registries.source.host.replace(':', '_')}/${image}`;
const sync = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> => runCli(['sync', '--backup', backupPrefix(),
  '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig, ...insecure, ...args], extraEnv);
const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const src = () => env.registries.source.host;

async function deploymentImage(ns: string, name: string): Promise<string> {
  return (await kube.apps.readNamespacedDeployment({ name, namespace: ns })).spec!.template.spec!.containers[0]!.image!;
}

async function linesAfter(path: string, skip: number): Promise<Array<Record<string, any>>> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).slice(skip).map((l) => JSON.parse(l));
}

type Image = 'web' | 'api' | 'job' | 'pinned';
const imageTags: Record<Image, string> = { web: 'web:1.0', api: 'api:2.0', job: 'job:1', pinned: 'pinned:1' };

/** Seeds these images under a repository of the test's own: web and api share a base layer. */
async function seedImages(names: Image[]): Promise<{ repo: string; images: Record<Image, SeedResult> }> {
  const repo = uniqueRepo('sync');
  const images = {} as Record<Image, SeedResult>;
  const options = {
    web: { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 64 * 1024, sharedLayers: 1, sharedSeed: 77, seed: 1, format: 'oci' as const },
    api: { layers: 2, layerSize: 64 * 1024, sharedLayers: 1, sharedSeed: 77, seed: 2 },
    job: { layers: 1, layerSize: 16 * 1024, seed: 3 },
    pinned: { layers: 1, layerSize: 16 * 1024, seed: 4 },
  };
  for (const name of names) images[name] = await seedImage(env.registries.source, `${repo}/${imageTags[name]}`, options[name]);
  return { repo, images };
}

interface AllKinds {
  nsA: string;
  nsB: string;
  repo: string;
  images: Record<Image, SeedResult>;
  /** The images as the workloads name them. */
  web: string;
  api: string;
  job: string;
  pinned: string;
}

/**
 * Two namespaces of the test's own with a workload of every kind over four fresh images, one of
 * them by digest, one image never pushed, and a Helm-managed Deployment; the web Deployment has
 * its first ReplicaSet.
 */
async function allKinds(t: TestContext): Promise<AllKinds> {
  const { repo, images } = await seedImages(['web', 'api', 'job', 'pinned']);
  const nsA = await namespaces.create('sync-a', t);
  const nsB = await namespaces.create('sync-b', t);
  const web = `${src()}/${repo}/web:1.0`;
  const api = `${src()}/${repo}/api:2.0`;
  const job = `${src()}/${repo}/job:1`;
  const pinned = `${src()}/${repo}/pinned@${images.pinned.digest}`;
  const { objects, apps } = kube;
  await createIn(objects, nsA, deployment('web', web, { replicas: 1 }));
  await createIn(objects, nsA, statefulSet('db', api, { replicas: 0 }));
  await createIn(objects, nsA, daemonSet('agent', pinned));
  await createIn(objects, nsB, cronJob('nightly', job, { pod: { initContainers: [{ name: 'init', image: api }] } }));
  await createIn(objects, nsB, replicationController('legacy', web, { replicas: 0 }));
  await createIn(objects, nsB, replicaSet('bare', api, { replicas: 0 }));
  await createIn(objects, nsB, pod('lonely', job));
  await createIn(objects, nsB, deployment('lost', `${src()}/${repo}/never-pushed:1`, { replicas: 1 }));
  await createIn(objects, nsB, deployment('charted', api, { replicas: 1, metadata: { labels: { 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': 'charted' } } }));
  await waitUntil('the web ReplicaSet', async () => (await apps.listNamespacedReplicaSet({ namespace: nsA, labelSelector: 'app=web' })).items.length === 1);
  return { nsA, nsB, repo, images, web, api, job, pinned };
}

/** allKinds() after one sync (which loses the never-pushed image), rolled out to the copies. */
async function synced(t: TestContext): Promise<AllKinds> {
  const set = await allKinds(t);
  const run = await sync(['-n', set.nsA, '-n', set.nsB, '-o', 'json']);
  assert.equal(run.code, 1, `the first sync: exit 1, one image is lost\n${run.stderr}`);
  await waitUntil('the new ReplicaSet', async () => (await kube.apps.listNamespacedReplicaSet({ namespace: set.nsA, labelSelector: 'app=web' })).items.length === 2);
  return set;
}

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
});

after(async () => {
  await namespaces?.deleteAll();
});

describe('sync', () => {
  test('every eligible workload of every kind ends up on a verified, byte-identical copy', async (t) => {
    const { nsA, nsB, repo, images, web } = await allKinds(t);
    const { apps, batch, core } = kube;

    const run = await sync(['-n', nsA, '-n', nsB, '-o', 'json'], { TERM: 'xterm-256color' });
    assert.equal(run.code, 1, `exit 1: one image is lost\n${run.stderr}`);
    assert.doesNotMatch(run.stdout + run.stderr, /\u001b\[/, 'no escape codes when not on a terminal, even with TERM set');
    const report = JSON.parse(run.stdout);
    assert.equal(report.dryRun, false);
    assert.deepEqual(report.summary.images, { total: 5, copied: 4, tagged: 0, present: 0, lost: 1, excluded: 0, failed: 0, error: 0 });
    assert.deepEqual(report.summary.workloads, { total: 9, patched: 7, unchanged: 0, skipped: 2, failed: 0 });
    assert.equal(report.summary.containers.total, report.containers.length);
    assert.ok(report.summary.blobs.mounted >= 1, 'the shared base layer was mounted, not uploaded twice');

    // Each workload now runs <backup>…@<the digest it ran before>.
    assert.equal(await deploymentImage(nsA, 'web'), `${backupName(`${repo}/web:1.0`)}@${images.web.digest}`);
    const db = await apps.readNamespacedStatefulSet({ name: 'db', namespace: nsA });
    assert.equal(db.spec!.template.spec!.containers[0]!.image, `${backupName(`${repo}/api:2.0`)}@${images.api.digest}`);
    const agent = await apps.readNamespacedDaemonSet({ name: 'agent', namespace: nsA });
    assert.equal(agent.spec!.template.spec!.containers[0]!.image, `${backupName(`${repo}/pinned`)}@${images.pinned.digest}`);
    const cron = await batch.readNamespacedCronJob({ name: 'nightly', namespace: nsB });
    const cronSpec = cron.spec!.jobTemplate.spec!.template.spec!;
    assert.equal(cronSpec.containers[0]!.image, `${backupName(`${repo}/job:1`)}@${images.job.digest}`);
    assert.equal(cronSpec.initContainers![0]!.image, `${backupName(`${repo}/api:2.0`)}@${images.api.digest}`);
    const rc = await core.readNamespacedReplicationController({ name: 'legacy', namespace: nsB });
    assert.match(rc.spec!.template!.spec!.containers[0]!.image!, /@sha256:/);
    const pod = await core.readNamespacedPod({ name: 'lonely', namespace: nsB });
    assert.equal(pod.spec!.containers[0]!.image, `${backupName(`${repo}/job:1`)}@${images.job.digest}`);
    assert.equal(await deploymentImage(nsB, 'lost'), `${src()}/${repo}/never-pushed:1`, 'a lost image leaves its workload alone');
    assert.equal(await deploymentImage(nsB, 'charted'), `${src()}/${repo}/api:2.0`, 'a Helm-managed workload is not patched by default');
    const original = JSON.parse((await apps.readNamespacedDeployment({ name: 'web', namespace: nsA })).metadata!.annotations!['image-clone.io/original-images']!);
    assert.equal(original.containers.app.original, web);

    // The independent tool finds every copy identical to its source.
    for (const [name, ref] of [['web', `${repo}/web:1.0`], ['api', `${repo}/api:2.0`], ['job', `${repo}/job:1`]] as const) {
      const check = await verifyCopy({ registry: env.registries.source, ref }, { registry: env.registries.backup, ref: `sync/${src().replace(':', '_')}/${ref}` });
      assert.equal(check.identical, true, `${name}: ${check.differences?.join('; ')}`);
    }

    // The real controller-manager rolled the Deployment out once, to a ReplicaSet on the backup image.
    await waitUntil('the new ReplicaSet', async () => (await apps.listNamespacedReplicaSet({ namespace: nsA, labelSelector: 'app=web' })).items.length === 2);
    const sets = (await apps.listNamespacedReplicaSet({ namespace: nsA, labelSelector: 'app=web' })).items;
    assert.deepEqual(sets.map((rs) => rs.spec!.template!.spec!.containers[0]!.image).sort(), [web, `${backupName(`${repo}/web:1.0`)}@${images.web.digest}`].sort());
    assert.equal((await apps.readNamespacedDeployment({ name: 'web', namespace: nsA })).metadata!.annotations!['deployment.kubernetes.io/revision'], '2', 'one rollout');
  });

  test('a second sync copies nothing, patches nothing, and asks the backup once per distinct image', async (t) => {
    const { nsA, nsB } = await synced(t);
    const { apps } = kube;
    const traceBefore = (await readFile(env.registryTrace, 'utf8')).split('\n').filter(Boolean).length;
    const run = await sync(['-n', nsA, '-n', nsB, '-o', 'json']);
    const report = JSON.parse(run.stdout);
    assert.equal(report.summary.images.copied, 0);
    assert.equal(report.summary.workloads.patched, 0);
    assert.equal(report.summary.bytesTransferred, 0);
    const checked = report.images.filter((i: any) => i.result === 'present');
    assert.equal(new Set(checked.map((i: any) => i.source)).size, 4, 'the backed-up images are still checked');
    // The Helm-managed workload still names api:2.0 by tag, the others run its pinned copy: one image, one row.
    assert.equal(checked.length, 4);
    assert.equal(report.summary.images.present, 4);
    const backupRequests = (await linesAfter(env.registryTrace, traceBefore)).filter((r) => r.registry === 'backup');
    const challenges = backupRequests.filter((r) => r.status === 401);
    assert.ok(challenges.length <= 1, `one 401 challenge per run at most, not ${challenges.length}`);
    const distinctImages = new Set(report.images.map((i: any) => i.backup)).size; // the four backed up, and the lost one
    assert.equal(distinctImages, 5);
    assert.ok(backupRequests.length - challenges.length <= distinctImages, `${backupRequests.length - challenges.length} authenticated backup requests for ${distinctImages} distinct images`);
    assert.equal((await apps.readNamespacedDeployment({ name: 'web', namespace: nsA })).metadata!.annotations!['deployment.kubernetes.io/revision'], '2', 'no second rollout');
  });

  test('--patch-managed patches the Helm-managed workload too', async (t) => {
    const { nsB, repo } = await synced(t);
    const run = await sync(['-n', nsB, '--patch-managed', '-o', 'json']);
    assert.equal(run.code, 1, 'still exit 1: the lost image');
    assert.match(await deploymentImage(nsB, 'charted'), new RegExp(`^${backupName(`${repo}/api:2.0`).replace(/[.]/g, '\\.')}@sha256:`));
  });

  test('an image deleted upstream after its backup: the workload is still patched to the copy', async (t) => {
    const { repo, images } = await seedImages(['job']);
    const image = `${src()}/${repo}/job:1`;
    // Backed up by a sync of another namespace that runs it.
    const first = await namespaces.create('sync-backed', t);
    await createIn(kube.objects, first, deployment('early', image, { replicas: 1 }));
    const backedUp = await sync(['-n', first, '-o', 'json']);
    assert.equal(backedUp.code, 0, `the backup: ${backedUp.stderr}`);
    const ns = await namespaces.create('sync-gone', t);
    await createIn(kube.objects, ns, deployment('late', image, { replicas: 1 }));
    const del = await fetch(`http://${src()}/v2/${repo}/job/manifests/${images.job.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, 'deleted from the source');
    const run = await sync(['-n', ns, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.images[0].result, 'present');
    assert.match(report.images[0].reason, /gone upstream; the backup copy is used/);
    assert.equal(await deploymentImage(ns, 'late'), `${backupName(`${repo}/job:1`)}@${images.job.digest}`);
  });

  test('another writer edits a Deployment during the run: their change is kept, ours goes on top', async (t) => {
    const { apps, objects } = kube;
    const ns = await namespaces.create('sync-race', t);
    const repo = uniqueRepo('sync-race');
    const image = `${env.registries.source.host}/${repo}/race:1`;
    await seedImage(env.registries.source, `${repo}/race:1`, { layers: 1, layerSize: 32 * 1024, seed: 50 });
    await seedImage(env.registries.source, `${repo}/race2:1`, { layers: 1, layerSize: 32 * 1024, seed: 51 });
    const blob = gate();
    const proxy = await startFaultProxy({ upstream: env.registries.source.host, rates: {}, gate: blob.until, onEligible: blob.onHeld });
    const viaProxy = image.replace(env.registries.source.host, proxy.host);
    const other = `${proxy.host}/${repo}/race2:1`;
    await createIn(objects, ns, deployment('scaled', viaProxy, { replicas: 1 }));
    await createIn(objects, ns, deployment('retagged', viaProxy, { replicas: 1 }));
    try {
      const running = sync(['--insecure-registry', proxy.host, '-n', ns, '-o', 'json']);
      await blob.held; // the run has planned and is copying: now edit under it
      await apps.patchNamespacedDeployment({ name: 'scaled', namespace: ns, body: { spec: { replicas: 3 }, metadata: { labels: { team: 'payments' } } } }, smp);
      await apps.patchNamespacedDeployment({ name: 'retagged', namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image: other }] } } } } }, smp);
      blob.open();
      const run = await running;
      assert.equal(run.code, 0, run.stderr);
      const scaled = await apps.readNamespacedDeployment({ name: 'scaled', namespace: ns });
      assert.equal(scaled.spec!.replicas, 3, "the other writer's replicas are kept");
      assert.equal(scaled.metadata!.labels!.team, 'payments', "and their label");
      assert.match(scaled.spec!.template.spec!.containers[0]!.image!, /@sha256:/, 'and our image patch went on top');
      assert.equal(await deploymentImage(ns, 'retagged'), other, "the other writer's image is kept, not overwritten");
      const report = JSON.parse(run.stdout);
      assert.match(report.workloads.find((w: any) => w.name === 'retagged').resultReason, /changed during the run/);
      assert.match(run.stderr, /changed while we patched it; re-reading/);
    } finally {
      blob.open();
      await proxy.close();
    }
  });

  test('--log-format json: one JSON object per event line', async (t) => {
    const { repo } = await seedImages(['web']);
    const ns = await namespaces.create('sync-log', t);
    await createIn(kube.objects, ns, deployment('logged', `${src()}/${repo}/web:1.0`, { replicas: 1 }));
    const run = await sync(['-n', ns, '--log-format', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const events = run.stderr.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.event === 'workload-patched' && e.workload === `Deployment/${ns}/logged`));
    assert.ok(events.every((e) => typeof e.time === 'string' && ['info', 'warn', 'error'].includes(e.level)));
  });

  test('restore puts every workload back on its original images and removes the annotation', async (t) => {
    const { nsA, nsB, repo } = await synced(t);
    const { apps, batch, core } = kube;
    const dry = await runCli(['restore', '--kubeconfig', env.kubeconfig, '-n', nsA, '-n', nsB, '--dry-run', '-o', 'json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(await deploymentImage(nsA, 'web') === `${src()}/${repo}/web:1.0`, false, 'a dry run changes nothing');
    const run = await runCli(['restore', '--kubeconfig', env.kubeconfig, '-n', nsA, '-n', nsB, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.summary.containers.failed, 0);
    assert.ok(report.summary.workloads.restored > 0 && report.summary.containers.restored >= report.summary.workloads.restored);
    assert.equal(await deploymentImage(nsA, 'web'), `${src()}/${repo}/web:1.0`);
    const cron = await batch.readNamespacedCronJob({ name: 'nightly', namespace: nsB });
    assert.equal(cron.spec!.jobTemplate.spec!.template.spec!.initContainers![0]!.image, `${src()}/${repo}/api:2.0`);
    assert.equal((await core.readNamespacedPod({ name: 'lonely', namespace: nsB })).spec!.containers[0]!.image, `${src()}/${repo}/job:1`);
    assert.equal((await apps.readNamespacedDeployment({ name: 'web', namespace: nsA })).metadata!.annotations!['image-clone.io/original-images'], undefined);
    const again = JSON.parse((await runCli(['restore', '--kubeconfig', env.kubeconfig, '-n', nsA, '-n', nsB, '-o', 'json'])).stdout);
    assert.equal(again.summary.workloads.total, 0, 'nothing left to restore');
  });
});
