// `image-clone sync` for real: copy, verify, patch, converge; then restore. Against the harness's
// API server (with its real controller-manager) and registries.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import {
  AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject,
} from '@kubernetes/client-node';
import { harnessEnv, type HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { adminKubeConfig, runCli, seedImage, uniqueRepo, verifyCopy, waitUntil, writeRegistryConfig, type CliRun, type SeedResult, insecureFlags, kubeClients } from './helpers.ts';

let env: HarnessEnv;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let batch: BatchV1Api;
let objects: KubernetesObjectApi;
let registryConfig: string;
let insecure: string[];
let namespaces: string[] = [];
let repo: string;
const images = {} as Record<'web' | 'api' | 'job' | 'pinned', SeedResult>;

const backupPrefix = () => `${env.registries.backup.host}/sync`;
const backupName = (image: string) => `${backupPrefix()}/${env.registries.source.host.replace(':', '_')}/${image}`;
const sync = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> => runCli(['sync', '--backup', backupPrefix(),
  '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig, ...insecure, ...args], extraEnv);
const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

async function namespace(prefix: string): Promise<string> {
  const name = (await core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } })).metadata!.name!;
  namespaces.push(name);
  return name;
}

async function create(ns: string, obj: Record<string, unknown>): Promise<void> {
  await objects.create({ ...obj, metadata: { ...(obj.metadata as object), namespace: ns } } as KubernetesObject);
}

const template = (app: string, image: string, extra: Record<string, unknown> = {}) => ({ metadata: { labels: { app } }, spec: { containers: [{ name: 'app', image }], ...extra } });
const deployment = (name: string, image: string, metadata: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, ...metadata },
  spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: template(name, image) },
});

async function deploymentImage(ns: string, name: string): Promise<string> {
  return (await apps.readNamespacedDeployment({ name, namespace: ns })).spec!.template.spec!.containers[0]!.image!;
}

async function linesAfter(path: string, skip: number): Promise<Array<Record<string, any>>> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).slice(skip).map((l) => JSON.parse(l));
}

before(async () => {
  env = await harnessEnv();
  kc = adminKubeConfig(env);
  ({ core, apps, batch, objects } = kubeClients(kc));
  registryConfig = await writeRegistryConfig(env);
  insecure = insecureFlags(env.registries);
  repo = uniqueRepo('sync');
  const src = env.registries.source;
  images.web = await seedImage(src, `${repo}/web:1.0`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 64 * 1024, sharedLayers: 1, sharedSeed: 77, seed: 1, format: 'oci' });
  images.api = await seedImage(src, `${repo}/api:2.0`, { layers: 2, layerSize: 64 * 1024, sharedLayers: 1, sharedSeed: 77, seed: 2 });
  images.job = await seedImage(src, `${repo}/job:1`, { layers: 1, layerSize: 16 * 1024, seed: 3 });
  images.pinned = await seedImage(src, `${repo}/pinned:1`, { layers: 1, layerSize: 16 * 1024, seed: 4 });
});

after(async () => {
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => {});
});

describe('sync', () => {
  let nsA: string;
  let nsB: string;
  const src = () => env.registries.source.host;

  test('every eligible workload of every kind ends up on a verified, byte-identical copy', async () => {
    nsA = await namespace('sync-a');
    nsB = await namespace('sync-b');
    const web = `${src()}/${repo}/web:1.0`;
    const api = `${src()}/${repo}/api:2.0`;
    const job = `${src()}/${repo}/job:1`;
    const pinned = `${src()}/${repo}/pinned@${images.pinned.digest}`;
    await create(nsA, deployment('web', web));
    await create(nsA, { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' }, spec: { serviceName: 'db', replicas: 0, selector: { matchLabels: { app: 'db' } }, template: template('db', api) } });
    await create(nsA, { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent' }, spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent', pinned) } });
    await create(nsB, { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly' }, spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: template('nightly', job, { restartPolicy: 'OnFailure', initContainers: [{ name: 'init', image: api }] }) } } } });
    await create(nsB, { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'legacy' }, spec: { replicas: 0, selector: { app: 'legacy' }, template: template('legacy', web) } });
    await create(nsB, { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'bare' }, spec: { replicas: 0, selector: { matchLabels: { app: 'bare' } }, template: template('bare', api) } });
    await create(nsB, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'lonely' }, spec: { containers: [{ name: 'app', image: job }] } });
    await create(nsB, deployment('lost', `${src()}/${repo}/never-pushed:1`));
    await create(nsB, deployment('charted', api, { labels: { 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': 'charted' } }));
    await waitUntil('the web ReplicaSet', async () => (await apps.listNamespacedReplicaSet({ namespace: nsA, labelSelector: 'app=web' })).items.length === 1);

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

  test('a second sync copies nothing, patches nothing, and asks the backup once per distinct image', async () => {
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

  test('--patch-managed patches the Helm-managed workload too', async () => {
    const run = await sync(['-n', nsB, '--patch-managed', '-o', 'json']);
    assert.equal(run.code, 1, 'still exit 1: the lost image');
    assert.match(await deploymentImage(nsB, 'charted'), new RegExp(`^${backupName(`${repo}/api:2.0`).replace(/[.]/g, '\\.')}@sha256:`));
  });

  test('an image deleted upstream after its backup: the workload is still patched to the copy', async () => {
    const ns = await namespace('sync-gone');
    const image = `${src()}/${repo}/job:1`;
    await create(ns, deployment('late', image));
    const del = await fetch(`http://${src()}/v2/${repo}/job/manifests/${images.job.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, 'deleted from the source');
    const run = await sync(['-n', ns, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.images[0].result, 'present');
    assert.match(report.images[0].reason, /gone upstream; the backup copy is used/);
    assert.equal(await deploymentImage(ns, 'late'), `${backupName(`${repo}/job:1`)}@${images.job.digest}`);
  });

  test('another writer edits a Deployment during the run: their change is kept, ours goes on top', async () => {
    const ns = await namespace('sync-race');
    const image = `${env.registries.source.host}/${repo}/race:1`;
    await seedImage(env.registries.source, `${repo}/race:1`, { layers: 1, layerSize: 32 * 1024, seed: 50 });
    await seedImage(env.registries.source, `${repo}/race2:1`, { layers: 1, layerSize: 32 * 1024, seed: 51 });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let arrived!: () => void;
    const blobRequested = new Promise<void>((resolve) => (arrived = resolve));
    const proxy = await startFaultProxy({ upstream: env.registries.source.host, rates: {}, gate, onEligible: () => arrived() });
    const viaProxy = image.replace(env.registries.source.host, proxy.host);
    const other = `${proxy.host}/${repo}/race2:1`;
    await create(ns, deployment('scaled', viaProxy));
    await create(ns, deployment('retagged', viaProxy));
    try {
      const running = runCli(['sync', '--backup', backupPrefix(), '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig,
        ...insecure, '--insecure-registry', proxy.host, '-n', ns, '-o', 'json']);
      await blobRequested; // the run has planned and is copying: now edit under it
      await apps.patchNamespacedDeployment({ name: 'scaled', namespace: ns, body: { spec: { replicas: 3 }, metadata: { labels: { team: 'payments' } } } }, smp);
      await apps.patchNamespacedDeployment({ name: 'retagged', namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image: other }] } } } } }, smp);
      open();
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
      open();
      await proxy.close();
    }
  });

  test('--log-format json: one JSON object per event line', async () => {
    const ns = await namespace('sync-log');
    await create(ns, deployment('logged', `${src()}/${repo}/web:1.0`));
    const run = await sync(['-n', ns, '--log-format', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const events = run.stderr.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.event === 'workload-patched' && e.workload === `Deployment/${ns}/logged`));
    assert.ok(events.every((e) => typeof e.time === 'string' && ['info', 'warn', 'error'].includes(e.level)));
  });

  test('restore puts every workload back on its original images and removes the annotation', async () => {
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
