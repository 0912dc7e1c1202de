// `image-clone sync` keeps the backup's supply-chain data current: a signature or referrer attached
// upstream after an image was backed up arrives with the next sync, which copies no image bytes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HarnessEnv } from '../harness/harness.ts';
import { createIn, deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { attachArtifact, registryRead, runCli, seedImage, uniqueRepo, verifyCopy, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let namespaces: Namespaces;
let namespace: string;
let registryConfig: string;
let insecure: string[];

before(async () => {
  let kube: KubeClients;
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  namespace = await namespaces.create('signatures');
  repo = uniqueRepo('signed-sync');
  image = await seedImage(env.registries.source, `${repo}/app:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 4096, seed: 95, format: 'oci' });
  await createIn(kube.objects, namespace, deployment('app', `${env.registries.source.host}/${repo}/app:1`, { replicas: 1 }));
});

after(async () => {
  await namespaces?.deleteAll();
});

let repo: string;
let image: Awaited<ReturnType<typeof seedImage>>;
const tagOf = (digest: string) => digest.replace(':', '-');

test('a signature and a referrer attached upstream after the backup arrive with the next sync', async () => {
  const prefix = `${env.registries.backup.host}/signed`;
  const sync = () => runCli(['sync', '--backup', prefix, '-n', namespace, '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig, ...insecure, '-o', 'json']);
  const first = await sync();
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).summary.images.copied, 1);

  const backupRepo = `signed/${env.registries.source.host.replace(':', '_')}/${repo}/app`;
  const child = image.children[1]!.digest;
  await attachArtifact(env.registries.source, `${repo}/app@${child}`, { seed: 96, tag: `${tagOf(child)}.sig` });
  const sbom = await attachArtifact(env.registries.source, `${repo}/app@${image.digest}`, { seed: 97 });

  const second = await sync();
  assert.equal(second.code, 0, second.stderr);
  const report = JSON.parse(second.stdout);
  assert.equal(report.summary.images.copied, 0, 'the image itself was in place');
  assert.equal(report.summary.bytesTransferred, 0);
  const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}/app:${tagOf(child)}.sig` }, { registry: env.registries.backup, ref: `${backupRepo}:${tagOf(child)}.sig` });
  assert.equal(check.identical, true, `the platform manifest's new signature: ${check.differences?.join('; ')}`);
  const fallback = await registryRead(env.registries.backup, 'GET', `/v2/${backupRepo}/manifests/${tagOf(image.digest)}`);
  assert.equal(fallback.status, 200, fallback.body);
  assert.deepEqual(JSON.parse(fallback.body).manifests.map((m: { digest: string }) => m.digest), [sbom.digest], 'the new referrer, listed');
});
