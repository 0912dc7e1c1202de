// The CronJob, in-cluster, for real: image-clone's image (built without a Docker engine, see
// image-clone-image.ts) runs on the harness node under the shipped manifests, applied with
// `kubectl apply -k` through an overlay as docs/cronjob.md tells users.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { repoRoot } from '../harness/harness.ts';
import { pushImage, testImage } from '../harness/images.ts';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients } from '../integration/helpers.ts';
import { applyKustomization, ensurePullSecret, nodeEnv, runJobFromCronJob, waitForRunningPods, writeCronJobOverlay } from './helpers.ts';
import { buildImageCloneImage } from './image-clone-image.ts';

const env = await nodeEnv();
const { core, batch, apps, rbac } = kubeClients(adminKubeConfig(env));
const source = env.registries.source.host;
const backup = env.registries.backup;
const ns = 'image-clone';
const apps_ns = 'incluster-apps';
let overlay: string;
let imageRef: string;

before(async () => {
  const image = await buildImageCloneImage();
  await pushImage(source, 'tools/image-clone', 'test', image);
  imageRef = `${source}/tools/image-clone@${image.digest}`; // what kustomize makes of `digest:`

  // The user's overlay, next to the repository's manifests (here: in a temporary folder).
  overlay = await mkdtemp(join(tmpdir(), 'image-clone-overlay-'));
  await writeCronJobOverlay(overlay, {
    base: 'manifests/overlays/pull-secrets', image: `${source}/tools/image-clone`, digest: image.digest,
    env: { IMAGE_CLONE_BACKUP: `${backup.host}/incluster`, IMAGE_CLONE_INSECURE_REGISTRY: `${source},${backup.host}`, IMAGE_CLONE_NAMESPACE: apps_ns },
  });
  applyKustomization(env, relative(repoRoot, overlay));
  // The two Secrets docs/cronjob.md has users create: the registry credentials and the pull secret.
  const auth = Buffer.from(`${backup.username}:${backup.password}`).toString('base64');
  const body = { metadata: { name: 'image-clone-registry' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [backup.host]: { auth } } }) } };
  await core.createNamespacedSecret({ namespace: ns, body }).catch(() => core.replaceNamespacedSecret({ name: 'image-clone-registry', namespace: ns, body }));
  await ensurePullSecret(env);

  await core.createNamespace({ body: { metadata: { name: apps_ns } } });
  await pushImage(source, 'incluster/app', '1', testImage('incluster/app'));
  await apps.createNamespacedDeployment({ namespace: apps_ns, body: deployment('app', `${source}/incluster/app:1`, { pod: { terminationGracePeriodSeconds: 5 } }) });
  await waitForRunningPods(core, apps_ns, 'app=app', 1, 60_000);
});

after(() => {
  // Leave the shipped RBAC as it was, for whatever runs next.
  if (overlay) applyKustomization(env, relative(repoRoot, overlay));
});

const runJob = (name: string) => runJobFromCronJob({ batch, core }, ns, 'image-clone', name);

const exitCode = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode;
const events = (log: string) => log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

test('a Job from the CronJob runs under the restricted profile, authenticates in-cluster, exits 0 and patches the workloads', async () => {
  // The namespace enforces the restricted profile: a pod that breaks it is refused.
  const namespace = await core.readNamespace({ name: ns });
  assert.equal(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  await assert.rejects(core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'privileged' }, spec: { containers: [{ name: 'c', image: imageRef, securityContext: { privileged: true } }] } } }),
    (err: Error) => /violates PodSecurity \\?"restricted:latest/.test(String((err as { body?: unknown }).body ?? err.message)));
  const auditStart = readFileSync(env.auditLog, 'utf8').split('\n').length;

  const { job, pods } = await runJob('first');
  assert.equal(pods.length, 1);
  const [pod] = pods;
  assert.equal(exitCode(pod!), 0, JSON.stringify(pod!.status));
  assert.ok(job.status?.conditions?.some((c) => c.type === 'Complete'));
  assert.equal(pod!.spec!.nodeName, env.node.name);
  assert.equal(pod!.spec!.containers[0]!.image, imageRef);
  assert.equal(pod!.spec!.containers[0]!.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(pod!.spec!.securityContext?.runAsUser, 1000);

  // Its log: the JSON events docs/cronjob.md documents (time, level, event), then the summary for people.
  const log = await core.readNamespacedPodLog({ name: pod!.metadata!.name!, namespace: ns });
  const lines = events(log);
  for (const e of lines) for (const field of ['time', 'level', 'event']) assert.ok(field in e, `${field} in ${JSON.stringify(e)}`);
  assert.ok(lines.some((e) => e.event === 'image-copied'), log);
  assert.ok(lines.some((e) => e.event === 'workload-patched'), log);
  assert.ok(!log.includes(backup.password!), 'no credential in the log');

  // The workload is patched, and runs from the backup with the copied pull secret.
  const deployment = await apps.readNamespacedDeployment({ name: 'app', namespace: apps_ns });
  assert.match(deployment.spec!.template.spec!.containers[0]!.image!, new RegExp(`^${backup.host}/incluster/`));
  await waitForRunningPods(core, apps_ns, 'app=app', 1, 60_000, (p) => p.spec!.containers[0]!.image!.startsWith(`${backup.host}/`));

  // It authenticated as its ServiceAccount with the token the kubelet mounted into that very pod.
  const audit = readFileSync(env.auditLog, 'utf8').split('\n').slice(auditStart).filter(Boolean).map((l) => JSON.parse(l));
  const patches = audit.filter((a) => a.verb === 'patch' && a.objectRef?.resource === 'deployments' && a.objectRef?.namespace === apps_ns);
  assert.ok(patches.length >= 1);
  for (const a of patches) {
    assert.equal(a.user.username, 'system:serviceaccount:image-clone:image-clone');
    assert.deepEqual(a.user.extra?.['authentication.kubernetes.io/pod-name'], [pod!.metadata!.name]);
  }
});

test('a second Job is a no-op: exit 0, nothing copied, nothing patched', async () => {
  const before = await apps.readNamespacedDeployment({ name: 'app', namespace: apps_ns });
  const { pods } = await runJob('second');
  assert.equal(pods.length, 1);
  assert.equal(exitCode(pods[0]!), 0);
  const log = await core.readNamespacedPodLog({ name: pods[0]!.metadata!.name!, namespace: ns });
  const lines = events(log);
  assert.ok(!lines.some((e) => e.event === 'workload-patched'), log);
  assert.ok(!lines.some((e) => e.event === 'image-copied' && e.status !== 'present'), log);
  const after = await apps.readNamespacedDeployment({ name: 'app', namespace: apps_ns });
  assert.equal(after.metadata!.generation, before.metadata!.generation);
});

test('without its RBAC grant, the Job fails with exit 2 and the podFailurePolicy ends it without a retry', async () => {
  await rbac.deleteClusterRoleBinding({ name: 'image-clone' });
  const { job, pods } = await runJob('no-rbac');
  assert.equal(pods.length, 1, 'no retry');
  assert.equal(exitCode(pods[0]!), 2);
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  assert.equal(failed?.reason, 'PodFailurePolicy', JSON.stringify(job.status));
  const log = await core.readNamespacedPodLog({ name: pods[0]!.metadata!.name!, namespace: ns });
  assert.match(log, /HTTP 403/, log);
});
