// The CronJob on "AKS", in the cluster, as far as a machine without Azure can make it: the
// image-clone image on the harness node under manifests/overlays/aks (no registry Secret), the
// stand-ins for Entra ID and ACR's token service (test/integration/acr-stand-in.ts; no emulator of
// either exists) in front of the harness's backup registry. The pod's identity is its
// ServiceAccount's projected token (audience api://AzureADTokenExchange), issued by the real API
// server; the Entra ID stand-in accepts it only when the API server's TokenReview says it is that
// ServiceAccount's, for that audience (what Entra ID checks against a federated credential). What
// stands in besides: AKS's workload identity webhook, which turns the pod label and the
// ServiceAccount's client-id annotation into the AZURE_* variables and the projected token volume;
// this test's overlay adds exactly those, reading the client id from the annotation the overlay sets.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { AuthenticationV1Api } from '@kubernetes/client-node';
import { repoRoot } from '../harness/harness.ts';
import { pushImage, testImage } from '../harness/images.ts';
import { nodeAddress } from '../harness/node.ts';
import { type AcrStandIn, type EntraStandIn, startAcrStandIn, startEntraStandIn } from '../integration/acr-stand-in.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients } from '../integration/helpers.ts';
import { applyKustomization, nodeEnv, runJobFromCronJob, writeWebhookOverlay } from './helpers.ts';
import { buildImageCloneImage } from './image-clone-image.ts';

const env = await nodeEnv();
const admin = adminKubeConfig(env);
const { core, batch, apps } = kubeClients(admin);
const authentication = admin.makeApiClient(AuthenticationV1Api);
const source = env.registries.source.host;
const ns = 'image-clone';
const appsNs = 'aks-apps';
const tenant = '72f988bf-0000-4000-8000-0000000000a5';
const clientId = '5a1b2c3d-0000-4000-8000-0000000000a5';
const tokenDir = '/var/run/secrets/azure/tokens';
const audience = 'api://AzureADTokenExchange';
let entra: EntraStandIn;
let acr: AcrStandIn;
const reviewed: string[] = [];
let overlay: string;

before(async () => {
  entra = await startEntraStandIn({
    clientId, tenants: [tenant], assertion: '', ip: nodeAddress,
    verify: async (token) => {
      const review = await authentication.createTokenReview({ body: { spec: { token, audiences: [audience] } } });
      reviewed.push(review.status?.user?.username ?? '');
      return review.status?.authenticated === true && review.status.user?.username === 'system:serviceaccount:image-clone:image-clone';
    },
  });
  acr = await startAcrStandIn({ registry: env.registries.backup, entra, tenant, ip: nodeAddress });
  const image = await buildImageCloneImage();
  await pushImage(source, 'tools/image-clone', 'aks', image);

  overlay = await mkdtemp(join(tmpdir(), 'image-clone-aks-overlay-'));
  // First the aks overlay with the user's client id, then the client id read back from the
  // ServiceAccount, as the webhook reads it.
  const user = { base: 'manifests/overlays/aks', annotations: { 'azure.workload.identity/client-id': clientId } };
  await writeWebhookOverlay(overlay, user);
  applyKustomization(env, relative(repoRoot, overlay));
  const account = await core.readNamespacedServiceAccount({ name: 'image-clone', namespace: ns });
  const annotated = account.metadata?.annotations?.['azure.workload.identity/client-id'];
  assert.equal(annotated, clientId, 'the ServiceAccount carries the client id annotation');

  const containerEnv = {
    IMAGE_CLONE_BACKUP: `${acr.host}/aks`,
    // The stand-in's host does not say it is ACR's; <name>.azurecr.io does.
    IMAGE_CLONE_REGISTRY_PROVIDER: `${acr.host}=azure`,
    IMAGE_CLONE_INSECURE_REGISTRY: `${source},${acr.host},${entra.host}`,
    IMAGE_CLONE_NAMESPACE: appsNs,
    // What AKS's workload identity webhook adds to a labelled pod (with the token volume):
    AZURE_CLIENT_ID: annotated!,
    AZURE_TENANT_ID: tenant,
    AZURE_AUTHORITY_HOST: entra.authority,
    AZURE_FEDERATED_TOKEN_FILE: `${tokenDir}/azure-identity-token`,
  };
  await writeWebhookOverlay(overlay, { ...user, pod: {
    image: `${source}/tools/image-clone`, digest: image.digest, env: containerEnv,
    token: { volume: 'azure-identity-token', dir: tokenDir, file: 'azure-identity-token', audience, expirationSeconds: 3600 },
  } });
  applyKustomization(env, relative(repoRoot, overlay));

  await core.createNamespace({ body: { metadata: { name: appsNs } } });
  await pushImage(source, 'aks/app', '1', testImage('aks/app'));
  // No replicas: nodes on AKS pull from ACR with the kubelet's identity, which the harness's node has not.
  await apps.createNamespacedDeployment({ namespace: appsNs, body: deployment('app', `${source}/aks/app:1`, { replicas: 0 }) });
});

after(async () => {
  await Promise.all([acr?.close(), entra?.close()]);
  if (overlay) await rm(overlay, { recursive: true, force: true });
});

test("a Job from the aks overlay exchanges its projected token at the Entra ID and ACR stand-ins, copies and patches; exit 0", async () => {
  const { job, pods } = await runJobFromCronJob({ batch, core }, ns, 'image-clone', 'aks-first');
  assert.equal(pods.length, 1);
  const pod = pods[0]!;
  const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: ns });
  assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0, log);
  assert.ok(job.status?.conditions?.some((c) => c.type === 'Complete'));
  assert.equal(pod.metadata?.labels?.['azure.workload.identity/use'], 'true', "the overlay's label reaches the pod");
  // No registry Secret anywhere in the pod: only the token volume and the API server's.
  for (const volume of pod.spec!.volumes ?? []) assert.equal(volume.secret, undefined, JSON.stringify(volume));
  assert.ok(!(pod.spec!.containers[0]!.env ?? []).some((e) => e.name === 'IMAGE_CLONE_REGISTRY_CONFIG'));

  // The token Entra ID got was the API server's, for the pod's ServiceAccount and the audience.
  assert.deepEqual(reviewed, ['system:serviceaccount:image-clone:image-clone']);
  assert.equal(acr.exchanges.length, 1);
  assert.ok(acr.tokenRequests.refreshToken >= 1);
  for (const secret of [...entra.issued, ...acr.issued, ...entra.assertions]) assert.ok(!log.includes(secret), 'no token in the log');
  const patched = (await apps.readNamespacedDeployment({ name: 'app', namespace: appsNs })).spec!.template.spec!.containers[0]!.image!;
  assert.ok(patched.startsWith(`${acr.host}/aks/`), patched);
});
