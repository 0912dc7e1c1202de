// Proves the harness's control plane is real: real controllers create ReplicaSets, real RBAC
// authorizes a ServiceAccount token obtained through the TokenRequest API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  VersionApi,
} from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { serviceAccountToken, tokenKubeConfig, waitUntil, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let namespaces: Namespaces;
let namespace: string;

before(async () => {
  let kube: KubeClients;
  ({ env, kube, namespaces } = await harnessFixtures());
  ({ kc, core, apps } = kube);
  namespace = await namespaces.create('harness-kube');
});

after(async () => {
  await namespaces?.deleteAll();
});

async function replicaSetImages(name: string): Promise<string[]> {
  const list = await apps.listNamespacedReplicaSet({ namespace, labelSelector: `app=${name}` });
  return list.items.map((rs) => rs.spec!.template!.spec!.containers[0]!.image!).sort();
}

describe('kube-apiserver and kube-controller-manager', () => {
  test('the server is the pinned Kubernetes release, 1.35 or newer', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    assert.equal(version.gitVersion, env.k8sVersion);
    assert.match(version.gitVersion, /^v1\.(3[5-9]|[4-9]\d)\.\d+$/);
  });

  test('a Deployment gets a ReplicaSet, and patching its image makes a second one', async () => {
    await apps.createNamespacedDeployment({ namespace, body: deployment('web', 'registry.example/web:1', { replicas: 1 }) });
    await waitUntil('the first ReplicaSet', async () => (await replicaSetImages('web')).length === 1);
    assert.deepEqual(await replicaSetImages('web'), ['registry.example/web:1']);

    await apps.patchNamespacedDeployment(
      { name: 'web', namespace, body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'registry.example/web:2' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await waitUntil('the second ReplicaSet', async () => (await replicaSetImages('web')).length === 2);
    assert.deepEqual(await replicaSetImages('web'), ['registry.example/web:1', 'registry.example/web:2']);
  });

  test('new namespaces get a default ServiceAccount from the serviceaccount controller', async () => {
    await waitUntil('ServiceAccount default', async () => {
      const list = await core.listNamespacedServiceAccount({ namespace });
      return list.items.some((sa) => sa.metadata?.name === 'default');
    });
  });
});

describe('RBAC with a TokenRequest token', () => {
  test('a ServiceAccount bound to a list-only Role can list Deployments but not patch them', async () => {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'lister' } } });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'list-deployments' },
        rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'lister' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'list-deployments' },
        subjects: [{ kind: 'ServiceAccount', name: 'lister', namespace }],
      },
    });
    const token = await serviceAccountToken(core, namespace, 'lister');
    assert.ok(token.split('.').length === 3, 'the TokenRequest API returns a JWT');
    const listerApps = tokenKubeConfig(env.server, env.caFile, 'lister', token, namespace).makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({ namespace, body: deployment('api', 'registry.example/api:1', { replicas: 1 }) });

    const list = await listerApps.listNamespacedDeployment({ namespace });
    assert.ok(list.items.some((d) => d.metadata?.name === 'api'));

    const refused = await listerApps
      .patchNamespacedDeployment(
        { name: 'api', namespace, body: { metadata: { labels: { touched: 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      .then(() => undefined, (err: unknown) => err);
    assert.ok(refused instanceof ApiException, `expected an ApiException, got ${String(refused)}`);
    assert.equal(refused.code, 403);
    const status = JSON.parse(String(refused.body)) as { reason: string; message: string };
    assert.equal(status.reason, 'Forbidden');
    assert.match(status.message, /User "system:serviceaccount:.*:lister" cannot patch resource "deployments" in API group "apps"/);

    const unchanged = await apps.readNamespacedDeployment({ name: 'api', namespace });
    assert.equal(unchanged.metadata?.labels?.touched, undefined);
  });
});
