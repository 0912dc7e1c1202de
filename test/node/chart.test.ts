// The Helm chart on the real node: `helm install` (the real helm, test/harness/tools.sh) with the
// image-clone image built as cronjob.test.ts builds it; a Job created from the chart's CronJob runs
// on the harness node under the restricted profile, as the chart's ServiceAccount, exits 0 and
// patches the workload; `helm uninstall` then leaves the patched workload and the copies.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ApiException, EventsV1Api } from '@kubernetes/client-node';
import { parseReference } from '../../src/reference.ts';
import { repoRoot } from '../harness/harness.ts';
import { pushImage, testImage } from '../harness/images.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, manifestDigest, waitUntil } from '../integration/helpers.ts';
import { jobFromCronJob, nodeEnv } from './helpers.ts';
import { buildImageCloneImage } from './image-clone-image.ts';

const env = await nodeEnv();
const kube = kubeClients(adminKubeConfig(env));
const { core, batch, apps } = kube;
const source = env.registries.source.host;
const backup = env.registries.backup;
const ns = 'image-clone-chart';
const appsNs = 'chart-apps';
// Not "image-clone": the other node tests apply manifests/ to this cluster, whose ClusterRole is named so.
const release = 'ic-node';
const name = `${release}-image-clone`;
let helmHome: string;

function helm(...args: string[]): string {
  const r = spawnSync(join(repoRoot, '.harness/bin/helm'), args, {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: env.kubeconfig, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') },
  });
  assert.equal(r.status, 0, `helm ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

before(async () => {
  helmHome = await mkdtemp(join(tmpdir(), 'image-clone-helm-'));
  const image = await buildImageCloneImage();
  await pushImage(source, 'tools/image-clone', 'chart', image);
  // The namespace as docs/helm.md has users make it: restricted Pod Security enforced.
  await core.createNamespace({ body: { metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } } });
  const auth = Buffer.from(`${backup.username}:${backup.password}`).toString('base64');
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'image-clone-registry' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [backup.host]: { auth } } }) } } });
  await core.createNamespace({ body: { metadata: { name: appsNs } } });
  await pushImage(source, 'chart/app', '1', testImage('chart/app'));
  await apps.createNamespacedDeployment({ namespace: appsNs, body: deployment('app', `${source}/chart/app:1`, { replicas: 0 }) });
  helm('install', release, join(repoRoot, 'charts/image-clone'), '-n', ns,
    '--set', `backup=${backup.host}/chart`, '--set', `image.repository=${source}/tools/image-clone`, '--set', `image.digest=${image.digest}`,
    '--set', `sync.insecureRegistry={${source},${backup.host}}`, '--set', `sync.namespace=${appsNs}`);
});

after(async () => {
  if (helmHome) spawnSync(join(repoRoot, '.harness/bin/helm'), ['uninstall', release, '-n', ns], { env: { ...process.env, KUBECONFIG: env.kubeconfig } });
  await core.deleteNamespace({ name: ns }).catch(() => {});
  await core.deleteNamespace({ name: appsNs }).catch(() => {});
});

test("a Job from the chart's CronJob runs on the node, exits 0, patches the workload and records its Event; uninstall leaves the workload patched and the copy", async () => {
  await jobFromCronJob(batch, ns, name, 'first');
  await waitUntil('the Job to finish', async () => {
    const job = await batch.readNamespacedJob({ name: 'first', namespace: ns });
    return !!job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  }, 180_000);
  const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=first' })).items;
  const log = await core.readNamespacedPodLog({ name: pod!.metadata!.name!, namespace: ns });
  assert.equal(pod!.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0, log);
  assert.equal(pod!.spec!.nodeName, env.node.name);
  assert.equal(pod!.spec!.serviceAccountName, name);
  assert.ok(!log.includes(backup.password!), 'no credential in the log');

  const patched = (await apps.readNamespacedDeployment({ name: 'app', namespace: appsNs })).spec!.template.spec!.containers[0]!.image!;
  assert.match(patched, new RegExp(`^${backup.host}/chart/`));
  const { repository: repo, digest } = parseReference(patched) as { repository: string; digest: string };
  assert.equal(await manifestDigest(backup, repo, digest), digest, 'the copy is in the backup');

  // The in-cluster run recorded its Event on the workload, with the chart's RBAC.
  const events = (await kube.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: appsNs })).items.filter((e) => e.reportingController === 'image-clone');
  assert.deepEqual(events.map((e) => `${e.regarding?.name} ${e.type} ${e.reason}`), ['app Normal BackedUp']);

  helm('uninstall', release, '-n', ns);
  await assert.rejects(batch.readNamespacedCronJob({ name, namespace: ns }), (err) => err instanceof ApiException && err.code === 404);
  assert.equal((await apps.readNamespacedDeployment({ name: 'app', namespace: appsNs })).spec!.template.spec!.containers[0]!.image, patched);
  assert.equal(await manifestDigest(backup, repo, digest), digest, 'the copy stays');
});
