// The CronJob on "GKE", in the cluster, as far as a machine without Google can make it: the
// image-clone image on the harness node under manifests/overlays/gke (no registry Secret), with the
// stand-in for Google's side (test/integration/gcp-stand-in.ts; no Google emulator exists) as the
// metadata server, and the harness's real registry (regharness with --oauth2-tokeninfo) as
// Artifact Registry: it accepts exactly the user oauth2accesstoken with a token the stand-in handed
// out. What stands in for GKE: the metadata server's address (GKE serves it at 169.254.169.254 on
// nodes with Workload Identity; here GCE_METADATA_HOST names the stand-in, as Google's libraries
// allow), and the node label GKE puts on such nodes, which the overlay's nodeSelector asks for.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startRegistries } from '../harness/harness.ts';
import { pushImage, testImage } from '../harness/images.ts';
import { nodeAddress, nodeName } from '../harness/node.ts';
import { type GoogleStandIn, startGoogleStandIn } from '../integration/gcp-stand-in.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, verifyCopy } from '../integration/helpers.ts';
import { applyKustomization, nodeEnv, runJobFromCronJob } from './helpers.ts';
import { buildImageCloneImage } from './image-clone-image.ts';

const env = await nodeEnv();
const { core, batch, apps } = kubeClients(adminKubeConfig(env));
const source = env.registries.source.host;
const ns = 'image-clone';
const appsNs = 'gke-apps';
const metadataLabel = 'iam.gke.io/gke-metadata-server-enabled';
const labelPath = `/metadata/labels/${metadataLabel.replace('/', '~1')}`;
let google: GoogleStandIn;
let registries: Awaited<ReturnType<typeof startRegistries>>;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-clone-gke-'));
  google = await startGoogleStandIn({}, nodeAddress);
  registries = await startRegistries(join(dir, 'registries'), { tokeninfo: google.tokeninfo, listenIp: nodeAddress });
  const backup = registries.registries.backup.host;
  const image = await buildImageCloneImage();
  await pushImage(source, 'tools/image-clone', 'gke', image);
  // GKE labels the nodes that run its metadata server; the overlay's nodeSelector asks for them.
  await core.patchNode({ name: nodeName, body: [{ op: 'add', path: labelPath, value: 'true' }] });

  const overlay = join(dir, 'overlay');
  await mkdir(overlay);
  const containerEnv = {
    IMAGE_CLONE_BACKUP: `${backup}/gke`,
    // The registry's host does not say it is Google's; a real one (LOCATION-docker.pkg.dev) does.
    IMAGE_CLONE_REGISTRY_PROVIDER: `${backup}=gcp`,
    IMAGE_CLONE_INSECURE_REGISTRY: `${source},${backup}`,
    IMAGE_CLONE_NAMESPACE: appsNs,
    // GKE's metadata server is at 169.254.169.254; the stand-in is here.
    GCE_METADATA_HOST: google.host,
  };
  const cronJobPatch = {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'image-clone', namespace: ns },
    spec: { jobTemplate: { spec: { template: { spec: {
      containers: [{ name: 'image-clone', env: Object.entries(containerEnv).map(([name, value]) => ({ name, value })) }],
    } } } } },
  };
  await writeFile(join(overlay, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${relative(overlay, join(repoRoot, 'manifests/overlays/gke'))}
images:
  - name: registry.example.com/image-clone
    newName: ${source}/tools/image-clone
    digest: ${image.digest}
patches:
  - patch: '${JSON.stringify(cronJobPatch)}'
`);
  applyKustomization(env, relative(repoRoot, overlay));

  await core.createNamespace({ body: { metadata: { name: appsNs } } });
  await pushImage(source, 'gke/app', '1', testImage('gke/app'));
  // No replicas: nodes on GKE pull from Artifact Registry with their own identity, which the harness's node has not.
  await apps.createNamespacedDeployment({ namespace: appsNs, body: deployment('app', `${source}/gke/app:1`, { replicas: 0 }) });
});

after(async () => {
  await core.patchNode({ name: nodeName, body: [{ op: 'remove', path: labelPath }] }).catch(() => undefined);
  await registries?.stop();
  await google?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a Job from the gke overlay gets its token from the metadata server, copies to the registry and patches; exit 0', async () => {
  const account = await core.readNamespacedServiceAccount({ name: 'image-clone', namespace: ns });
  assert.match(account.metadata?.annotations?.['iam.gke.io/gcp-service-account'] ?? '', /@.+\.iam\.gserviceaccount\.com$/, 'the ServiceAccount carries the Workload Identity annotation');

  const { job, pods } = await runJobFromCronJob({ batch, core }, ns, 'image-clone', 'gke-first');
  assert.equal(pods.length, 1);
  const pod = pods[0]!;
  const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: ns });
  assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0, log);
  assert.ok(job.status?.conditions?.some((c) => c.type === 'Complete'));
  assert.equal(pod.spec!.nodeSelector?.[metadataLabel], 'true');
  // No registry Secret anywhere in the pod: only the API server's token volume.
  for (const volume of pod.spec!.volumes ?? []) assert.equal(volume.secret, undefined, JSON.stringify(volume));
  assert.ok(!(pod.spec!.containers[0]!.env ?? []).some((e) => e.name === 'IMAGE_CLONE_REGISTRY_CONFIG'));

  assert.ok(google.tokenRequests.length >= 1 && google.tokenRequests.every((h) => h === 'Google'), `token requests: ${JSON.stringify(google.tokenRequests)}`);
  for (const token of google.issued) assert.ok(!log.includes(token), 'no token in the log');
  const patched = (await apps.readNamespacedDeployment({ name: 'app', namespace: appsNs })).spec!.template.spec!.containers[0]!.image!;
  const backup = registries.registries.backup;
  assert.ok(patched.startsWith(`${backup.host}/gke/`), patched);
  const copied = patched.slice(backup.host.length + 1).replace(/@sha256:[a-f0-9]{64}$/, '');
  const check = await verifyCopy({ registry: env.registries.source, ref: 'gke/app:1' }, { registry: backup, ref: copied });
  assert.equal(check.identical, true, check.differences?.join('; '));
});
