// `npm run demo`: the main job on the built-in test cluster and registries. Starts the harness,
// seeds a few images into the `source` registry (one multi-platform, two sharing a base layer, one
// used by digest), creates workloads of every kind, moves one tag upstream under a running
// workload, and runs image-clone sync: the plan, the run, then a second run that has nothing to do.
// It lists the backup's tags (an anchor tag per digest that runs) and an independent tool checks the
// copies at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { ensureBuilt, repoRoot, startHarness } from './harness.ts';

const regharness = join(repoRoot, '.harness/bin/regharness');
const say = (line: string) => process.stderr.write(`\n== ${line}\n`);

ensureBuilt();
const harness = await startHarness({ stderr: 'ignore' });
try {
  const { source, backup } = harness.env.registries;
  say(`harness up: Kubernetes ${harness.env.k8sVersion}, source registry ${source.host} (anonymous), backup ${backup.host} (token auth)`);

  const seed = (ref: string, ...args: string[]) => {
    const seeded = JSON.parse(execFileSync(regharness, ['seed', '--ref', `${source.host}/${ref}`, '--layers', '3', '--layer-size', '2MiB', ...args], { encoding: 'utf8' }));
    say(`seeded ${seeded.ref} ${seeded.digest} (${seeded.children.length || 1} platform${seeded.children.length > 1 ? 's' : ''})`);
    return seeded as { digest: string };
  };
  const web = seed('shop/web:1.0', '--platforms', 'linux/amd64,linux/arm64,linux/arm/v7', '--format', 'oci', '--seed', '1');
  seed('shop/api:2.3', '--shared-layers', '1', '--shared-seed', '99', '--seed', '2');
  seed('shop/worker:2.3', '--shared-layers', '1', '--shared-seed', '99', '--seed', '3');
  const pinned = seed('tools/migrate:5', '--seed', '4');

  const kc = new KubeConfig();
  kc.loadFromFile(harness.env.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const namespace = 'demo-shop';
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const pod = (app: string, image: string, extra: object = {}) => ({ metadata: { labels: { app } }, spec: { containers: [{ name: app, image }], ...extra } });
  const image = (name: string) => `${source.host}/${name}`;
  const workloads: Array<Record<string, unknown>> = [
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: pod('web', image('shop/web:1.0')) } },
    { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'api' }, spec: { serviceName: 'api', selector: { matchLabels: { app: 'api' } }, template: pod('api', image('shop/api:2.3')) } },
    { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'worker' }, spec: { selector: { matchLabels: { app: 'worker' } }, template: pod('worker', image('shop/worker:2.3')) } },
    { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'migrate' }, spec: { schedule: '0 2 * * *', jobTemplate: { spec: { template: pod('migrate', `${image('tools/migrate')}@${pinned.digest}`, { restartPolicy: 'OnFailure' }) } } } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'debug' }, spec: { containers: [{ name: 'debug', image: image('shop/api:2.3') }] } },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'legacy', labels: { 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': 'legacy' } }, spec: { selector: { matchLabels: { app: 'legacy' } }, template: pod('legacy', image('shop/web:1.0')) } },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'orphan' }, spec: { selector: { matchLabels: { app: 'orphan' } }, template: pod('orphan', image('shop/deleted-long-ago:0.9')) } },
  ];
  for (const w of workloads) await objects.create({ ...w, metadata: { ...(w.metadata as object), namespace } } as KubernetesObject);
  say(`created ${workloads.length} workloads in namespace ${namespace} (one Helm-managed, one whose image no longer exists)`);

  // No kubelet runs in this harness: report the web pods as a kubelet would, running the digest they pulled.
  const running = async (name: string, digest: string) => core.patchNamespacedPodStatus({ name, namespace, body: {
    status: { phase: 'Running', containerStatuses: [{ name: 'web', image: image('shop/web:1.0'), imageID: `${image('shop/web')}@${digest}`, ready: true, restartCount: 0, started: true, state: { running: {} } }] },
  } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  let webPods: string[] = [];
  for (let i = 0; i < 120 && webPods.length < 2; i++) {
    webPods = (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items.map((p) => p.metadata!.name!);
    if (webPods.length < 2) await new Promise((resolve) => setTimeout(resolve, 250));
  }
  for (const name of webPods) await running(name, web.digest);
  say('the tag shop/web:1.0 moves upstream (rebuilt); a canary pod started since runs the new digest');
  const rebuilt = seed('shop/web:1.0', '--platforms', 'linux/amd64,linux/arm64,linux/arm/v7', '--format', 'oci', '--seed', '5');
  await core.createNamespacedPod({ namespace, body: { metadata: { name: 'web-canary', labels: { app: 'canary' } }, spec: { containers: [{ name: 'web', image: image('shop/web:1.0') }] } } });
  await running('web-canary', rebuilt.digest);

  const dir = await mkdtemp(join(tmpdir(), 'image-clone-demo-'));
  const registryConfig = join(dir, 'config.json');
  await writeFile(registryConfig, JSON.stringify({ auths: { [backup.host]: { auth: Buffer.from(`${backup.username}:${backup.password}`).toString('base64') } } }), { mode: 0o600 });
  const sync = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/image-clone.js'), 'sync', '--backup', `${backup.host}/mirror`,
    '--kubeconfig', harness.env.kubeconfig, '-n', namespace, '--registry-config', registryConfig,
    '--insecure-registry', source.host, '--insecure-registry', backup.host, ...args], { stdio: 'inherit' });

  say('image-clone sync --dry-run: the plan (nothing is written)');
  sync('--dry-run');
  say('image-clone sync: copy, verify, patch');
  const first = sync();
  say('image-clone sync again: nothing new, so nothing is copied or patched');
  const second = sync();

  say(`the backup's tags of shop/web: the human tag names what upstream names; each digest that runs has an anchor tag`);
  const webRepository = `mirror/${source.host.replace(':', '_')}/shop/web`;
  const basic = `Basic ${Buffer.from(`${backup.username}:${backup.password}`).toString('base64')}`;
  const token = (await (await fetch(`${backup.realm}?service=${backup.service}&scope=repository:${webRepository}:pull`, { headers: { authorization: basic } })).json() as { token: string }).token;
  const registryGet = (path: string, method = 'GET') => fetch(`http://${backup.host}/v2/${webRepository}/${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.index.v1+json' } });
  for (const tag of ((await (await registryGet('tags/list')).json()) as { tags: string[] }).tags) {
    process.stderr.write(`  ${webRepository}:${tag} -> ${(await registryGet(`manifests/${tag}`, 'HEAD')).headers.get('docker-content-digest')}\n`);
  }

  say('independent check (go-containerregistry): index, every child, every blob');
  for (const ref of ['shop/web:1.0', 'shop/api:2.3', 'shop/worker:2.3']) {
    const result = execFileSync(regharness, ['verify', '--src', `${source.host}/${ref}`, '--dst', `${backup.host}/mirror/${source.host.replace(':', '_')}/${ref}`,
      '--dst-username', backup.username!, '--dst-password', backup.password!], { encoding: 'utf8' });
    process.stderr.write(`${ref}: ${result}`);
  }
  // Exit 1 from sync is expected here: the orphan's image is lost, and the demo shows it.
  process.exitCode = first.status === 1 && second.status === 1 ? 0 : 1;
} finally {
  await harness.stop();
}
