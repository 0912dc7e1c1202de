import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { discoverWorkloads, managedBy } from '../../../src/core/workloads.ts';
import type { KubeObject } from '../../../src/core/kube-object.ts';

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const meta = (name: string, uid: string, owner?: { kind: string; uid: string }) => ({
  name, namespace: 'shop', uid, resourceVersion: '1',
  ...(owner ? { ownerReferences: [{ kind: owner.kind, name: 'x', uid: owner.uid, controller: true }] } : {}),
});
const template = (image: string, init?: string) => ({ template: { spec: { containers: [{ name: 'app', image }], ...(init ? { initContainers: [{ name: 'setup', image: init }] } : {}) } } });
function pod(name: string, owner: { kind: string; uid: string } | undefined, image: string, imageID?: string): KubeObject {
  return {
    metadata: meta(name, `pod-${name}`, owner),
    spec: { containers: [{ name: 'app', image }] },
    status: imageID ? { containerStatuses: [{ name: 'app', image, imageID }] } : {},
  };
}

describe('discoverWorkloads', () => {
  test('owners are workloads; ReplicaSets, Jobs and Pods they own are not', () => {
    const workloads = discoverWorkloads({
      objects: {
        Deployment: [{ metadata: meta('web', 'd1'), spec: template('nginx:1.25') }],
        ReplicaSet: [{ metadata: meta('web-abc', 'rs1', { kind: 'Deployment', uid: 'd1' }), spec: template('nginx:1.25') }, { metadata: meta('bare-rs', 'rs2'), spec: template('redis:7') }],
        CronJob: [{ metadata: meta('nightly', 'cj1'), spec: { jobTemplate: { spec: template('busybox:1', 'alpine:3') } } }],
        Job: [{ metadata: meta('nightly-1', 'j1', { kind: 'CronJob', uid: 'cj1' }), spec: template('busybox:1') }, { metadata: meta('once', 'j2'), spec: template('busybox:2') }],
        Pod: [pod('web-abc-1', { kind: 'ReplicaSet', uid: 'rs1' }, 'nginx:1.25'), pod('lonely', undefined, 'httpd:2')],
      },
    });
    assert.deepEqual(workloads.map((w) => `${w.kind}/${w.name}`).sort(),
      ['CronJob/nightly', 'Deployment/web', 'Job/once', 'Pod/lonely', 'ReplicaSet/bare-rs'].sort());
    const cron = workloads.find((w) => w.kind === 'CronJob')!;
    assert.deepEqual(cron.containers.map((c) => [c.name, c.image, c.type]), [['app', 'busybox:1', 'container'], ['setup', 'alpine:3', 'initContainer']]);
  });

  test('the running digest comes from pods (through their ReplicaSet) when all of them agree', () => {
    const rsOwner = { kind: 'ReplicaSet', uid: 'rs1' };
    const base = {
      Deployment: [{ metadata: meta('web', 'd1'), spec: template('nginx:1.25') }],
      ReplicaSet: [{ metadata: meta('web-abc', 'rs1', { kind: 'Deployment', uid: 'd1' }), spec: template('nginx:1.25') }],
    };
    const agree = discoverWorkloads({ objects: { ...base, Pod: [
      pod('a', rsOwner, 'nginx:1.25', `docker.io/library/nginx@${digest(1)}`),
      pod('b', rsOwner, 'nginx:1.25', `docker-pullable://nginx@${digest(1)}`),
      pod('c', rsOwner, 'nginx:1.24', `docker.io/library/nginx@${digest(9)}`), // an older rollout: another image, no vote on the template's digest (pod-images.ts backs it up)
      pod('d', rsOwner, 'nginx:1.25'), // not started yet: no imageID
    ] } });
    assert.equal(agree[0]!.containers[0]!.runningDigest, digest(1));

    const disagree = discoverWorkloads({ objects: { ...base, Pod: [
      pod('a', rsOwner, 'nginx:1.25', `docker.io/library/nginx@${digest(1)}`),
      pod('b', rsOwner, 'nginx:1.25', `docker.io/library/nginx@${digest(2)}`),
    ] } });
    assert.equal(disagree[0]!.containers[0]!.runningDigest, undefined, 'disagreeing pods: ask the registry instead');
  });

  test('ephemeral containers are listed as such; objects without a pod template are ignored', () => {
    const workloads = discoverWorkloads({ objects: { Pod: [{
      metadata: meta('debugged', 'p1'),
      spec: { containers: [{ name: 'app', image: 'nginx' }], ephemeralContainers: [{ name: 'debugger', image: 'busybox' }] },
    }, { metadata: meta('empty', 'p2') }] } });
    assert.deepEqual(workloads.map((w) => w.containers.map((c) => c.type)), [['container', 'ephemeralContainer']]);
  });
});

test('GitOps and package-manager markers are recognised', () => {
  assert.equal(managedBy({}, { 'argocd.argoproj.io/tracking-id': 'app:apps/Deployment:shop/web' }), 'Argo CD');
  assert.equal(managedBy({ 'kustomize.toolkit.fluxcd.io/name': 'apps' }, {}), 'Flux');
  assert.equal(managedBy({ 'app.kubernetes.io/managed-by': 'Helm' }, { 'meta.helm.sh/release-name': 'web' }), 'Helm');
  assert.equal(managedBy({ 'app.kubernetes.io/instance': 'web' }, {}), undefined, 'a common label alone is no marker');
});

test('slim objects keep what discovery reads, and discovery finds the same workloads in them', async () => {
  const { slimObject } = await import('../../../src/kube/list.ts');
  const full: Record<string, KubeObject[]> = {
    Deployment: [{
      metadata: { ...meta('web', 'd1'), labels: { app: 'web' }, annotations: { 'meta.helm.sh/release-name': 'web' }, managedFields: [{ manager: 'kubectl', fieldsV1: { big: 'x'.repeat(1000) } }] } as KubeObject['metadata'],
      spec: { replicas: 3, template: { spec: { containers: [{ name: 'app', image: 'nginx:1.25', env: [{ name: 'A', value: 'x'.repeat(500) }] }], imagePullSecrets: [{ name: 'pull' }], volumes: [{ name: 'v' }] } } },
    }],
    ReplicaSet: [{ metadata: meta('web-1', 'rs1', { kind: 'Deployment', uid: 'd1' }), spec: template('nginx:1.25') }],
    Pod: [{ ...pod('web-1-a', { kind: 'ReplicaSet', uid: 'rs1' }, 'nginx:1.25', `docker.io/library/nginx@${digest(1)}`), spec: { containers: [{ name: 'app', image: 'nginx:1.25', resources: { limits: { cpu: '1' } } }], nodeName: 'n1' } }],
  };
  const slim = Object.fromEntries(Object.entries(full).map(([kind, list]) => [kind, list.map((o) => slimObject(kind as 'Pod', o))]));
  assert.deepEqual(discoverWorkloads({ objects: slim }), discoverWorkloads({ objects: full }));
  const text = JSON.stringify(slim);
  for (const dropped of ['managedFields', 'replicas', 'env', 'volumes', 'resources', 'nodeName']) assert.ok(!text.includes(dropped), `${dropped} is dropped`);
  assert.ok(text.includes('"imagePullSecrets":[{"name":"pull"}]') && text.includes('meta.helm.sh/release-name'), 'pull secrets and annotations are kept');
});

test('a pod a controller owns keeps only what links what it runs to its workload; a bare pod, a workload, keeps the rest', async () => {
  const { slimObject } = await import('../../../src/kube/list.ts');
  const owned = { ...pod('web-1-a', { kind: 'ReplicaSet', uid: 'rs1' }, 'nginx:1.25', `docker.io/library/nginx@${digest(1)}`) };
  owned.metadata = { ...owned.metadata, labels: { app: 'web', 'pod-template-hash': '1' }, annotations: { note: 'x' }, resourceVersion: '7' };
  owned.spec = { containers: [{ name: 'app', image: 'nginx:1.25' }], imagePullSecrets: [{ name: 'pull' }] };
  assert.deepEqual(slimObject('Pod', owned), {
    // The owner's apiVersion and name stay: an owner image-clone does not list is reported by them.
    // Its name: the plan names a pod that runs an image its workload's template does not (pod-images.ts).
    metadata: { name: 'web-1-a', namespace: owned.metadata!.namespace, uid: owned.metadata!.uid, ownerReferences: [{ apiVersion: undefined, kind: 'ReplicaSet', name: 'x', uid: 'rs1', controller: true }] },
    spec: { containers: [{ name: 'app', image: 'nginx:1.25' }] },
    status: { containerStatuses: [{ name: 'app', imageID: `docker.io/library/nginx@${digest(1)}` }] },
  });
  const bare = { ...owned, metadata: { ...owned.metadata, ownerReferences: [] } };
  const slimBare = slimObject('Pod', bare);
  assert.equal(slimBare.metadata?.name, 'web-1-a');
  assert.deepEqual(slimBare.metadata?.labels, { app: 'web', 'pod-template-hash': '1' });
  assert.deepEqual((slimBare.spec as { imagePullSecrets?: unknown }).imagePullSecrets, [{ name: 'pull' }]);
});
