// The harness's real node: pods are scheduled, pull from the harness registries and run, and the
// imageID in their status is the one containerd reports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deployment } from '../integration/fixtures.ts';
import { adminKubeConfig, kubeClients } from '../integration/helpers.ts';
import { digestOf, nodeEnv, nodeImages, traceLines, waitForPodPhase, waitForRunningPods } from './helpers.ts';

const env = await nodeEnv();
const { core, apps } = kubeClients(adminKubeConfig(env));

test('a Deployment\'s pod runs on the node from an image in source, and its imageID is containerd\'s', async () => {
  const namespace = 'node-basic';
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const { ref, digest } = env.node.images.multi; // an index: linux/amd64 runs here, linux/arm64 does not
  const traceStart = (await traceLines(env.registryTrace)).length;
  await apps.createNamespacedDeployment({ namespace, body: deployment('multi', [{ name: 'multi', image: ref }]) });
  const [pod] = await waitForRunningPods(core, namespace, 'app=multi', 1, 60_000);
  assert.equal(pod!.spec?.nodeName, env.node.name);
  const status = pod!.status!.containerStatuses![0]!;
  // The index digest, as containerd recorded it when it pulled the tag (not written by this test).
  assert.equal(digestOf(status.imageID), digest);
  assert.equal(nodeImages(env).get(ref), digest, 'containerd holds the image under its tag with the index digest');
  assert.match(status.containerID ?? '', /^containerd:\/\/[a-f0-9]{64}$/);

  // The pull went to source: the tag resolved, the index, the linux/amd64 manifest, and the blobs.
  const pulls = (await traceLines(env.registryTrace, traceStart)).filter((l) => l.registry === 'source' && l.path.startsWith('/v2/harness/multi/'));
  assert.ok(pulls.some((l) => l.path === '/v2/harness/multi/manifests/1'), JSON.stringify(pulls));
  assert.ok(pulls.some((l) => l.method === 'GET' && l.path === `/v2/harness/multi/manifests/${digest}`), JSON.stringify(pulls));
  assert.ok(pulls.some((l) => l.method === 'GET' && l.path.includes('/blobs/')), 'layers were downloaded');
});

test('a pod reaches the registries and the API server at the addresses workloads use, and has no default route', async () => {
  const namespace = 'node-network';
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const source = env.registries.source.host;
  const api = new URL(env.node.apiServerFromPods);
  const apiPort = api.port || '443';
  const script = [
    'ip route',
    `wget -q -O /dev/null http://${source}/v2/ && echo registry-reached`,
    `nc -w 5 ${api.hostname} ${apiPort} </dev/null && echo api-server-reached`,
    'echo "KUBERNETES_SERVICE=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"',
  ].join('; ');
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'probe' },
      spec: { restartPolicy: 'Never', containers: [{ name: 'probe', image: env.node.images.busybox.ref, command: ['/bin/sh', '-c', script] }] },
    },
  });
  await waitForPodPhase(core, namespace, 'probe', 'Succeeded', 60_000);
  // Read through the API server, which fetches it from kubelet (InternalIP, client certificate).
  const log = await core.readNamespacedPodLog({ name: 'probe', namespace });
  assert.doesNotMatch(log, /^default /m, log);
  assert.match(log, /^10\.0\.0\.0\/24 via 10\.88\.0\.1 /m, log);
  assert.match(log, /^registry-reached$/m, log);
  assert.match(log, /^api-server-reached$/m, log);
  assert.match(log, new RegExp(`^KUBERNETES_SERVICE=${api.hostname}:${apiPort}$`, 'm'), log);
});
