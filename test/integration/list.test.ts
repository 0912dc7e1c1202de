// WorkloadLister (src/kube/list.ts) against the harness's API server: it reads the lists' JSON
// itself (no client-node models), so these check what that must get right: following continue
// tokens across pages, the selectors, slim objects with what discovery needs, the authentication
// (client certificates and bearer tokens), and the API's refusals as KubeErrors.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { KubeError } from '../../src/errors.ts';
import { WorkloadLister } from '../../src/kube/list.ts';
import { harnessEnv, type HarnessEnv } from '../harness/harness.ts';
import { adminKubeConfig, kubeClients, serviceAccountToken, tokenKubeConfig } from './helpers.ts';

let env: HarnessEnv;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let namespace: string;
/** More than one page (the lister asks for 250 at a time). */
const pods = 260;

before(async () => {
  env = await harnessEnv();
  kc = adminKubeConfig(env);
  ({ core, apps } = kubeClients(kc));
  const ns = await core.createNamespace({ body: { metadata: { generateName: 'list-' } } });
  namespace = ns.metadata!.name!;
  // The serviceaccount controller makes `default` shortly after the namespace; pods need it.
  for (let i = 0; i < 100 && !(await core.listNamespacedServiceAccount({ namespace })).items.some((s) => s.metadata?.name === 'default'); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const queue = Array.from({ length: pods }, (_, i) => i);
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: `pod-${i}`, labels: { parity: i % 2 ? 'odd' : 'even' }, annotations: { note: `pod ${i}` } },
          spec: {
            containers: [{ name: 'app', image: `registry.example/app:${i}`, env: [{ name: 'BIG', value: 'x'.repeat(200) }] }],
            initContainers: [{ name: 'init', image: 'registry.example/init:1' }],
            imagePullSecrets: [{ name: 'pull' }],
          },
        },
      });
    }
  }));
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'web' },
      spec: { replicas: 0, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'registry.example/web:1' }] } } },
    },
  });
});

after(async () => {
  if (namespace) await core.deleteNamespace({ name: namespace });
});

describe('WorkloadLister against the API server', () => {
  test('follows continue tokens: every pod of a namespace once, in two pages', async () => {
    const lister = new WorkloadLister(kc);
    const listed = await lister.list('Pod', [namespace]);
    assert.equal(listed.length, pods);
    assert.equal(new Set(listed.map((p) => p.metadata?.name)).size, pods);
    assert.equal(lister.requests, 2, '250 + 10');
    // As client-node's own calls name themselves (audit logs, test/integration/sync-plan.test.ts).
    const audit = (await readFile(env.auditLog, 'utf8')).split('\n').filter((l) => l.includes(`/api/v1/namespaces/${namespace}/pods?limit=250`)).map((l) => JSON.parse(l) as { userAgent?: string });
    assert.ok(audit.length >= 2 && audit.every((e) => e.userAgent?.startsWith('kubernetes-client-javascript')), JSON.stringify(audit.map((e) => e.userAgent)));
  });

  test('slim objects keep what discovery and patching read, and drop the rest', async () => {
    const [pod] = await new WorkloadLister(kc).list('Pod', [namespace], undefined, 'metadata.name=pod-7');
    assert.ok(pod);
    assert.equal(pod.metadata?.namespace, namespace);
    assert.match(pod.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(pod.metadata?.resourceVersion ?? '', /^\d+$/);
    assert.deepEqual(pod.metadata?.labels, { parity: 'odd' });
    assert.deepEqual(pod.metadata?.annotations, { note: 'pod 7' });
    assert.deepEqual(pod.spec, { containers: [{ name: 'app', image: 'registry.example/app:7' }], initContainers: [{ name: 'init', image: 'registry.example/init:1' }], imagePullSecrets: [{ name: 'pull' }] });
    assert.equal(JSON.stringify(pod).includes('managedFields'), false);
    assert.equal(JSON.stringify(pod).includes('BIG'), false);

    const [deployment] = await new WorkloadLister(kc).list('Deployment', [namespace]);
    assert.deepEqual(deployment?.spec, { template: { spec: { containers: [{ name: 'web', image: 'registry.example/web:1' }] } } });
  });

  test('label selectors, and all namespaces', async () => {
    const odd = await new WorkloadLister(kc).list('Pod', [namespace], 'parity=odd');
    assert.equal(odd.length, pods / 2);
    assert.ok(odd.every((p) => p.metadata?.labels?.parity === 'odd'));
    const all = await new WorkloadLister(kc).list('Deployment', []);
    assert.ok(all.some((d) => d.metadata?.namespace === namespace && d.metadata.name === 'web'));
  });

  test('a bearer token authenticates too; the API\'s refusals become KubeErrors with its message', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
    const token = await serviceAccountToken(core, namespace, 'nobody');
    const nobody = tokenKubeConfig(env.server, env.caFile, 'nobody', token);
    await assert.rejects(new WorkloadLister(nobody).list('Pod', [namespace]), (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.status, 403);
      assert.match(err.message, /^cannot list pods in namespace list-\w+ \(HTTP 403\): pods is forbidden: User "system:serviceaccount:list-\w+:nobody" cannot list resource "pods"/);
      return true;
    });
    const wrong = tokenKubeConfig(env.server, env.caFile, 'wrong', 'not-a-token');
    await assert.rejects(new WorkloadLister(wrong).list('Pod', []), /cannot list pods in all namespaces \(HTTP 401\): Unauthorized: the credentials in the kubeconfig were refused/);
  });
});
