// A team's install, for real (issue 26): a team owns one namespace and may do anything in it, and
// nothing outside it. It installs image-clone there from manifests/overlays/namespaced with
// `kubectl apply -k` as itself, and the CronJob's run, a pod on the harness node with a Role in
// that namespace only:
//  - patches the team's workloads, but not image-clone's own CronJob (found through the pod's owners);
//  - asks the API server nothing outside the namespace (the audit log says so);
//  - protects them: with the source registry gone, the node's images wiped and the pods deleted,
//    the team's workloads come back from the backup.
// Out of the cluster, the same ServiceAccount without -n fails at once with one line saying what to do.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { pushImage, testImage, type BuiltImage } from '../harness/images.ts';
import { cronJob, deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients, runCli, serviceAccountToken, tokenKubeConfig, waitUntil, writeKubeconfig } from '../integration/helpers.ts';
import {
  digestOf, jobFromCronJob, nodeEnv, startOwnRegistries, waitForPodPhase, waitForRunningPods, wipeNodeImages, writeCronJobOverlay, type OwnRegistries,
} from './helpers.ts';
import { buildImageCloneImage } from './image-clone-image.ts';

type Doc = Record<string, any>;

const env = await nodeEnv();
const admin = kubeClients(adminKubeConfig(env));
const team = 'team-a';
const saUser = `system:serviceaccount:${team}:image-clone`;
const source = env.registries.source.host;
const backup = env.registries.backup;
const prefix = 'team-backup';

let lost: OwnRegistries; // the team's upstream registry, destroyed in the drill
let lostHost: string;
let owner: ReturnType<typeof kubeClients>; // the team's own identity: everything in its namespace, nothing else
let ownerKubeconfig: string;
let imageRef: string;
let overlay: string;
const built: Record<string, BuiltImage> = {};
const ref = (name: string) => `${lostHost}/team/${name}:1`;
const backupRepo = (name: string) => `${prefix}/${lostHost.replace(':', '_')}/team/${name}`;

before(async () => {
  const image = await buildImageCloneImage();
  await pushImage(source, 'tools/image-clone', 'team', image);
  imageRef = `${source}/tools/image-clone@${image.digest}`;
  lost = await startOwnRegistries();
  lostHost = lost.registries.source!.host;
  for (const name of ['web', 'report']) {
    built[name] = testImage(`team/${name}`);
    await pushImage(lostHost, `team/${name}`, '1', built[name]!);
  }

  // The cluster's admin gives the team a namespace and a Role in it: all of it, nothing outside.
  await admin.core.createNamespace({ body: { metadata: { name: team } } });
  await admin.core.createNamespacedServiceAccount({ namespace: team, body: { metadata: { name: 'owner' } } });
  await admin.rbac.createNamespacedRole({ namespace: team, body: { metadata: { name: 'owner' }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] } });
  await admin.rbac.createNamespacedRoleBinding({ namespace: team, body: {
    metadata: { name: 'owner' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'owner' },
    subjects: [{ kind: 'ServiceAccount', name: 'owner', namespace: team }],
  } });
  const ownerKc = tokenKubeConfig(env.server, env.caFile, 'owner', await serviceAccountToken(admin.core, team, 'owner'), team);
  ownerKubeconfig = await writeKubeconfig(ownerKc, 'team-owner');
  owner = kubeClients(ownerKc);

  // From here on the team does everything itself. The registry credentials image-clone pushes with,
  // and the backup's pull-only identity, given to the namespace's default ServiceAccount: the team's
  // pods pull the copies with it, and image-clone needs no permission on Secrets.
  const auth = (user: string, password: string) => JSON.stringify({ auths: { [backup.host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
  for (const [name, data] of [['image-clone-registry', auth(backup.username!, backup.password!)], ['team-pull', auth(backup.reader!.username!, backup.reader!.password!)]] as const) {
    await owner.core.createNamespacedSecret({ namespace: team, body: { metadata: { name }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': data } } });
  }
  await waitUntil('the default ServiceAccount', () => owner.core.readNamespacedServiceAccount({ name: 'default', namespace: team }).then(() => true, () => false));
  await owner.core.patchNamespacedServiceAccount({ name: 'default', namespace: team, body: [{ op: 'add', path: '/imagePullSecrets', value: [{ name: 'team-pull' }] }] });

  await owner.apps.createNamespacedDeployment({ namespace: team, body: deployment('web', ref('web'), { pod: { terminationGracePeriodSeconds: 5 } }) as any });
  await owner.batch.createNamespacedCronJob({ namespace: team, body: cronJob('report', [{ name: 'report', image: ref('report'), command: ['/bin/sh', '-c', 'cat /etc/image'] } as any], {
    spec: { schedule: '0 0 1 1 *', suspend: true }, pod: { restartPolicy: 'Never' },
  }) as any });
  await waitForRunningPods(owner.core, team, 'app=web', 1, 90_000);

  // The team's overlay of the namespaced install, as docs/team-install.md shows it.
  overlay = await mkdtemp(join(tmpdir(), 'image-clone-team-overlay-'));
  await writeCronJobOverlay(overlay, {
    base: 'manifests/overlays/namespaced', namespace: team, image: `${source}/tools/image-clone`, digest: image.digest,
    env: { IMAGE_CLONE_BACKUP: `${backup.host}/${prefix}`, IMAGE_CLONE_INSECURE_REGISTRY: `${source},${backup.host},${lostHost}`, IMAGE_CLONE_OUTPUT: 'json' },
  });
  execFileSync('kubectl', ['--kubeconfig', ownerKubeconfig, 'apply', '-k', overlay], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
});

after(async () => {
  await lost?.destroy();
  if (overlay) await rm(overlay, { recursive: true, force: true });
});

/** Runs a Job made from image-clone's CronJob and waits until it has finished; its pod. */
async function runJob(name: string): Promise<V1Pod> {
  await jobFromCronJob(owner.batch, team, 'image-clone', name);
  let job: V1Job | undefined;
  await waitUntil(`Job ${name} to finish`, async () => {
    job = await owner.batch.readNamespacedJob({ name, namespace: team });
    return !!job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  }, 120_000).catch(async (err: Error) => {
    const pods = (await owner.core.listNamespacedPod({ namespace: team, labelSelector: `job-name=${name}` })).items;
    throw new Error(`${err.message}: ${JSON.stringify(job?.status)} ${JSON.stringify(pods.map((p) => p.status))}`);
  });
  const pods = (await owner.core.listNamespacedPod({ namespace: team, labelSelector: `job-name=${name}` })).items;
  assert.equal(pods.length, 1, 'one attempt');
  return pods[0]!;
}

/** The pod's log is stderr's JSON event lines and stdout's report (a pretty-printed JSON document) together. */
function splitLog(log: string): { events: Doc[]; report: Doc } {
  const lines = log.split('\n');
  const start = lines.indexOf('{');
  const end = lines.lastIndexOf('}');
  assert.ok(start >= 0 && end > start, `a JSON report in the log:\n${log}`);
  return { events: lines.filter((l) => l.startsWith('{"')).map((l) => JSON.parse(l)), report: JSON.parse(lines.slice(start, end + 1).join('\n')) };
}

describe('a team-scoped install', () => {
  test('the team installed it with its own Role: no ClusterRole or ClusterRoleBinding was made for it', async () => {
    const roles = await admin.rbac.listClusterRoleBinding({ labelSelector: 'app.kubernetes.io/name=image-clone' });
    assert.ok(!roles.items.some((b) => b.subjects?.some((s) => s.namespace === team)), 'no cluster-wide binding for the team');
    const cj = await owner.batch.readNamespacedCronJob({ name: 'image-clone', namespace: team });
    const envVar = cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!.env!.find((e) => e.name === 'IMAGE_CLONE_NAMESPACE');
    assert.equal(envVar?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace');
  });

  test("without -n, the Role's ServiceAccount fails at once, in one line that says to pass -n or bind a ClusterRole", async () => {
    const kubeconfig = await writeKubeconfig(tokenKubeConfig(env.server, env.caFile, 'image-clone', await serviceAccountToken(admin.core, team, 'image-clone'), team), 'team-image-clone');
    const run = await runCli(['sync', '--backup', `${backup.host}/${prefix}`, '--dry-run', '--kubeconfig', kubeconfig, '--own-namespace', team, '--insecure-registry', backup.host], { KUBECONFIG: undefined, IMAGE_CLONE_NAMESPACE: undefined });
    assert.equal(run.code, 2, run.stderr);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    const lines = run.stderr.trim().split('\n');
    const line = lines.find((l) => l.startsWith('image-clone: '));
    assert.ok(line, run.stderr);
    assert.match(line, /^image-clone: cannot list \S+ in all namespaces \(HTTP 403\): .*cannot list resource "\S+" in API group "\S*" at the cluster scope; /);
    assert.match(line, new RegExp(`pass -n with the namespaces you may list \\(-n ${team}, or IMAGE_CLONE_NAMESPACE\\), or bind a ClusterRole`));
  });

  test("the CronJob's run patches the team's workloads, not image-clone's own CronJob, and asks nothing outside the namespace", async () => {
    const auditStart = readFileSync(env.auditLog, 'utf8').split('\n').length;
    const pod = await runJob('first');
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0, JSON.stringify(pod.status));
    const log = await owner.core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: team });
    const { events, report } = splitLog(log);
    assert.ok(!events.some((e) => e.level === 'error' || /which CronJob this run belongs to/.test(String(e.message))), `no error, and it found its own pod\n${log}`);

    const result = (kind: string, name: string) => report.workloads.find((w: Doc) => w.kind === kind && w.namespace === team && w.name === name);
    assert.equal(result('Deployment', 'web')?.result, 'patched', log);
    assert.equal(result('CronJob', 'report')?.result, 'patched', log);
    const self = result('CronJob', 'image-clone');
    assert.equal(self?.result, 'skipped', log);
    assert.match(self.resultReason, /^image-clone itself \(this run belongs to it\)/, 'told apart by its pod\'s owners');
    assert.ok(report.images.some((i: Doc) => i.source === imageRef && i.result === 'copied'), "image-clone's own image is backed up");

    const web = await owner.apps.readNamespacedDeployment({ name: 'web', namespace: team });
    assert.equal(web.spec!.template.spec!.containers[0]!.image, `${backup.host}/${backupRepo('web')}:1@${built.web!.digest}`);
    const reportJob = await owner.batch.readNamespacedCronJob({ name: 'report', namespace: team });
    assert.equal(reportJob.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, `${backup.host}/${backupRepo('report')}:1@${built.report!.digest}`);
    const ownCronJob = await owner.batch.readNamespacedCronJob({ name: 'image-clone', namespace: team });
    assert.equal(ownCronJob.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, imageRef, 'image-clone itself is not patched');

    // Every request its ServiceAccount made named the team's namespace: nothing at the cluster scope.
    const audit = readFileSync(env.auditLog, 'utf8').split('\n').slice(auditStart).filter(Boolean).map((l) => JSON.parse(l))
      .filter((a) => a.user?.username === saUser && a.stage === 'ResponseComplete');
    assert.ok(audit.length >= 5, `its requests are in the audit log (${audit.length})`);
    // API discovery (GET /api, /apis, /apis/GROUP/VERSION: how a run finds the custom workload
    // kinds the cluster serves) reads no object: its non-resource URLs are open to every
    // authenticated user (the default system:discovery role). Every other request names the namespace.
    const discovery = (a: Doc) => a.verb === 'get' && !a.objectRef && /^\/apis?(\/[^/?]+\/[^/?]+)?\/?(\?.*)?$/.test(a.requestURI);
    const outside = audit.filter((a) => !discovery(a) && (!a.objectRef || a.objectRef.namespace !== team));
    assert.deepEqual(outside.map((a) => `${a.verb} ${a.requestURI}`), [], 'no request outside the namespace');
    const refused = audit.filter((a) => a.annotations?.['authorization.k8s.io/decision'] !== 'allow');
    assert.deepEqual(refused.map((a) => `${a.verb} ${a.requestURI}`), [], 'nothing refused');
    const patches = audit.filter((a) => a.verb === 'patch');
    assert.deepEqual(patches.map((a) => `${a.objectRef.resource}/${a.objectRef.name}`).sort(), ['cronjobs/report', 'deployments/web']);
    for (const a of patches) assert.deepEqual(a.user.extra?.['authentication.kubernetes.io/pod-name'], [pod.metadata!.name], 'sent from the CronJob\'s pod');
    // It found itself by listing by name in its namespace: the pod, its Job, the CronJob.
    const lookups = audit.filter((a) => a.verb === 'list' && /fieldSelector=metadata.name/.test(decodeURIComponent(a.requestURI)));
    assert.deepEqual(lookups.map((a) => a.objectRef.resource).sort(), ['cronjobs', 'jobs', 'pods']);

    await waitForRunningPods(owner.core, team, 'app=web', 1, 90_000, (p) => p.spec!.containers[0]!.image!.startsWith(`${backup.host}/`));
  });

  test("the drill: source gone, node's images wiped, pods deleted: the team's workloads come back from the backup", async () => {
    await lost.destroy();
    await assert.rejects(fetch(`http://${lostHost}/v2/`), 'the source registry is gone');
    wipeNodeImages(env);
    await owner.core.deleteCollectionNamespacedPod({ namespace: team, labelSelector: 'app=web' });
    const [pod] = await waitForRunningPods(owner.core, team, 'app=web', 1, 120_000, (p) => !!p.status?.containerStatuses?.[0]?.imageID);
    const status = pod!.status!.containerStatuses![0]!;
    assert.equal(digestOf(status.imageID), built.web!.digest);
    assert.ok(status.imageID!.startsWith(`${backup.host}/${prefix}/`), status.imageID);

    await jobFromCronJob(owner.batch, team, 'report', 'report-after-rotation');
    let name: string | undefined;
    await waitUntil('a pod of the report Job', async () => {
      name = (await owner.core.listNamespacedPod({ namespace: team, labelSelector: 'job-name=report-after-rotation' })).items[0]?.metadata?.name;
      return !!name;
    });
    const done = await waitForPodPhase(owner.core, team, name!, 'Succeeded', 120_000);
    assert.equal(digestOf(done.status!.containerStatuses![0]!.imageID), built.report!.digest);
    assert.equal(await owner.core.readNamespacedPodLog({ name: name!, namespace: team }), 'team/report linux/amd64\n');
  });
});
