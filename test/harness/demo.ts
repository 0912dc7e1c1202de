// `npm run demo`: the main job on the built-in test cluster and registries. Starts the harness,
// seeds a few images into the `source` registry (one multi-platform, two sharing a base layer, one
// used by digest), creates workloads of every kind, and runs image-clone sync: the plan, the run,
// then a second run that has nothing to do. An independent tool checks the copies at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
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
  seed('shop/web:1.0', '--platforms', 'linux/amd64,linux/arm64,linux/arm/v7', '--format', 'oci', '--seed', '1');
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
