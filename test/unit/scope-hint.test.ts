// The error line of a run that may not list in all namespaces: with a Role only, it says to pass -n
// (naming the namespace most likely allowed) or to bind a ClusterRole. The error is the one
// kube/list.ts makes of a 403; test/node/team.test.ts sees the real API server's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { clusterScopeHint } from '../../src/cli/kube-selection.ts';
import { KubeError } from '../../src/errors.ts';

const refused = new KubeError('cannot list deployments in all namespaces (HTTP 403): deployments.apps is forbidden: User "system:serviceaccount:team:image-clone" cannot list resource "deployments" in API group "apps" at the cluster scope', 403, 'Forbidden');

function kubeOf(contextNamespace?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443' }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u', ...(contextNamespace ? { namespace: contextNamespace } : {}) }],
    currentContext: 'x',
  });
  return kc;
}

test('no -n and a 403: one line, the API server\'s words first, then -n with the pod\'s namespace, or a ClusterRole', () => {
  const err = clusterScopeHint(refused, { kube: { kc: kubeOf(), source: 'in-cluster', ownNamespace: 'team' }, discovery: { namespaces: [] } }) as KubeError;
  assert.ok(err instanceof KubeError);
  assert.equal(err.status, 403, 'still exit 2');
  assert.ok(err.message.startsWith(refused.message));
  assert.match(err.message, /; with permissions in some namespaces only \(a Role\), pass -n with the namespaces you may list \(-n team, or IMAGE_CLONE_NAMESPACE\), or bind a ClusterRole/);
  assert.doesNotMatch(err.message, /\n/);
});

test('out of a cluster the example is the kubeconfig context\'s namespace, else a placeholder', () => {
  const fromContext = clusterScopeHint(refused, { kube: { kc: kubeOf('shop'), source: 'f' }, discovery: { namespaces: [] } }) as KubeError;
  assert.match(fromContext.message, /\(-n shop,/);
  const none = clusterScopeHint(refused, { kube: { kc: kubeOf(), source: 'f' }, discovery: { namespaces: [] } }) as KubeError;
  assert.match(none.message, /\(-n NAMESPACE,/);
});

test('with -n, or for anything but a 403, the error is left as it is', () => {
  const kube = { kc: kubeOf(), source: 'f' };
  assert.equal(clusterScopeHint(refused, { kube, discovery: { namespaces: ['team'] } }), refused);
  const unreachable = new KubeError('cannot list deployments in all namespaces: the API server is unreachable (ECONNREFUSED)');
  assert.equal(clusterScopeHint(unreachable, { kube, discovery: { namespaces: [] } }), unreachable);
  const other = new Error('boom');
  assert.equal(clusterScopeHint(other, { kube, discovery: { namespaces: [] } }), other);
});
