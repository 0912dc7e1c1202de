// `npm run demo`: the node-rotation drill, the problem image-clone exists for, on the built-in test
// cluster with its real node (root needed, see node.ts). Workloads of every kind run real pods from an
// "upstream" registry; image-clone sync backs their images up into the token-auth backup registry and
// points the workloads at the copies; then the upstream registry is destroyed, the node's image store
// wiped and every pod deleted. The workloads come back from the backup; the one Helm manages (backed up,
// but not patched: Helm would revert it) cannot pull any more.
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { ensureBuilt, repoRoot, startHarness, type Harness, type HarnessEnv } from './harness.ts';
import { checkMachine, runScript } from './prerequisites.ts';
import { pushImage, testImage } from './images.ts';
import { ensurePullSecret, startOwnRegistries, wipeNodeImages } from '../node/helpers.ts';

const say = (line: string) => process.stderr.write(`\n== ${line}\n`);
const namespace = 'demo-shop';

let started = Date.now();
let harness!: Harness;
await runScript(async () => {
  checkMachine({ node: true, test: false, build: true, command: 'npm run demo' });
  ensureBuilt();
  started = Date.now();
  harness = await startHarness({ stderr: 'ignore', node: true });
});
const env = harness.env as HarnessEnv & { node: NonNullable<HarnessEnv['node']> };
const upstream = await startOwnRegistries();
try {
  const up = upstream.registries.source!.host;
  const { backup } = env.registries;
  say(`harness up in ${((Date.now() - started) / 1000).toFixed(1)} s: Kubernetes ${env.k8sVersion}, node ${env.node.name} (containerd, kubelet, CNI bridge ${env.node.address}), ` +
    `upstream registry ${up} (anonymous), backup ${backup.host} (token auth)`);

  const images: Record<string, string> = {};
  for (const [name, platforms] of [['shop/web', ['linux/amd64', 'linux/arm64']], ['shop/api', ['linux/amd64']], ['shop/worker', ['linux/amd64']], ['tools/migrate', ['linux/amd64']], ['shop/legacy', ['linux/amd64']]] as const) {
    images[name] = await pushImage(up, name, '1.0', testImage(`demo/${name}`, [...platforms]));
  }
  say(`pushed 5 runnable images to upstream (shop/web is multi-platform: linux/amd64 + linux/arm64; tools/migrate is used by digest)`);

  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const objects = KubernetesObjectApi.makeApiClient(kc);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await ensurePullSecret(env);
  const image = (name: string) => `${up}/${name}:1.0`;
  const pod = (app: string, img: string, extra: object = {}) => ({ metadata: { labels: { app } }, spec: { terminationGracePeriodSeconds: 5, containers: [{ name: app, image: img }], ...extra } });
  const workloads: Array<Record<string, unknown>> = [
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: pod('web', image('shop/web')) } },
    { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'api' }, spec: { serviceName: 'api', selector: { matchLabels: { app: 'api' } }, template: pod('api', image('shop/api')) } },
    { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'worker' }, spec: { selector: { matchLabels: { app: 'worker' } }, template: pod('worker', image('shop/worker')) } },
    { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'migrate' }, spec: { schedule: '0 2 * * *', jobTemplate: { spec: { template: { metadata: { labels: { app: 'migrate' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'migrate', image: `${up}/tools/migrate@${images['tools/migrate']}`, command: ['/bin/sh', '-c', 'cat /etc/image'] }] } } } } } },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'legacy', labels: { 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': 'legacy' } }, spec: { selector: { matchLabels: { app: 'legacy' } }, template: pod('legacy', image('shop/legacy')) } },
  ];
  for (const w of workloads) await objects.create({ ...w, metadata: { ...(w.metadata as object), namespace } } as KubernetesObject);
  await waitForPods(core, 5, (p) => p.status?.phase === 'Running');
  say('workloads of every kind run real pods from upstream (imageID: what containerd reports)');
  await showPods(core);

  say('tags move: shop/web:1.0 is rebuilt upstream while the web pods still run the old build');
  const rebuilt = await pushImage(up, 'shop/web', '1.0', testImage('demo/shop/web rebuilt', ['linux/amd64', 'linux/arm64']));
  process.stderr.write(`shop/web:1.0 now names ${rebuilt}; the web pods run ${images['shop/web']}\n`);

  const dir = await mkdtemp(join(tmpdir(), 'image-clone-demo-'));
  const registryConfig = join(dir, 'config.json');
  await writeFile(registryConfig, JSON.stringify({ auths: { [backup.host]: { auth: Buffer.from(`${backup.username}:${backup.password}`).toString('base64') } } }), { mode: 0o600 });
  const sync = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/image-clone.js'), 'sync', '--backup', `${backup.host}/mirror`,
    '--kubeconfig', env.kubeconfig, '-n', namespace, '--registry-config', registryConfig, '--pull-secret', 'image-clone-pull',
    '--insecure-registry', up, '--insecure-registry', backup.host, ...args], { stdio: 'inherit' });
  say('image-clone sync --dry-run: the plan, nothing written (it reports the moved tag, and backs up what runs)');
  sync('--dry-run');
  say('image-clone sync: copy, verify, patch (with a pull secret for the token-auth backup)');
  const first = sync();
  await waitForPods(core, 5, (p) => p.status?.phase === 'Running' && (p.metadata?.labels?.app === 'legacy' || p.spec!.containers[0]!.image!.startsWith(`${backup.host}/`)));
  say('every patched workload rolled out and runs from the backup (legacy is managed by Helm: backed up, not patched)');
  await showPods(core);
  say('image-clone sync again: nothing new, so nothing is copied or patched');
  const second = sync();
  say("the backup's tags of shop/web: an anchor tag (ic-sha256-<hex>) holds each digest that runs; garbage collection keeps them");
  const webRepository = `mirror/${up.replace(':', '_')}/shop/web`;
  const basic = `Basic ${Buffer.from(`${backup.username}:${backup.password}`).toString('base64')}`;
  const token = (await (await fetch(`${backup.realm}?service=${backup.service}&scope=repository:${webRepository}:pull`, { headers: { authorization: basic } })).json() as { token: string }).token;
  const registryGet = (path: string, method = 'GET') => fetch(`http://${backup.host}/v2/${webRepository}/${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.index.v1+json' } });
  for (const tag of ((await (await registryGet('tags/list')).json()) as { tags: string[] }).tags) {
    process.stderr.write(`  ${webRepository}:${tag} -> ${(await registryGet(`manifests/${tag}`, 'HEAD')).headers.get('docker-content-digest')}\n`);
  }

  say('the disaster: the upstream registry is stopped and its storage deleted; the node is rotated (image store wiped); every pod is deleted');
  await upstream.destroy();
  const wiped = wipeNodeImages(env);
  process.stderr.write(`removed ${wiped.length} image names from containerd\n`);
  await core.deleteCollectionNamespacedPod({ namespace });
  await sleep(1000);
  await batch.createNamespacedJob({ namespace, body: { metadata: { name: 'migrate-after-rotation' }, spec: (await batch.readNamespacedCronJob({ name: 'migrate', namespace })).spec!.jobTemplate.spec! } });
  await waitForPods(core, 6, (p) => p.metadata?.labels?.app === 'legacy'
    ? ['ErrImagePull', 'ImagePullBackOff'].includes(p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? '')
    : p.status?.phase === 'Running' || p.status?.phase === 'Succeeded');
  say('after the rotation: everything image-clone patched runs again, pulled from the backup; legacy cannot pull');
  await showPods(core);
  process.exitCode = first.status === 0 && second.status === 0 ? 0 : 1;
} finally {
  await upstream.destroy();
  await harness.stop();
}

async function waitForPods(core: CoreV1Api, count: number, ok: (p: V1Pod) => boolean): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const pods = (await core.listNamespacedPod({ namespace })).items.filter((p) => !p.metadata?.deletionTimestamp);
    if (pods.length === count && pods.every(ok)) return;
    if (Date.now() > deadline) throw new Error(`pods did not settle: ${pods.map((p) => `${p.metadata?.name} ${p.status?.phase}`).join(', ')}`);
    await sleep(250);
  }
}

async function showPods(core: CoreV1Api): Promise<void> {
  const pods = (await core.listNamespacedPod({ namespace })).items.filter((p) => !p.metadata?.deletionTimestamp)
    .sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!));
  for (const p of pods) {
    const status = p.status?.containerStatuses?.[0];
    const state = status?.state?.waiting?.reason ?? (status?.state?.terminated ? `Completed (exit ${status.state.terminated.exitCode})` : p.status?.phase);
    process.stderr.write(`  ${p.metadata!.name!.padEnd(34)} ${String(state).padEnd(17)} ${p.spec!.containers[0]!.image}\n`);
    if (status?.imageID) process.stderr.write(`  ${''.padEnd(34)} ${''.padEnd(17)} imageID ${status.imageID}\n`);
  }
}
