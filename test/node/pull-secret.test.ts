// Pull credentials for real: with the pull-secrets overlay and `--pull-secret`, the node pulls the
// copies from the token-auth `backup` with the copied Secret; without it, the kubelet's pull from
// that registry fails with an authorization error (the control that proves the test).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { pushImage, testImage } from '../harness/images.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, runCli, serviceAccountToken, tokenKubeConfig, waitUntil, writeKubeconfig, writeRegistryConfig } from '../integration/helpers.ts';
import { applyKustomization, digestOf, ensurePullSecret, nodeEnv, traceLines, waitForRunningPods } from './helpers.ts';

const env = await nodeEnv();
const { core, apps } = kubeClients(adminKubeConfig(env));
const source = env.registries.source.host;
const backup = env.registries.backup;
const digests: Record<string, string> = {};
let saKubeconfig: string;
let registryConfig: string;

before(async () => {
  // As docs/cronjob.md says: apply the overlay, create the pull Secret once; the runs below use the
  // ServiceAccount's token, so the overlay's RBAC is what they get.
  applyKustomization(env, 'manifests/overlays/pull-secrets');
  await ensurePullSecret(env);
  saKubeconfig = await writeKubeconfig(tokenKubeConfig(env.server, env.caFile, 'image-clone', await serviceAccountToken(core, 'image-clone', 'image-clone')), 'image-clone');
  registryConfig = await writeRegistryConfig(env, ['backup']);
  for (const name of ['with', 'without']) {
    const image = testImage(`pull/${name}`);
    digests[name] = await pushImage(source, `pull/${name}`, '1', image);
    await core.createNamespace({ body: { metadata: { name: `pull-${name}` } } });
    await apps.createNamespacedDeployment({ namespace: `pull-${name}`, body: deployment('app', `${source}/pull/${name}:1`, { pod: { terminationGracePeriodSeconds: 5 } }) });
    await waitForRunningPods(core, `pull-${name}`, 'app=app', 1, 60_000);
  }
});

const sync = (namespace: string, extra: string[]) => runCli(['sync', '--backup', `${backup.host}/pull`, '-n', namespace, '--kubeconfig', saKubeconfig,
  '--registry-config', registryConfig, '--insecure-registry', source, '--insecure-registry', backup.host, ...extra], { KUBECONFIG: undefined });

test('with the pull-secrets overlay and --pull-secret, the node pulls from the token-auth backup with the copied Secret', async () => {
  const traceStart = (await traceLines(env.registryTrace)).length;
  const run = await sync('pull-with', ['--pull-secret', 'image-clone-pull']);
  assert.equal(run.code, 0, run.stderr);
  const copy = await core.readNamespacedSecret({ name: 'image-clone-pull', namespace: 'pull-with' });
  assert.equal(copy.type, 'kubernetes.io/dockerconfigjson');
  const [pod] = await waitForRunningPods(core, 'pull-with', 'app=app', 1, 60_000, (p) => p.spec!.containers[0]!.image!.startsWith(`${backup.host}/`));
  assert.deepEqual(pod!.spec!.imagePullSecrets?.map((s) => s.name), ['image-clone-pull']);
  assert.equal(digestOf(pod!.status!.containerStatuses![0]!.imageID), digests.with);
  // The node got a token from the issuer (the reader's, from the copied Secret) and resolved the copy.
  const lines = await traceLines(env.registryTrace, traceStart);
  const repo = `pull/${source.replace(':', '_')}/pull/with`;
  assert.ok(lines.some((l) => l.registry === 'backup' && l.status === 200 && l.path === `/v2/${repo}/manifests/${digests.with}`), 'the node resolved the copy at the backup');
  assert.ok(lines.some((l) => l.registry === 'issuer' && l.status === 200), 'with a token from the issuer');
});

test('without --pull-secret, the node cannot pull the copy from the token-auth backup: the kubelet reports an authorization failure', async () => {
  const run = await sync('pull-without', []);
  assert.equal(run.code, 0, run.stderr);
  let message = '';
  await waitUntil('the new pod to fail pulling from the backup', async () => {
    const pods = (await core.listNamespacedPod({ namespace: 'pull-without', labelSelector: 'app=app' })).items;
    const patched = pods.find((p) => p.spec!.containers[0]!.image!.startsWith(`${backup.host}/`));
    const waiting = patched?.status?.containerStatuses?.[0]?.state?.waiting;
    message = waiting?.message ?? '';
    return waiting?.reason === 'ErrImagePull' || waiting?.reason === 'ImagePullBackOff';
  }, 60_000);
  const events = (await core.listNamespacedEvent({ namespace: 'pull-without', fieldSelector: 'reason=Failed' })).items.map((e) => e.message ?? '');
  assert.ok(events.some((m) => /401 Unauthorized|unauthorized|authorization failed/i.test(m)), `an authorization error: ${message} ${JSON.stringify(events)}`);
  // The rollout is stuck, and the old pod (from source) keeps running.
  const running = (await core.listNamespacedPod({ namespace: 'pull-without', labelSelector: 'app=app' })).items.filter((p) => p.status?.phase === 'Running');
  assert.equal(running.length, 1);
  assert.equal(running[0]!.spec!.containers[0]!.image, `${source}/pull/without:1`);
});
