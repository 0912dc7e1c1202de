// The CronJob on "EKS", in the cluster, for real as far as a machine without AWS can make it: the
// image-clone image on the harness node under manifests/overlays/eks (no registry Secret), moto as
// STS and ECR's control plane, distribution 2.8 as ECR's data plane (test/integration/ecr-stand-in.ts).
// The pod's identity is its ServiceAccount's projected token (audience sts.amazonaws.com), issued by
// the real API server and exchanged at moto's STS. What stands in: EKS's pod identity webhook, which
// turns the ServiceAccount's role annotation into AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and the
// projected token volume; this test's overlay adds exactly those, reading the role from the
// annotation the eks overlay sets. moto does not check the token's signature.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { repoRoot } from '../harness/harness.ts';
import { pushImage, testImage } from '../harness/images.ts';
import { nodeAddress } from '../harness/node.ts';
import { type EcrDataPlane, type Moto, motoAccount, motoEcr, repositoryNames, startEcrDataPlane, startMoto } from '../integration/ecr-stand-in.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients } from '../integration/helpers.ts';
import { applyKustomization, nodeEnv, runJobFromCronJob, writeWebhookOverlay } from './helpers.ts';
import { buildImageCloneImage } from './image-clone-image.ts';

const env = await nodeEnv();
const { core, batch, apps } = kubeClients(adminKubeConfig(env));
const source = env.registries.source.host;
const ns = 'image-clone';
const appsNs = 'eks-apps';
const tokenDir = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
let moto: Moto;
let ecr: EcrDataPlane;
let ecrApi: ECRClient;
let overlay: string;

before(async () => {
  [moto, ecr] = await Promise.all([startMoto({}, nodeAddress), startEcrDataPlane(nodeAddress)]);
  ecrApi = motoEcr(moto);
  const image = await buildImageCloneImage();
  await pushImage(source, 'tools/image-clone', 'eks', image);

  overlay = await mkdtemp(join(tmpdir(), 'image-clone-eks-overlay-'));
  // First the eks overlay with the user's role (one in moto's account: moto's ECR token, and so the
  // data plane's password, names the caller's account), then the role read back from the
  // ServiceAccount, as the webhook reads it.
  const user = { base: 'manifests/overlays/eks', annotations: { 'eks.amazonaws.com/role-arn': `arn:aws:iam::${motoAccount}:role/image-clone` } };
  await writeWebhookOverlay(overlay, user);
  applyKustomization(env, relative(repoRoot, overlay));
  const account = await core.readNamespacedServiceAccount({ name: 'image-clone', namespace: ns });
  const roleArn = account.metadata?.annotations?.['eks.amazonaws.com/role-arn'];
  assert.equal(roleArn, `arn:aws:iam::${motoAccount}:role/image-clone`, 'the ServiceAccount carries the role annotation');

  const containerEnv = {
    IMAGE_CLONE_BACKUP: `${ecr.host}/eks`,
    // The stand-in's host does not say it is ECR's; a real one does.
    IMAGE_CLONE_REGISTRY_PROVIDER: `${ecr.host}=aws`,
    IMAGE_CLONE_INSECURE_REGISTRY: `${source},${ecr.host}`,
    IMAGE_CLONE_NAMESPACE: appsNs,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
    // What EKS's pod identity webhook adds for the annotated ServiceAccount (with the token volume):
    AWS_ROLE_ARN: roleArn!,
    AWS_WEB_IDENTITY_TOKEN_FILE: `${tokenDir}/token`,
  };
  await writeWebhookOverlay(overlay, { ...user, pod: {
    image: `${source}/tools/image-clone`, digest: image.digest, env: containerEnv,
    token: { volume: 'aws-iam-token', dir: tokenDir, file: 'token', audience: 'sts.amazonaws.com', expirationSeconds: 86400 },
  } });
  applyKustomization(env, relative(repoRoot, overlay));

  await core.createNamespace({ body: { metadata: { name: appsNs } } });
  await pushImage(source, 'eks/app', '1', testImage('eks/app'));
  // No replicas: nodes on EKS pull from ECR with their own role, which the harness's node has not.
  await apps.createNamespacedDeployment({ namespace: appsNs, body: deployment('app', `${source}/eks/app:1`, { replicas: 0 }) });
});

after(async () => {
  ecrApi?.destroy();
  await Promise.all([moto?.stop(), ecr?.stop()]);
  if (overlay) await rm(overlay, { recursive: true, force: true });
});

test('a Job from the eks overlay authenticates with its projected token, creates the ECR repository, copies and patches; exit 0', async () => {
  const { job, pods } = await runJobFromCronJob({ batch, core }, ns, 'image-clone', 'eks-first');
  assert.equal(pods.length, 1);
  const pod = pods[0]!;
  const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: ns });
  assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0, log);
  assert.ok(job.status?.conditions?.some((c) => c.type === 'Complete'));
  // No registry Secret anywhere in the pod: only the token volume and the API server's.
  for (const volume of pod.spec!.volumes ?? []) assert.equal(volume.secret, undefined, JSON.stringify(volume));
  assert.ok(!(pod.spec!.containers[0]!.env ?? []).some((e) => e.name === 'IMAGE_CLONE_REGISTRY_CONFIG'));

  assert.match(log, /created ECR repository/, log);
  assert.ok(!log.includes(ecr.password), 'no token in the log');
  const names = await repositoryNames(ecrApi);
  assert.ok(names.some((n) => n.startsWith('eks/') && n.endsWith('/eks/app')), names.join(', '));
  const patched = (await apps.readNamespacedDeployment({ name: 'app', namespace: appsNs })).spec!.template.spec!.containers[0]!.image!;
  assert.ok(patched.startsWith(`${ecr.host}/eks/`), patched);

  const second = await runJobFromCronJob({ batch, core }, ns, 'image-clone', 'eks-second');
  const secondLog = await core.readNamespacedPodLog({ name: second.pods[0]!.metadata!.name!, namespace: ns });
  assert.equal(second.pods[0]!.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0, secondLog);
  assert.doesNotMatch(secondLog, /created ECR repository/);
});
