// The Helm chart installed for real: the real helm (built by test/harness/tools.sh from the Go module
// proxy) against the harness's API server. Install creates the objects; an invalid value is refused
// by the schema before anything is created; upgrade changes the schedule and leaves the credentials
// Secret alone; uninstall removes image-clone's objects and leaves the workloads.
// test/node/chart.test.ts runs a Job from the installed CronJob on the real node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { waitUntil, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let ns: string;
let apps: string;
let helmHome: string;
const release = 'ic-helm';
const name = `${release}-image-clone`; // the chart names objects <release>-image-clone

function helm(...args: string[]): { status: number; out: string } {
  const bin = join(repoRoot, '.harness/bin/helm');
  assert.ok(existsSync(bin), `${bin} is missing: run \`bash test/harness/tools.sh\` (npm run harness:build does)`);
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: env.kubeconfig, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') },
  });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const gone = (read: () => Promise<unknown>) => read().then(() => false, (err) => err instanceof ApiException && err.code === 404);

/** Every object the chart installs, read back (rejects when one is missing). */
const readAll = () => Promise.all([
  kube.core.readNamespacedServiceAccount({ name, namespace: ns }),
  kube.rbac.readClusterRole({ name }),
  kube.rbac.readClusterRoleBinding({ name }),
  kube.rbac.readNamespacedRole({ name, namespace: ns }),
  kube.rbac.readNamespacedRoleBinding({ name, namespace: ns }),
  kube.batch.readNamespacedCronJob({ name, namespace: ns }),
]);

before(async () => {
  ({ env, kube, namespaces } = await harnessFixtures());
  helmHome = await mkdtemp(join(tmpdir(), 'image-clone-helm-'));
  ns = await namespaces.create('helm');
  apps = await namespaces.create('helm-apps');
  // The credentials Secret, created once by the user as NOTES.txt says; the chart never owns it.
  await kube.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'image-clone-registry' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': '{"auths":{}}' } } });
  await kube.apps.createNamespacedDeployment({ namespace: apps, body: deployment('web', `${env.registries.source.host}/helm/web:1`, { replicas: 0 }) });
});

after(async () => {
  if (helmHome) helm('uninstall', release, '-n', ns);
  await namespaces?.deleteAll();
});

describe('helm install, upgrade, uninstall on a real API server', () => {
  test('a value the schema refuses: helm says which, and installs nothing', async () => {
    const r = helm('install', release, join(repoRoot, 'charts/image-clone'), '-n', ns, '--set', 'sync.concurrency=lots');
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /values don't meet the specifications of the schema/);
    assert.match(r.out, /concurrency/);
    assert.ok(await gone(() => kube.batch.readNamespacedCronJob({ name, namespace: ns })));
  });

  test('install: the ServiceAccount, RBAC and CronJob, as the chart renders them; NOTES say how to run the first Job', async () => {
    const r = helm('install', release, join(repoRoot, 'charts/image-clone'), '-n', ns, '--set', `backup=${env.registries.backup.host}/helm`);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, new RegExp(`kubectl -n ${ns} create job --from=cronjob/${name} `));
    const [sa, clusterRole, binding, , , cronJob] = await readAll();
    assert.equal(sa.metadata?.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    assert.ok(clusterRole.rules?.some((rule) => rule.verbs.includes('patch') && rule.resources?.includes('deployments')));
    assert.deepEqual(binding.subjects?.map((s) => ({ ...s })), [{ kind: 'ServiceAccount', name, namespace: ns }]);
    assert.equal(cronJob.spec?.schedule, '17 2 * * *');
    assert.equal(cronJob.spec?.concurrencyPolicy, 'Forbid');
    const pod = cronJob.spec!.jobTemplate.spec!.template.spec!;
    assert.equal(pod.serviceAccountName, name);
    assert.equal(pod.volumes?.[0]?.secret?.secretName, 'image-clone-registry');
    assert.ok(pod.containers[0]!.env!.some((e) => e.name === 'IMAGE_CLONE_BACKUP' && e.value === `${env.registries.backup.host}/helm`));
  });

  test('upgrade: a new schedule; the credentials Secret is the same object with the same data', async () => {
    const secret = await kube.core.readNamespacedSecret({ name: 'image-clone-registry', namespace: ns });
    const r = helm('upgrade', release, join(repoRoot, 'charts/image-clone'), '-n', ns, '--reuse-values', '--set', 'schedule=45 3 * * *');
    assert.equal(r.status, 0, r.out);
    const cronJob = await kube.batch.readNamespacedCronJob({ name, namespace: ns });
    assert.equal(cronJob.spec?.schedule, '45 3 * * *');
    assert.ok(cronJob.spec!.jobTemplate.spec!.template.spec!.containers[0]!.env!.some((e) => e.name === 'IMAGE_CLONE_BACKUP' && e.value === `${env.registries.backup.host}/helm`), 'the other values are kept');
    const after = await kube.core.readNamespacedSecret({ name: 'image-clone-registry', namespace: ns });
    assert.equal(after.metadata?.uid, secret.metadata?.uid);
    assert.equal(after.metadata?.resourceVersion, secret.metadata?.resourceVersion);
  });

  test('rbac.namespaced: a second release with no cluster-scope object, whose Role the API server grants in its namespace only', async () => {
    const team = await namespaces.create('helm-team');
    const r = helm('install', 'team', join(repoRoot, 'charts/image-clone'), '-n', team, '--set', 'rbac.namespaced=true', '--set', 'credentials.existingSecret=');
    assert.equal(r.status, 0, r.out);
    try {
      assert.ok(await gone(() => kube.rbac.readClusterRole({ name: 'team-image-clone' })));
      const review = (namespace: string) => kube.authz.createSubjectAccessReview({ body: { spec: {
        user: `system:serviceaccount:${team}:team-image-clone`, groups: ['system:serviceaccounts', `system:serviceaccounts:${team}`, 'system:authenticated'],
        resourceAttributes: { verb: 'patch', group: 'apps', resource: 'deployments', namespace },
      } } });
      // The authorizer sees a new RoleBinding a moment after it is created.
      await waitUntil('patch deployments to be allowed in its namespace', async () => (await review(team)).status?.allowed === true, 30_000);
      assert.equal((await review(apps)).status?.allowed, false, 'and nowhere else');
    } finally {
      helm('uninstall', 'team', '-n', team);
    }
  });

  test('uninstall: every object of the chart is gone; the credentials Secret and the workloads stay', async () => {
    const r = helm('uninstall', release, '-n', ns);
    assert.equal(r.status, 0, r.out);
    await assert.rejects(readAll());
    assert.ok(await gone(() => kube.batch.readNamespacedCronJob({ name, namespace: ns })));
    assert.ok(await gone(() => kube.rbac.readClusterRole({ name })));
    assert.ok(await gone(() => kube.rbac.readClusterRoleBinding({ name })));
    assert.ok(await gone(() => kube.rbac.readNamespacedRole({ name, namespace: ns })));
    assert.ok(await gone(() => kube.core.readNamespacedServiceAccount({ name, namespace: ns })));
    await kube.core.readNamespacedSecret({ name: 'image-clone-registry', namespace: ns });
    await kube.apps.readNamespacedDeployment({ name: 'web', namespace: apps });
  });
});
